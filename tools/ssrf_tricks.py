"""Try every SSRF name trick and settings attack against the code on ``sys.path``; print the answers.

    .venv/bin/python -m tools.ssrf_tricks                     # this checkout
    # an older commit: export it, copy this file beside it, run with it first on the path
    mkdir -p /tmp/before/tree && git archive 9baddde | tar -x -C /tmp/before/tree && \\
      cp tools/ssrf_tricks.py /tmp/before/ && cd /tmp/before && \\
      PYTHONPATH=/tmp/before/tree /work/wt-ssrf/.venv/bin/python ssrf_tricks.py

Only public entry points that exist at every commit are used: ``pipeline.http.check_url``
(allow_private False, the system resolver), ``pipeline.config.load`` and
``pipeline.overrides.apply`` (what ``PUT /api/setting`` runs: an exception is its 400).
Nothing is connected to: a URL check only resolves names (``.invalid`` never resolves).
Prints one JSON object per line: ``{"kind", "try", "answer"}``.
"""

from __future__ import annotations

import json
import sys

URLS = [
    "http://127.0.0.1/", "http://localhost/", "http://localhost./", "http://api.localhost/",
    "http://[::1]/", "http://[::ffff:127.0.0.1]/", "http://[::127.0.0.1]/", "http://[64:ff9b::7f00:1]/",
    "http://[fe80::1%25eth0]/", "http://2130706433/", "http://0177.0.0.1/", "http://0x7f.1/",
    "http://0x7f000001/", "http://127.1/", "http://0.0.0.0/", "http://10.0.0.1/", "http://192.168.1.1/",
    "http://169.254.169.254/", "http://100.64.0.1/", "http://[fd00::1]/", "http://224.0.0.1/",
    "http://240.0.0.1/", "http://192.0.0.8/", "http://198.18.0.1/",
    "http://no-such-host.invalid/", "http://example.com@127.0.0.1/", "http://a.example/\r\nX-Injected: 1",
    "file:///etc/passwd", "gopher://127.0.0.1:6379/_FLUSHALL",
]

SETTINGS = [
    {"sources": {"jable": {"base_url": "https://jable.tv\r\nX-Injected: 1"}}},
    {"sources": {"jable": {"base_url": "https://user:pw@jable.tv"}}},
    {"sources": {"jable": {"base_url": "http://127.0.0.1:6379/"}}},
    {"sources": {"jable": {"base_url": "http://169.254.169.254/"}}},
    {"sources": {"jable": {"base_url": "http://2130706433/"}}},
    {"http": {"allow_private_urls": True}},
    {"http": {"retries": 1000}},
    {"http": {"timeout_s": 0}},
    {"sources": {"jable": {"min_interval_s": 1e9}}},
    {"download": {"variant": "best"}},
    {"download": {"segment_retries": 10000}},
    {"download": {"mutex_limit": 100000}},
]

CONFIG = [
    {"sources": {"jable": {"base_url": "https://jable.tv\r\nX-Injected: 1"}}},
    {"sources": {"missav": {"cdn_url": "https://u:p@surrit.com"}}},
    {"http": {"retries": -1}},
    {"download": {"variant": "best"}},
]


def _short(e: BaseException) -> str:
    text = f"{type(e).__name__}: {e}"
    return text if len(text) < 220 else text[:217] + "..."


def main() -> int:
    from pipeline import overrides
    from pipeline.config import load
    from pipeline.http import check_url

    rows = []
    for url in URLS:
        try:
            check_url(url, allow_private=False)
            answer = "ALLOWED"
        except Exception as e:  # noqa: BLE001 - the answer is what we report
            answer = "refused: " + _short(e)
        rows.append({"kind": "url", "try": url, "answer": answer})
    base = load(None, {})
    for change in SETTINGS:
        try:
            overrides.apply(base, change)
            answer = "200 stored"
        except Exception as e:  # noqa: BLE001
            answer = "400 " + _short(e)
        rows.append({"kind": "PUT /api/setting", "try": change, "answer": answer})
    for fragment in CONFIG:
        try:
            load(None, {}, **fragment)
            answer = "loaded"
        except Exception as e:  # noqa: BLE001
            answer = "refused: " + _short(e)
        rows.append({"kind": "config file", "try": fragment, "answer": answer})
    for row in rows:
        print(json.dumps(row, ensure_ascii=False))
    allowed = sum(1 for r in rows if r["answer"].startswith(("ALLOWED", "200", "loaded")))
    print(json.dumps({"tried": len(rows), "let_through": allowed, "refused": len(rows) - allowed}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
