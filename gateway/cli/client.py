"""The client side of ``nassav add`` and ``nassav status``: the HTTP API and the event WebSocket.

Exit codes: 0 everything asked for succeeded; 1 a job failed or an AVID was refused;
3 the service could not be reached or refused the token.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

OK, FAILED, UNREACHABLE = 0, 1, 3


class ServiceError(Exception):
    """The service is unreachable, or refused the token; says which and how to fix it."""


class ApiClient:
    def __init__(self, base_url: str, token: str | None = None, *, timeout_s: float = 10):
        self.base = base_url.rstrip("/")
        self.token, self.timeout_s = token, timeout_s

    def _headers(self) -> dict[str, str]:
        h = {"Accept": "application/json"}
        if self.token:
            h["Authorization"] = f"Bearer {self.token}"
        return h

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, dict[str, Any]]:
        data = json.dumps(body).encode() if body is not None else None
        headers = self._headers()
        if data is not None:
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as r:
                return r.status, json.loads(r.read() or b"null") or {}
        except urllib.error.HTTPError as e:
            raw = e.read()
            if e.code == 403 and b'"blocked"' in raw:  # an AVID on the blocklist, not the token
                return e.code, json.loads(raw) or {}
            if e.code in (401, 403):
                raise ServiceError(f"{self.base} refused the token (HTTP {e.code}): pass --token or set "
                                   "NASSAV_API_TOKEN") from None
            try:
                return e.code, json.loads(raw) or {}
            except ValueError:
                return e.code, {"message": raw.decode(errors="replace")[:200]}
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise ServiceError(f"cannot reach nassav at {self.base} ({reason}); is `nassav up` running? "
                               "(--url sets the address)") from None

    def ws_url(self, path: str, **query: str) -> str:
        scheme = "wss" if self.base.startswith("https") else "ws"
        rest = self.base.split("://", 1)[1]
        q = urllib.parse.urlencode({k: v for k, v in query.items() if v})
        return f"{scheme}://{rest}{path}" + (f"?{q}" if q else "")

    def connect_events(self, last_id: str = ""):
        from websockets.sync.client import connect

        headers = {"Authorization": f"Bearer {self.token}"} if self.token else None
        try:
            return connect(self.ws_url("/ws/tasks/", last_id=last_id), open_timeout=self.timeout_s,
                           additional_headers=headers)
        except Exception as e:
            raise ServiceError(f"cannot open the event stream at {self.ws_url('/ws/tasks/')}: {e}") from None


@dataclass
class Tracked:
    avid: str
    job_id: str
    task: TaskID
    outcome: str = ""  # "", "completed", "failed", "cancelled"
    message: str = ""
    last_seen_live: float = field(default_factory=time.monotonic)


def add(client: ApiClient, avids: list[str], *, follow: bool, download: bool,
        console: Console | None = None) -> int:
    """Submit AVIDs (download, or metadata only); with ``follow`` show progress until they end."""
    console = console or Console()
    ws = client.connect_events() if follow else None  # before submitting: miss no event
    try:
        code, jobs = _submit_all(client, avids, download=download, console=console)
        if not follow or not jobs:
            return code
        return max(code, _follow(client, ws, jobs, download=download, console=console))
    finally:
        if ws is not None:
            ws.close()


def _submit_all(client: ApiClient, avids: list[str], *, download: bool,
                console: Console) -> tuple[int, dict[str, str]]:
    code = OK
    jobs: dict[str, str] = {}
    for text in avids:
        if download:
            status, body = client.request("POST", "/api/downloads/" + urllib.parse.quote(text, safe=""))
        else:
            status, body = client.request("POST", "/api/resource", {"avid": text, "source": "any"})
        data = body.get("data") or {}
        # escape(): service text printed as it is (a reason "[/mnt/old]" is no rich markup).
        msg = escape(str(body.get("message") or f"HTTP {status}"))
        if status == 202:
            jobs[data["job_id"]] = data["avid"]
            console.print(f"[green]queued[/]  {data['avid']}  job {data['job_id'][:8]}")
        elif status == 409 and data.get("job_id"):
            jobs[data["job_id"]] = data["avid"]
            console.print(f"[yellow]already running[/]  {data['avid']}  job {data['job_id'][:8]}")
        elif status == 409:
            console.print(f"[green]done already[/]  {data.get('avid', text)}: {msg}")
        else:
            console.print(f"[red]refused[/]  {text}: {msg}")
            code = FAILED
    return code, jobs


def _follow(client: ApiClient, ws, jobs: dict[str, str], *, download: bool, console: Console) -> int:
    progress = Progress(TextColumn("{task.fields[avid]:<16}"), BarColumn(), TextColumn("{task.percentage:>5.1f}%"),
                        TextColumn("{task.fields[stage]:<10}"), TextColumn("{task.fields[info]}"),
                        TimeElapsedColumn(), console=console, transient=False)
    tracked = {j: Tracked(a, j, progress.add_task(a, total=100, avid=a, stage="queued", info=""))
               for j, a in jobs.items()}
    last_id, last_poll = "", 0.0
    with progress:
        while any(not t.outcome for t in tracked.values()):
            try:
                raw = ws.recv(timeout=1.0)
            except TimeoutError:
                raw = None
            except Exception:
                ws = _reconnect(client, last_id)
                continue
            if raw is not None:
                try:
                    msg = json.loads(raw)
                except ValueError:
                    continue
                last_id = msg.get("id") or last_id
                _apply(progress, tracked, msg)
            if time.monotonic() - last_poll > 3:
                last_poll = time.monotonic()
                _poll(client, progress, tracked, download=download)
    failed = 0
    for t in tracked.values():
        if t.outcome == "completed":
            console.print(f"[green]completed[/]  {t.avid}" + (f": {escape(t.message)}" if t.message else ""))
        else:
            failed += 1
            console.print(f"[red]{t.outcome}[/]  {t.avid}: {escape(str(t.message))}")
    return FAILED if failed else OK


def _reconnect(client: ApiClient, last_id: str):
    for attempt in range(5):
        time.sleep(min(2 ** attempt * 0.5, 5))
        try:
            return client.connect_events(last_id)
        except ServiceError:
            continue
    raise ServiceError("lost the event stream and could not reconnect")


def _apply(progress: Progress, tracked: dict[str, Tracked], msg: dict[str, Any]) -> None:
    data = msg.get("data") or {}
    t = tracked.get(data.get("task_id", ""))
    if t is None or t.outcome:
        return
    kind = msg.get("type")
    if kind == "progress_update":
        progress.update(t.task, completed=float(data.get("percent") or 0), stage="download",
                        info=" ".join(x for x in (data.get("speed", ""), f"ETA {data['eta']}" if data.get("eta")
                                                  else "") if x))
    elif kind in ("stage_started", "task_started"):
        progress.update(t.task, stage=data.get("stage") or "")
    elif kind == "warning":
        progress.update(t.task, info=str(data.get("message", ""))[:60])
    elif kind == "task_completed":
        t.outcome, t.message = "completed", ""
        progress.update(t.task, completed=100, stage="done", info="")
    elif kind == "task_failed":
        t.outcome = data.get("status") or "failed"
        t.message = str(data.get("message", ""))
        progress.update(t.task, stage=t.outcome, info=t.message[:60])


def _poll(client: ApiClient, progress: Progress, tracked: dict[str, Tracked], *, download: bool) -> None:
    """A job that left the queue without us hearing its end (a dropped event): ask the library."""
    try:
        _, body = client.request("GET", "/api/tasks/queue/status")
    except ServiceError:
        return
    d = body.get("data") or {}
    live = {j.get("task_id") for j in d.get("active_tasks", []) + d.get("pending_tasks", [])}
    now = time.monotonic()
    for t in tracked.values():
        if t.outcome:
            continue
        if t.job_id in live:
            t.last_seen_live = now
        elif now - t.last_seen_live > 5:
            _, meta = client.request("GET", f"/api/resource/metadata?avid={t.avid}")
            m = meta.get("data") or {}
            ok = bool(m.get("has_video")) if download else bool(m)
            t.outcome = "completed" if ok else "failed"
            t.message = "" if ok else "the job ended; its final event was not received"
            progress.update(t.task, completed=100 if ok else 0, stage=t.outcome)


def status(client: ApiClient, *, as_json: bool = False, console: Console | None = None) -> int:
    """Print queues, workers and active jobs."""
    console = console or Console()
    _, q = client.request("GET", "/api/tasks/queue/status")
    _, w = client.request("GET", "/api/workers")
    hcode, h = client.request("GET", "/health")
    data = {"queue": q.get("data") or {}, "workers": w.get("data") or [], "health": h.get("data") or {}}
    if as_json:
        console.print_json(json.dumps(data))
        return OK if hcode == 200 else UNREACHABLE
    health = data["health"]
    console.print(f"[bold]nassav[/] at {client.base}: redis {health.get('redis', '?')}, "
                  f"disk free {(health.get('disk') or {}).get('free_bytes', 0) / 1e9:.1f} GB")
    paused = health.get("downloads") or {}
    if paused.get("paused"):
        console.print(f"[yellow]downloads paused:[/] {escape(str(paused.get('message', '')))}")
    for w in paused.get("waiting") or []:
        console.print(f"[yellow]{w.get('avid')}[/] {escape(str(w.get('message', '')))}")
    qt = Table(title="queues", title_justify="left")
    for col in ("queue", "ready", "in flight", "delayed", "dead"):
        qt.add_column(col, justify="right" if col != "queue" else "left")
    for name, n in (data["queue"].get("queues") or {}).items():
        qt.add_row(name, str(n.get("ready", 0)), str(max(0, n.get("messages", 0) - n.get("ready", 0))),
                   str(n.get("delayed", 0)), str(n.get("dead", 0)))
    console.print(qt)
    wt = Table(title=f"workers ({len(data['workers'])} live)", title_justify="left")
    for col in ("host", "pid", "queues", "threads", "last seen"):
        wt.add_column(col)
    for x in data["workers"]:
        wt.add_row(str(x.get("host")), str(x.get("pid")), ",".join(x.get("queues", [])), str(x.get("threads")),
                   f"{x.get('last_seen_ago_s', 0):.0f} s ago")
    console.print(wt)
    jobs = (data["queue"].get("active_tasks") or []) + (data["queue"].get("pending_tasks") or [])
    jt = Table(title=f"jobs ({len(jobs)} active or pending)", title_justify="left")
    for col in ("avid", "kind", "status", "stage", "progress", "speed", "eta", "job"):
        jt.add_column(col)
    for j in jobs:
        jt.add_row(str(j.get("avid")), str(j.get("kind")), str(j.get("status")), str(j.get("stage")),
                   f"{float(j.get('progress') or 0):.1f}%", str(j.get("speed") or ""), str(j.get("eta") or ""),
                   str(j.get("task_id", ""))[:8])
    console.print(jt)
    return OK if hcode == 200 else UNREACHABLE
