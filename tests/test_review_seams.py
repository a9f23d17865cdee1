"""Seams between the features merged together: the CLI's help and the config's secrets."""

from __future__ import annotations

import argparse

from gateway.cli.main import EPILOG, build_parser
from pipeline.config import load


def _subcommands() -> dict[str, str]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {c.dest: c.help or "" for c in action._choices_actions}


def test_every_command_has_help_text():
    helps = _subcommands()
    for name in ("follow", "unfollow", "subscriptions", "history", "retry", "block", "unblock",
                 "blocklist", "import"):
        assert name in helps, name
    assert all(len(h) > 10 for h in helps.values()), helps


def test_the_help_names_every_environment_variable_the_config_reads():
    # load() reads NASSAV_TRANSLATION_API_KEY; the help's environment paragraph must say so,
    # and NASSAV_URL serves every command that talks to a running service, not add/status only.
    assert "NASSAV_TRANSLATION_API_KEY" in EPILOG
    for name in ("history", "retry", "block", "follow", "subscriptions"):
        assert name in EPILOG.split("NASSAV_URL", 1)[1], name


def test_a_printed_config_shows_no_secret(tmp_path):
    cfg_file = tmp_path / "config.yaml"
    cfg_file.write_text(
        "redis_url: redis+sentinel://:redispw-1@127.0.0.1:26379/mymaster?sentinel_password=sentpw-2\n"
        "api_token: apitoken-3\n"
        "translation: {url: 'http://127.0.0.1:9/v1/chat/completions', model: m, api_key: trkey-4}\n"
        "notify:\n"
        "  targets:\n"
        "    - {name: hook, kind: webhook, url: 'http://127.0.0.1:9/hook/hooktok-5', secret: hmac-6}\n"
        "    - {name: tg, kind: apprise, urls: ['tgram://bottok-7/123']}\n"
        "media_servers:\n"
        "  - {name: jf, kind: jellyfin, url: 'http://127.0.0.1:8096', api_key: jfkey-8}\n"
        "  - {name: px, kind: plex, url: 'http://127.0.0.1:32400', token: plextok-9, section: 3}\n")
    cfg = load(cfg_file, {}, data_dir=str(tmp_path / "data"))
    assert cfg.notify.targets[0].secret == "hmac-6" and cfg.media_servers[1].token == "plextok-9"
    shown = repr(cfg)
    for secret in ("redispw-1", "sentpw-2", "apitoken-3", "trkey-4", "hooktok-5", "hmac-6", "bottok-7",
                   "jfkey-8", "plextok-9"):
        assert secret not in shown, secret
    assert "jellyfin" in shown  # the rest of the config still reads


def test_the_worker_timer_survives_a_failing_pass_and_stops(caplog):
    import logging
    import threading

    from actors.timer import every

    calls: list[int] = []
    third = threading.Event()

    def run() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("a bad pass")
        if len(calls) >= 3:
            third.set()

    stop = threading.Event()
    t = every(0.01, stop, run, name="test-timer", log=logging.getLogger("nassav.test"))
    assert t.daemon and t.name == "test-timer"
    assert third.wait(10)  # the failure did not end the timer
    stop.set()
    t.join(10)
    assert not t.is_alive()
    assert any("test-timer failed" in r.getMessage() and r.exc_info for r in caplog.records)


def test_the_config_template_names_every_key_of_every_section():
    """Each section's keys appear in deploy/config.template.yaml, set or as a commented example,
    so a newcomer finds every setting where the README sends them."""
    import dataclasses
    import re
    from pathlib import Path

    from pipeline.config import Config

    text = (Path(__file__).resolve().parent.parent / "deploy" / "config.template.yaml").read_text()
    cfg = Config()
    missing = []
    for f in dataclasses.fields(Config):
        if not re.search(rf"(?m)^#? ?{f.name}:", text):
            missing.append(f.name)
        section = getattr(cfg, f.name)
        if dataclasses.is_dataclass(section):
            missing += [f"{f.name}.{g.name}" for g in dataclasses.fields(section)
                        if not re.search(rf"(?m)^\s*#?\s*{g.name}:", text)]
    assert not missing, missing
