"""``nassav history``, ``retry``, ``block``, ``unblock`` and ``blocklist``: the API's history,
retry and blocklist routes from the command line (exit codes as in ``gateway/cli/client.py``)."""

from __future__ import annotations

import json
import time
import urllib.parse
from typing import Any

from rich.console import Console
from rich.table import Table

from gateway.cli.client import FAILED, OK, ApiClient


def _quoted(avid: str) -> str:
    return urllib.parse.quote(avid, safe="")


def _when(ts: Any) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(ts))) if ts else "-"


def _refused(console: Console, code: int, body: dict[str, Any]) -> int:
    console.print(f"[red]refused[/] (HTTP {code}): {body.get('message') or body}")
    return FAILED


def history(client: ApiClient, avid: str, *, as_json: bool = False, limit: int = 20,
            console: Console | None = None) -> int:
    """Print the AVID's jobs, newest first, and what each stage did source by source."""
    console = console or Console()
    code, body = client.request("GET", f"/api/resource/{_quoted(avid)}/history?page_size={limit}")
    if code != 200:
        return _refused(console, code, body)
    jobs = body.get("data") or []
    if as_json:
        console.print_json(json.dumps(jobs))
        return OK
    if not jobs:
        console.print(f"{avid}: no job in its history")
        return OK
    for j in jobs:
        colour = {"completed": "green", "failed": "red", "cancelled": "yellow"}.get(j.get("status"), "cyan")
        console.print(f"[bold]{j['avid']}[/] job {str(j['job_id'])[:8]} ({j.get('kind') or 'download'}) "
                      f"{_when(j.get('started_at'))} → [{colour}]{j.get('status')}[/]"
                      + (f" at {j['stage']}" if j.get("status") == "failed" else "")
                      + (f": {j['message']}" if j.get("message") else ""))
        t = Table(show_header=True, box=None, padding=(0, 2))
        for col in ("stage", "outcome", "source", "took", "bytes", "sources asked"):
            t.add_column(col)
        for s in j.get("stages") or []:
            asked = "; ".join(f"{x['source']}: {x['outcome']}" + (f" ({x['detail']})" if x.get("detail") else "")
                              for x in s.get("sources") or [])
            if s["stage"] == "queued":
                d = s.get("detail") or {}
                asked = ", ".join(f"{k}={v}" for k, v in d.items())
            took = f"{s['took_s']:.1f} s" if s.get("took_s") is not None else ""
            t.add_row(s["stage"], s.get("outcome") or "", s.get("source") or "", took,
                      str(s["bytes"]) if s.get("bytes") is not None else "", asked or s.get("message") or "")
        console.print(t)
    return OK


def retry(client: ApiClient, avid: str, *, console: Console | None = None) -> int:
    """Re-run the AVID's latest failed or cancelled job, with its options, from where it stopped."""
    console = console or Console()
    code, body = client.request("POST", f"/api/resource/{_quoted(avid)}/retry")
    if code != 202:
        return _refused(console, code, body)
    d = body["data"]
    asked = ", ".join(f"{k}={v}" for k, v in (d.get("options") or {}).items())
    console.print(f"{d['avid']}: queued again from {d['stage']} (job {d['job_id'][:8]}, retry of {d['retry_of'][:8]}"
                  + (f"; {asked}" if asked else "") + ")", markup=False)
    return OK


def block(client: ApiClient, avid: str, *, source: str = "", reason: str = "",
          console: Console | None = None) -> int:
    """Put the AVID (or one source for it) on the blocklist."""
    console = console or Console()
    body: dict[str, str] = {"reason": reason}
    if source:
        body["source"] = source
    code, res = client.request("POST", f"/api/blocklist/{_quoted(avid)}", body)
    if code != 201:
        return _refused(console, code, res)
    console.print(res.get("message", "blocked"))
    return OK


def unblock(client: ApiClient, avid: str, *, source: str = "", console: Console | None = None) -> int:
    """Take the AVID (or one source for it) off the blocklist."""
    console = console or Console()
    path = f"/api/blocklist/{_quoted(avid)}" + (f"/{_quoted(source)}" if source else "")
    code, res = client.request("DELETE", path)
    if code != 200:
        return _refused(console, code, res)
    console.print(res.get("message", "removed"))
    return OK


def blocklist(client: ApiClient, *, avid: str = "", as_json: bool = False, console: Console | None = None) -> int:
    """Print the blocklist (or one AVID's entries)."""
    console = console or Console()
    query = f"?avid={_quoted(avid)}" if avid else ""
    code, body = client.request("GET", f"/api/blocklist{query}")
    if code != 200:
        return _refused(console, code, body)
    items = (body.get("data") or {}).get("items") or []
    if as_json:
        console.print_json(json.dumps(items))
        return OK
    t = Table(title=f"blocklist ({len(items)} entries)", title_justify="left")
    for col in ("avid", "what", "reason", "since"):
        t.add_column(col)
    for e in items:
        t.add_row(e["avid"], f"source {e['source']}" if e["source"] else "the whole AVID", e.get("reason") or "",
                  _when(e.get("added_at")))
    console.print(t)
    return OK
