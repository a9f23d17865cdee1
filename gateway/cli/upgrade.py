"""``nassav upgrade AVID [--follow]``: ask the service for a better edition of a downloaded title
(``POST /api/resource/{avid}/upgrade``; exit codes as in ``gateway/cli/client.py``)."""

from __future__ import annotations

import urllib.parse
from typing import Any

from rich.console import Console
from rich.markup import escape

from gateway.cli.client import FAILED, OK, ApiClient, _follow


def add_parser(sub: Any, client_args) -> None:
    """The subcommand, on the ``nassav`` parser's subparsers."""
    p = sub.add_parser("upgrade", help="look for an edition preferred to the one held (download.editions) "
                                       "and replace the video with it once verified")
    p.add_argument("avid", metavar="AVID")
    p.add_argument("--follow", "-f", action="store_true", help="show progress until the job ends")
    client_args(p)


def upgrade(client: ApiClient, avid: str, *, follow: bool = False, console: Console | None = None) -> int:
    """Queue the upgrade job; with ``follow`` wait for it and say which edition the library holds."""
    console = console or Console()
    ws = client.connect_events() if follow else None  # before submitting: miss no event
    try:
        code, body = client.request("POST", f"/api/resource/{urllib.parse.quote(avid, safe='')}/upgrade")
        data = body.get("data") or {}
        message = escape(str(body.get("message") or f"HTTP {code}"))  # service text, not rich markup
        if code == 404:
            console.print(f"[red]nothing to upgrade[/]  {message}")
            return FAILED
        if code == 409:
            held = f" (job {str(data['job_id'])[:8]})" if data.get("job_id") else ""
            console.print(f"[yellow]busy[/]  {message}{held}; try again once it ended")
            return FAILED
        if code != 202:
            console.print(f"[red]refused[/] (HTTP {code}): {message}")
            return FAILED
        prefs = ", ".join(data.get("editions") or [])
        console.print(f"[green]queued[/]  {data['avid']}  job {data['job_id'][:8]}: looking for an edition "
                      f"preferred to {data.get('edition')} (download.editions: {prefs})")
        if not follow:
            return OK
        result = _follow(client, ws, {data["job_id"]: data["avid"]}, download=True, console=console)
        _, meta = client.request("GET", f"/api/resource/metadata?avid={urllib.parse.quote(data['avid'])}")
        now = (meta.get("data") or {}).get("edition")
        if result == OK and now is not None:
            now = now or "regular"
            changed = "upgraded to" if now != data.get("edition") else "unchanged, still"
            console.print(f"{data['avid']}: {changed} {now}")
        return result
    finally:
        if ws is not None:
            ws.close()
