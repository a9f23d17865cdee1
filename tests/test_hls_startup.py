"""What ``nassav hls`` loads before its first request: nothing it does not use.

Interpreter start-up and imports were ~0.25 s of a ~1.1 s download of 207 MB (issue 13); the
HLS path never talks to Redis, reads no YAML, and draws its progress bar only when asked.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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
