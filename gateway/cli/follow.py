"""``nassav follow``, ``nassav unfollow`` and ``nassav subscriptions``: the API's subscriptions.

Exit codes as ``nassav add``: 0 done, 1 refused (the message says why), 3 unreachable.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from typing import Any

from pipeline.config import SubscriptionsConfig

# rich and the API client are imported where used: ``build_parser`` adds these subcommands
# for every command, and ``nassav worker`` should load nothing it does not run.

KINDS = ("actress", "maker", "label", "series", "director", "search")


def add_parsers(sub: Any, client_args) -> None:
    """The three subcommands, on the ``nassav`` parser's subparsers."""
    f = sub.add_parser("follow", help="follow an actress, maker, label, series, director or search")
    f.add_argument("kind", choices=KINDS)
    f.add_argument("id_or_query", metavar="ID_OR_QUERY",
                   help="the catalogue's id as in its listing URL (/star/okq → okq), or a search query")
    f.add_argument("--action", choices=("metadata", "download"), default="metadata",
                   help="metadata (default: add to the library without video) or download")
    f.add_argument("--backfill", type=int, metavar="N",
                   help=f"titles the first check may queue (default subscriptions.backfill, "
                        f"{SubscriptionsConfig.backfill})")
    f.add_argument("--since", metavar="YYYY-MM-DD", help="only titles released on or after this day")
    f.add_argument("--skip-genre", action="append", default=[], metavar="GENRE", help="skip titles with it")
    f.add_argument("--edition", action="append", default=[], choices=("C", "UC", "U", "regular"),
                   help="only titles listed in this edition (repeatable)")
    f.add_argument("--title-regex", metavar="REGEX", help="only titles matching it")
    f.add_argument("--every-hours", type=float, metavar="H",
                   help=f"check interval (default subscriptions.interval_s, "
                        f"{SubscriptionsConfig.interval_s / 3600:g} h)")
    f.add_argument("--name", default="", help="a label to show")
    client_args(f)
    u = sub.add_parser("unfollow", help="stop following (by subscription id)")
    u.add_argument("id", metavar="ID")
    client_args(u)
    s = sub.add_parser("subscriptions", help="list subscriptions, or show one's last checks")
    s.add_argument("id", nargs="?", metavar="ID")
    s.add_argument("--check", action="store_true", help="with ID: ask for a check now")
    s.add_argument("--json", action="store_true", help="print the raw JSON")
    client_args(s)


def body_of(args: argparse.Namespace) -> dict[str, Any]:
    filters: dict[str, Any] = {}
    if args.since:
        filters["since"] = args.since
    if args.skip_genre:
        filters["skip_genres"] = args.skip_genre
    if args.edition:
        filters["editions"] = args.edition
    if args.title_regex:
        filters["title_regex"] = args.title_regex
    body: dict[str, Any] = {"kind": args.kind, "id_or_query": args.id_or_query, "action": args.action}
    if filters:
        body["filters"] = filters
    if args.backfill is not None:
        body["backfill"] = args.backfill
    if args.every_hours is not None:
        body["interval_s"] = round(args.every_hours * 3600)
    if args.name:
        body["name"] = args.name
    return body


def run(api, args: argparse.Namespace, console=None) -> int:
    """Carry out the subcommand against ``api`` (a :class:`gateway.cli.client.ApiClient`)."""
    from rich.console import Console

    from gateway.cli.client import FAILED, OK

    console = console or Console(highlight=False)
    if args.command == "follow":
        code, res = api.request("POST", "/api/subscriptions", body_of(args))
        if code == 201:
            console.print(f"following {args.kind} {args.id_or_query}: id {res['data']['id']} "
                          "(first check within a minute)")
            return OK
        console.print(f"nassav: {res.get('message', code)}")
        return FAILED
    if args.command == "unfollow":
        code, res = api.request("DELETE", f"/api/subscriptions/{args.id}")
        console.print(res.get("message", code) if code == 200 else f"nassav: {res.get('message', code)}")
        return OK if code == 200 else FAILED
    if args.id and args.check:
        code, res = api.request("POST", f"/api/subscriptions/{args.id}/check")
        console.print(res.get("message", code) if code == 202 else f"nassav: {res.get('message', code)}")
        return OK if code == 202 else FAILED
    code, res = api.request("GET", "/api/subscriptions" + (f"/{args.id}" if args.id else ""))
    if code != 200:
        console.print(f"nassav: {res.get('message', code)}")
        return FAILED
    if args.json:
        console.print_json(json.dumps(res["data"], ensure_ascii=False))
        return OK
    if args.id:
        _show(res["data"], console)
    else:
        _table(res["data"], console)
    return OK


def _when(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M") if ts else "-"


def _table(items: list[dict[str, Any]], console) -> None:
    from rich.table import Column, Table

    if not items:
        console.print("no subscriptions (nassav follow actress ID)")
        return
    # The id is what `unfollow` and `subscriptions ID` take: never cut it short, whatever the width.
    t = Table(Column("id", no_wrap=True, min_width=12), "kind", "id / query", "action", "last check",
              "next check", "seen", "last result")
    for s in items:
        last = s.get("last_check_record") or {}
        result = "; ".join(last.get("errors") or []) or (f"{len(last.get('queued') or {})} queued"
                                                          if last else "not checked yet")
        t.add_row(s["id"], s["kind"], s["key"], s["action"], _when(s.get("last_check", 0)),
                  _when(s.get("next_due", 0)), str(s.get("seen", 0)), result)
    console.print(t)


def _show(s: dict[str, Any], console) -> None:
    from rich.table import Table

    console.print(f"{s['id']}: {s['kind']} {s['key']} ({s['action']}), checked {s.get('checks_done', 0)} times, "
                  f"next {_when(s.get('next_due', 0))}"
                  + (f", {s['pending']} pending (the next check queues or skips them)" if s.get("pending") else ""))
    t = Table("when", "pages", "new", "queued", "stopped", "errors")
    for c in s.get("checks") or []:
        t.add_row(_when(c["ts"]), str(c["pages"]), str(len(c["new"])), " ".join(c["queued"]) or "-",
                  c["stopped"], "; ".join(c["errors"]) or "-")
    console.print(t)
