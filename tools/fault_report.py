"""Run the fault and security suites (``tests/faults/``, ``tests/security/``) N times and print a table.

    .venv/bin/python -m tools.fault_report --runs 3
    .venv/bin/python -m tools.fault_report --runs 1 -- -k redis     # extra pytest arguments

Each run is one ``pytest tests/faults tests/security`` process with its own temp dir; the tests
write their figures (``tests/figures.py``: ``record()``) as JSON lines to ``$NASSAV_FAULT_FIGURES``
and the outcome of every test comes from the run's JUnit XML. The table has one row per
fault (a test, or a phase of one): runs, passed, time to recover (min–max over the runs),
data lost; a second table lists the other figures of the last run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SUITES = ("tests/faults", "tests/security")
SKIP_KEYS = {"fault", "test", "ts", "recover_s", "data_lost"}


def outcomes(junit: Path) -> dict[str, str]:
    """test id (``tests/faults/x.py::name[param]``) → passed | failed | xfailed | skipped."""
    out = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        path = case.get("classname", "").replace(".", "/") + ".py"
        test = f"{path}::{case.get('name')}"
        if case.find("failure") is not None or case.find("error") is not None:
            out[test] = "failed"
        elif (sk := case.find("skipped")) is not None:
            out[test] = "xfailed" if sk.get("type") == "pytest.xfail" else "skipped"
        else:
            out[test] = "passed"
    return out


def run_once(n: int, work: Path, extra: list[str]) -> tuple[dict[str, str], list[dict], float]:
    figures = work / f"figures-{n}.jsonl"
    junit = work / f"junit-{n}.xml"
    env = dict(os.environ, NASSAV_FAULT_FIGURES=str(figures))
    t0 = time.monotonic()
    suites = [s for s in SUITES if (ROOT / s).is_dir()]
    subprocess.run([sys.executable, "-m", "pytest", *suites, "-q", "-p", "no:cacheprovider",
                    f"--junitxml={junit}", f"--basetemp={work / f'tmp-{n}'}", *extra],
                   cwd=ROOT, env=env)
    took = time.monotonic() - t0
    lines = [json.loads(x) for x in figures.read_text().splitlines()] if figures.exists() else []
    return (outcomes(junit) if junit.exists() else {}), lines, took


def _span(values: list[float]) -> str:
    if not values:
        return "—"
    lo, hi = min(values), max(values)
    return f"{lo:.1f} s" if lo == hi else f"{lo:.1f}–{hi:.1f} s"


def table(runs: list[tuple[dict[str, str], list[dict], float]]) -> str:
    rows: dict[str, dict] = {}
    order: list[str] = []
    for results, figures, _ in runs:
        for f in figures:
            key = f["fault"]
            if key not in rows:
                rows[key] = {"tests": set(), "recover": [], "lost": set(), "last": f}
                order.append(key)
            rows[key]["tests"].add(f["test"])
            if isinstance(f.get("recover_s"), (int, float)):
                rows[key]["recover"].append(float(f["recover_s"]))
            rows[key]["lost"].add(str(f.get("data_lost", "—")))
            rows[key]["last"] = f
    # Tests that report no figure (most of tests/security) get a row of their own only when
    # they did not pass (they may have failed before recording); the rest are counted below.
    quiet: dict[str, list[str]] = {}
    for results, _, _ in runs:
        for test, outcome in results.items():
            if not any(test in r["tests"] for r in rows.values()):
                quiet.setdefault(test, []).append(outcome)
    for test, states in quiet.items():
        if any(s != "passed" for s in states):
            rows[test] = {"tests": {test}, "recover": [], "lost": {"?"}, "last": {}}
            order.append(test)
    out = ["| fault | runs | tests passed | time to recover | data lost |", "|---|---|---|---|---|"]
    for key in order:
        r = rows[key]
        states = [res.get(t, "not run") for res, _, _ in runs for t in r["tests"]]
        passed = sum(1 for s in states if s == "passed")
        xf = sum(1 for s in states if s == "xfailed")
        note = f" (+{xf} xfail)" if xf else ""
        out.append(f"| {key} | {len(runs)} | {passed}{note} | {_span(r['recover'])} | {', '.join(sorted(r['lost']))} |")
    out += ["", "| fault | figures (last run) |", "|---|---|"]
    for key in order:
        f = rows[key]["last"]
        details = ", ".join(f"{k}={v}" for k, v in f.items() if k not in SKIP_KEYS)
        out.append(f"| {key} | {details or '—'} |")
    others = [t for t, states in quiet.items() if all(s == "passed" for s in states)]
    if others:
        out += ["", f"{len(others)} more tests report no figure and passed in every run."]
    totals = ", ".join(f"run {i + 1}: {took:.0f} s" for i, (_, _, took) in enumerate(runs))
    out += ["", f"Suite wall time: {totals}."]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--keep", metavar="DIR", help="keep JUnit files, figures and temp dirs here")
    p.add_argument("pytest_args", nargs="*", help="after --: extra pytest arguments")
    args = p.parse_args(argv)
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="nassav-faults-"))
    work.mkdir(parents=True, exist_ok=True)
    runs = [run_once(n, work, args.pytest_args) for n in range(1, args.runs + 1)]
    print()
    print(table(runs))
    failed = any(s == "failed" for res, _, _ in runs for s in res.values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
