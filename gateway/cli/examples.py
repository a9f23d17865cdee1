"""The examples at the end of each ``nassav COMMAND --help``.

A user reads ``nassav retry --help`` before the README: it should show the command in use.
tests/test_cli_help.py parses every example with the real parser, so none can name an option
that is gone. ``nassav hls`` has its own parser and examples (pipeline/hls/cli.py).
"""

from __future__ import annotations

import argparse

# command → (example, what it does). The README's examples use these same forms.
EXAMPLES: dict[str, tuple[tuple[str, str], ...]] = {
    "up": (
        ("nassav up", "everything on http://127.0.0.1:8000, an embedded Redis under ./resource"),
        ("nassav up --config config.yaml --data-dir /srv/nassav --port 8080", ""),
        ("nassav up --processes 2", "two gateway processes on the one port (Linux)"),
    ),
    "serve": (
        ("nassav serve --config config.yaml", "the gateway alone (needs redis_url or NASSAV_REDIS_URL)"),
        ("nassav serve --processes 2", "two gateway processes on the one port (Linux)"),
    ),
    "worker": (
        ("nassav worker --queues download", "one more download worker (set NASSAV_REDIS_URL)"),
        ("nassav worker --queues metadata notify --threads 8", ""),
    ),
    "add": (
        ("nassav add ABC-123 DEF-456 --follow", "queue two downloads, show a progress bar each"),
        ("nassav add ABC-123 --no-download", "metadata, cover and NFO only"),
        ("nassav add ABC-123 --url http://nas.local:8000 --token TOKEN", "a service elsewhere"),
    ),
    "status": (
        ("nassav status", "queues, workers, active jobs and why downloads wait"),
        ("nassav status --json", "the same as JSON"),
    ),
    "history": (
        ("nassav history ABC-123", "every job of ABC-123, stage by stage, source by source"),
        ("nassav history ABC-123 --json", ""),
    ),
    "retry": (
        ("nassav retry ABC-123", "its latest failed or cancelled job again, from where it stopped"),
    ),
    "block": (
        ("nassav block ABC-123 --reason \"not wanted\"", "never queue ABC-123 again"),
        ("nassav block ABC-123 --source jable --reason \"broken copy\"", "never ask jable for it"),
    ),
    "unblock": (
        ("nassav unblock ABC-123", "lift the whole-AVID entry"),
        ("nassav unblock ABC-123 --source jable", "lift jable's entry for it"),
    ),
    "blocklist": (
        ("nassav blocklist", "every entry"),
        ("nassav blocklist --avid ABC-123 --json", ""),
    ),
    "reindex": (
        ("nassav reindex --data-dir /srv/nassav", "rebuild library.sqlite3 from the folders"),
    ),
    "follow": (
        ("nassav follow actress okq --backfill 10", "the id from JavBus's /star/okq; metadata only"),
        ("nassav follow search \"Fixture Story\" --action download --since 2025-01-01", ""),
        ("nassav follow maker 7q --skip-genre 旅行 --edition C --every-hours 6", ""),
    ),
    "unfollow": (
        ("nassav unfollow 1b67fe28d8e6", "the id `nassav subscriptions` lists"),
    ),
    "subscriptions": (
        ("nassav subscriptions", "each one's last and next check"),
        ("nassav subscriptions 1b67fe28d8e6", "its last checks"),
        ("nassav subscriptions 1b67fe28d8e6 --check", "check it now"),
    ),
    "upgrade": (
        ("nassav upgrade ABC-123 --follow", "a better edition (download.editions), if a site has one"),
    ),
    "import": (
        ("nassav import /mnt/old --dry-run", "the plan: file → AVID → target, or the reason"),
        ("nassav import /mnt/old", "move the files in"),
        ("nassav import /mnt/old --mode hardlink --data-dir /srv/nassav", ""),
    ),
}


def epilog(command: str) -> str | None:
    """The ``examples:`` block for ``command``'s help, or None when it has none."""
    rows = EXAMPLES.get(command)
    if not rows:
        return None
    # Notes in a column after the short commands; a long command's note goes on the next line.
    width = max([len(cmd) for cmd, _ in rows if len(cmd) <= 36] or [0]) + 2
    out = ["examples:"]
    for cmd, what in rows:
        if what and len(cmd) > width - 2:
            out += [f"  {cmd}", f"      {what}"]
        else:
            out.append(f"  {cmd:<{width}}{what}".rstrip())
    return "\n".join(out)


class CommandParser(argparse.ArgumentParser):
    """The parser of one ``nassav`` subcommand: its examples below the options, as written."""

    def __init__(self, **kwargs):
        command = str(kwargs.get("prog") or "").rsplit(" ", 1)[-1]
        if kwargs.get("epilog") is None and command in EXAMPLES:
            kwargs["epilog"] = epilog(command)
            kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(**kwargs)
