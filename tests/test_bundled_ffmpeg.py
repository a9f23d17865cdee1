"""The seam into imageio-ffmpeg's wheel layout (pipeline/hls/bundled_ffmpeg.py).

It must answer exactly what ``imageio_ffmpeg.get_ffmpeg_exe()`` answers; when a new
imageio-ffmpeg moves its binary, the first test fails and names both paths.
"""

from __future__ import annotations

import subprocess

import imageio_ffmpeg
import pytest

from pipeline.hls.bundled_ffmpeg import bundled_ffmpeg
from pipeline.hls.remux import ffmpeg_exe


def test_finds_the_binary_imageio_ffmpeg_uses(monkeypatch):
    monkeypatch.delenv("IMAGEIO_FFMPEG_EXE", raising=False)
    fast = bundled_ffmpeg()
    slow = imageio_ffmpeg.get_ffmpeg_exe()
    assert fast == slow, (f"imageio-ffmpeg {imageio_ffmpeg.__version__} keeps its ffmpeg at {slow}, the seam "
                          f"found {fast}: update pipeline/hls/bundled_ffmpeg.py")
    out = subprocess.run([fast, "-hide_banner", "-version"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("ffmpeg version")


def test_the_environment_override_wins(monkeypatch, tmp_path):
    monkeypatch.setenv("IMAGEIO_FFMPEG_EXE", str(tmp_path / "my-ffmpeg"))
    assert bundled_ffmpeg() == str(tmp_path / "my-ffmpeg")


def test_a_configured_ffmpeg_is_used_as_given():
    assert ffmpeg_exe("/opt/ffmpeg/bin/ffmpeg") == "/opt/ffmpeg/bin/ffmpeg"


@pytest.mark.parametrize("binaries", [[], ["ffmpeg-linux-x86_64-v1", "ffmpeg-linux-aarch64-v1"]])
def test_an_unknown_layout_answers_none(monkeypatch, tmp_path, binaries):
    pkg = tmp_path / "imageio_ffmpeg"
    (pkg / "binaries").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    for name in binaries:
        exe = pkg / "binaries" / name
        exe.write_text("")
        exe.chmod(0o755)
    monkeypatch.delenv("IMAGEIO_FFMPEG_EXE", raising=False)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(__import__("sys").modules, "imageio_ffmpeg")
    assert bundled_ffmpeg() is None
