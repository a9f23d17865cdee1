"""What keeps ``nassav hls`` lean on a fast link (issue 13).

It loads nothing it does not use before its first request: interpreter start-up and imports
were ~0.25 s of a ~1.1 s download of 207 MB, and the HLS path never talks to Redis, reads no
YAML and draws its progress bar only when asked. Its fetch threads leave the CPU to ffmpeg,
the critical path when the link is fast.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

from pipeline.hls.workers import WORKER_NICE, yield_cpu
from tests.conftest import needs

ROOT = Path(__file__).resolve().parent.parent

# Modules the HLS command must not import before it downloads (each costs 15-60 ms).
NOT_AT_START = ("redis", "yaml", "rich", "parsel", "dramatiq", "imageio_ffmpeg", "starlette")


def _loaded_after(code: str) -> set[str]:
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_the_hls_command_imports_only_what_it_uses():
    loaded = _loaded_after("import pipeline.hls.cli")
    assert "curl_cffi" in loaded  # the probe sees real imports
    assert {m for m in NOT_AT_START if m in loaded} == set()


def test_reading_a_config_file_still_loads_yaml(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("download:\n  concurrency: 3\n")
    loaded = _loaded_after(f"from pipeline.config import load\nassert load({str(cfg)!r}).download.concurrency == 3")
    assert "yaml" in loaded


def test_a_fetch_thread_yields_the_cpu_to_the_remuxer():
    """The fetch threads run below the remuxer's priority (pipeline.hls.workers.yield_cpu)."""
    if not hasattr(os, "setpriority"):
        needs("per-thread priorities (os.setpriority, Linux)")
    seen: dict[str, int] = {}

    def worker() -> None:
        tid = threading.get_native_id()
        seen["before"] = os.getpriority(os.PRIO_PROCESS, tid)
        yield_cpu(WORKER_NICE)
        seen["after"] = os.getpriority(os.PRIO_PROCESS, tid)

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert WORKER_NICE > 0
    assert seen["after"] == min(19, seen["before"] + WORKER_NICE)
    # only that thread: this one keeps its priority
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == seen["before"]


def test_the_command_ends_without_teardown_but_flushes_what_it_printed():
    """``pipeline.hls.cli.exit_now``: the exit status, and every line printed, survive ``os._exit``."""
    code = ("import logging, sys\nfrom pipeline.hls.cli import exit_now\n"
            "logging.basicConfig(stream=sys.stderr)\nprint('to stdout')\nsys.stderr.write('to stderr ')\n"
            "logging.getLogger('x').error('logged')\nexit_now(3)\nprint('never')")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 3
    assert out.stdout == "to stdout\n"  # a pipe: block-buffered, so only a flush gets it out
    assert out.stderr.startswith("to stderr ") and "logged" in out.stderr


def test_python_m_pipeline_hls_keeps_its_exit_statuses():
    ok = subprocess.run([sys.executable, "-m", "pipeline.hls", "--help"], cwd=ROOT, capture_output=True, text=True)
    assert ok.returncode == 0 and "usage:" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "pipeline.hls", "http://x/a.m3u8", "-o", "/tmp/x.mp4", "-N", "0"],
                         cwd=ROOT, capture_output=True, text=True)
    assert bad.returncode == 2 and "--concurrency must be from 1 to 128" in bad.stderr
