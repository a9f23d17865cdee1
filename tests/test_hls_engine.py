"""The HLS engine end to end: real HTTP (FixtureSite), real ffmpeg, no mocks.

Every stream kind decodes; faults are survived; a dead segment fails the job by name;
a SIGKILLed download resumes and refetches at most `concurrency` segments.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pipeline.config import HttpConfig
from pipeline.errors import Cancelled, PlaylistError, SegmentFailed, UnsafeURL, UpstreamError
from pipeline.hls import HlsOptions, Progress, download
from pipeline.hls.remux import ffmpeg_exe, probe_duration
from tests.conftest import ROOT, stop_group
from tools.fixture_site import FixtureSite

FFMPEG = ffmpeg_exe(None)
PRIVATE = HttpConfig(allow_private_urls=True, timeout_s=10, retries=1)
KIND_AVIDS = {"clear": "CLR-001", "aes128": "AES-001", "aes128_noiv": "NOIV-001",
              "byterange": "BRG-001", "fmp4": "FMP-001", "disguised": "DIS-001"}
LONG = "LONG-001"  # 40 segments of 1 s, for faults and resume
BIG = {"aes128": "BIG-001", "byterange": "BIGBR-001"}  # 6 segments of ~1 MB, for range splitting


@pytest.fixture(scope="module")
def fx():
    site = FixtureSite.start(titles=())
    try:
        for kind, avid in KIND_AVIDS.items():
            site.add_title(avid, stream_kind=kind, duration_s=12.0, segment_s=2.0, video_kbps=800)
        site.add_title(LONG, stream_kind="aes128", duration_s=40.0, segment_s=1.0, video_kbps=800)
        for kind, avid in BIG.items():
            site.add_title(avid, stream_kind=kind, duration_s=12.0, segment_s=2.0, video_kbps=4000)
        yield site
    finally:
        site.stop()


@pytest.fixture(autouse=True)
def clean_site(fx):
    fx.reset()
    yield


def master(fx: FixtureSite, avid: str) -> str:
    return f"{fx.base_url}/cdn/{avid}/master.m3u8"


def opts(**kw) -> HlsOptions:
    kw.setdefault("http", PRIVATE)
    return HlsOptions(**kw)


def decode_errors(path: Path) -> str:
    """What ``ffmpeg -v error -i path -f null -`` prints: empty for a clean decode."""
    proc = subprocess.run([FFMPEG, "-nostdin", "-v", "error", "-i", str(path), "-f", "null", "-"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stderr.strip()


def requested(fx: FixtureSite, avid: str) -> dict[int, int]:
    return {int(k): v for k, v in fx.stats()["segments"].get(avid, {}).items()}


@pytest.mark.parametrize("kind", list(KIND_AVIDS))
def test_every_stream_kind_downloads_decodes_and_matches_duration(fx, tmp_path, kind):
    avid = KIND_AVIDS[kind]
    stream = fx.stream(avid)
    seen: list[Progress] = []
    out = tmp_path / f"{avid}.mp4"
    result = download(master(fx, avid), out, part_dir=tmp_path / "parts", options=opts(), progress=seen.append)
    assert result.path == out and out.is_file() and result.bytes == out.stat().st_size
    assert result.segments == stream.segments == result.segments_fetched
    assert result.expected_duration_s == pytest.approx(stream.duration_s, abs=0.01)
    assert decode_errors(out) == ""
    assert probe_duration(FFMPEG, out) == pytest.approx(stream.duration_s, rel=0.02)
    assert not (tmp_path / "parts").exists()  # parts removed after success
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # no temp file left beside it
    # the high variant (v1) was chosen, the low one never fetched
    playlists = fx.stats()["playlists"][avid]
    assert playlists.get("v1") == 1 and "v0" not in playlists
    assert seen[-1].percent == 100.0 and seen[-1].segments_done == stream.segments
    assert all(0 <= p.percent <= 100 for p in seen)


@pytest.mark.parametrize("kind", list(BIG))
def test_idle_workers_steal_the_second_half_of_running_transfers(fx, tmp_path, kind):
    avid = BIG[kind]
    stream = fx.stream(avid)
    assert stream.segments == 6
    # 6 segments of ~1 MB on 4 connections of 2 MB/s: after the first 4, two connections
    # would idle while the last 2 segments trickle in; they take byte ranges of them instead.
    fx.set_faults(bandwidth_bytes_per_s=2_000_000)
    split = download(master(fx, avid), tmp_path / "split.mp4", part_dir=tmp_path / "p1",
                     options=opts(concurrency=4))
    split_requests = fx.stats()["requests"]["cdn"]
    if kind != "byterange":  # (the fixture attributes a range to a segment only at its start)
        counts = requested(fx, avid)
        assert sorted(counts) == list(range(6)) and sum(counts.values()) > 6
    fx.reset()
    whole = download(master(fx, avid), tmp_path / "whole.mp4", part_dir=tmp_path / "p2",
                     options=opts(concurrency=1))
    assert requested(fx, avid) == {n: 1 for n in range(6)}
    assert split_requests > fx.stats()["requests"]["cdn"]  # the stolen halves
    assert split.path.read_bytes() == whole.path.read_bytes()
    assert decode_errors(split.path) == ""


def test_faults_500s_truncations_and_stalls_still_complete(fx, tmp_path):
    fx.set_faults(error_rate=0.10, truncate_rate=0.02, stall_rate=0.05, stall_s=4.0, seed=3)
    stream = fx.stream(LONG)
    out = tmp_path / "out.mp4"
    result = download(master(fx, LONG), out, part_dir=tmp_path / "parts",
                      options=opts(concurrency=8, stall_timeout_s=1.0, segment_retries=6))
    counts = requested(fx, LONG)
    assert sorted(counts) == list(range(stream.segments))
    assert sum(counts.values()) > stream.segments  # faults really happened and were retried
    assert result.segments == stream.segments
    assert decode_errors(out) == ""
    assert result.duration_s == pytest.approx(stream.duration_s, rel=0.02)


def test_stalled_transfers_are_abandoned_by_the_watchdog(fx, tmp_path):
    avid = KIND_AVIDS["aes128"]
    fx.set_faults(stall_rate=0.3, stall_s=20.0, seed=5)
    t0 = time.monotonic()
    result = download(master(fx, avid), tmp_path / "o.mp4", part_dir=tmp_path / "p",
                      options=opts(concurrency=2, stall_timeout_s=1.0))
    took = time.monotonic() - t0
    assert sum(requested(fx, avid).values()) > fx.stream(avid).segments  # some attempts stalled
    assert took < 10.0  # no 20 s stall was waited out (curl alone would wait ~6 s past the burst)
    assert decode_errors(result.path) == ""


def test_segment_failing_every_retry_fails_the_job_by_name(fx, tmp_path):
    fx.set_faults(fail_segments=[3])
    out = tmp_path / "out.mp4"
    with pytest.raises(SegmentFailed) as err:
        download(master(fx, KIND_AVIDS["aes128"]), out, part_dir=tmp_path / "parts",
                 options=opts(segment_retries=2))
    assert err.value.index == 3 and err.value.url.endswith("/seg3.ts")
    assert "HTTP 500" in err.value.reason and "segment 3" in str(err.value)
    assert requested(fx, KIND_AVIDS["aes128"])[3] == 3  # first try + 2 retries
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["parts"]  # no MP4, no temp file; parts kept


def test_resume_after_sigkill_refetches_at_most_concurrency(fx, tmp_path):
    concurrency = 4
    stream = fx.stream(LONG)
    seg_bytes = stream.total_bytes // stream.segments
    fx.set_faults(bandwidth_bytes_per_s=seg_bytes)  # ~1 s per segment and connection
    url = master(fx, LONG)
    out, parts = tmp_path / "resumed.mp4", tmp_path / "parts"
    cmd = [sys.executable, "-m", "pipeline.hls", url, "-o", str(out), "--part-dir", str(parts),
           "--allow-private", "--concurrency", str(concurrency), "-q"]
    proc = subprocess.Popen(cmd, cwd=ROOT, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while len(list((parts / "seg").glob("*.ts"))) < 12:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline, "first run made no progress"
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        stop_group(proc, signal.SIGKILL)
    assert not out.exists()
    first = requested(fx, LONG)
    kept = len(list((parts / "seg").glob("*.ts")))
    assert 12 <= kept < stream.segments

    fx.reset()  # stats to zero, throttle off
    rerun = subprocess.run(cmd + ["--resume"], cwd=ROOT, capture_output=True, text=True, timeout=120,
                           start_new_session=True)
    assert rerun.returncode == 0, rerun.stderr
    second = requested(fx, LONG)
    refetched = set(first) & set(second)
    assert len(refetched) <= concurrency, (sorted(first), sorted(second))
    assert set(first) | set(second) == set(range(stream.segments))
    assert len(second) == stream.segments - kept
    assert not parts.exists()

    clean = tmp_path / "clean.mp4"
    download(url, clean, part_dir=tmp_path / "clean-parts", options=opts())
    assert out.read_bytes() == clean.read_bytes()  # byte-identical to an uninterrupted run
    assert not list(tmp_path.glob(".*.tmp"))  # the killed run's half-written MP4 was cleaned up
    assert decode_errors(out) == ""


def test_cancel_stops_promptly_and_keeps_parts(fx, tmp_path):
    stream = fx.stream(LONG)
    fx.set_faults(bandwidth_bytes_per_s=stream.total_bytes // stream.segments // 2)
    cancel = threading.Event()

    def on_progress(p: Progress) -> None:
        if p.segments_done >= 2:
            cancel.set()

    out = tmp_path / "out.mp4"
    t0 = time.monotonic()
    with pytest.raises(Cancelled):
        download(master(fx, LONG), out, part_dir=tmp_path / "parts", options=opts(concurrency=4),
                 progress=on_progress, cancel=cancel)
    assert time.monotonic() - t0 < 15
    assert not out.exists()
    assert len(list((tmp_path / "parts" / "seg").glob("*.ts"))) >= 2


def test_speed_limit_and_ad_filter(fx, tmp_path):
    avid = KIND_AVIDS["clear"]
    stream = fx.stream(avid)
    last = stream.segment_files[-1]
    limit = stream.total_bytes // 2  # the whole stream in ≥ ~2 s
    out = tmp_path / "out.mp4"
    t0 = time.monotonic()
    result = download(master(fx, avid), out, part_dir=tmp_path / "parts",
                      options=opts(speed_limit_bytes_per_s=limit, ad_segment_regex=rf"/{last}$"))
    took = time.monotonic() - t0
    kept_bytes = stream.total_bytes - (stream.dir / last).stat().st_size
    assert took >= 0.8 * kept_bytes / limit
    assert result.segments == stream.segments - 1
    assert result.expected_duration_s == pytest.approx(stream.duration_s - stream.segment_durations[-1])
    assert result.duration_s == pytest.approx(result.expected_duration_s, rel=0.02)
    assert stream.segments - 1 not in requested(fx, avid)


def test_private_address_refused_without_opt_in(fx, tmp_path):
    with pytest.raises(UnsafeURL):
        download(master(fx, KIND_AVIDS["clear"]), tmp_path / "o.mp4", part_dir=tmp_path / "p",
                 options=HlsOptions())
    assert fx.stats()["requests"] == {}  # refused before any request was sent


def test_missing_playlist_and_non_playlist_are_typed(fx, tmp_path):
    with pytest.raises(UpstreamError, match="404"):
        download(f"{fx.base_url}/cdn/NOPE-404/master.m3u8", tmp_path / "o.mp4", part_dir=tmp_path / "p",
                 options=opts(segment_retries=0))
    with pytest.raises(PlaylistError, match="not an HLS playlist"):
        download(f"{fx.base_url}/", tmp_path / "o.mp4", part_dir=tmp_path / "p", options=opts())
    assert not (tmp_path / "o.mp4").exists()


def test_cli_writes_mp4(fx, tmp_path):
    from pipeline.hls.cli import main

    out = tmp_path / "cli.mp4"
    rc = main([master(fx, KIND_AVIDS["aes128"]), "-o", str(out), "--allow-private", "-q",
               "--referer", f"{fx.base_url}/site/missav/", "--header", "X-Test: 1"])
    assert rc == 0 and out.is_file()
    assert main([f"{fx.base_url}/cdn/NOPE-404/master.m3u8", "-o", str(tmp_path / "x.mp4"),
                 "--allow-private", "-q", "--retries", "0"]) == 1


def test_cli_refusing_a_local_stream_names_allow_private(fx, tmp_path, capsys):
    """The fixture CDN is on loopback: without --allow-private the guard refuses it, and the
    message says which option a user with a local stream needs; nothing is written."""
    from pipeline.hls.cli import main

    out = tmp_path / "o.mp4"
    assert main([master(fx, KIND_AVIDS["clear"]), "-o", str(out), "-q"]) == 1
    err = capsys.readouterr().err
    assert "non-public address" in err and "add --allow-private" in err
    assert not out.exists()
    # A refusal the option would not cure says nothing of it.
    assert main(["ftp://example.com/x.m3u8", "-o", str(out), "-q"]) == 1
    assert "--allow-private" not in capsys.readouterr().err


def test_cli_resume_flag_keeps_or_discards_parts(fx, tmp_path):
    from pipeline.hls.cli import main

    avid = KIND_AVIDS["clear"]
    out, parts = tmp_path / "o.mp4", tmp_path / "o.mp4.parts"
    base = [master(fx, avid), "-o", str(out), "--allow-private", "-q", "--keep-parts"]
    assert main(base) == 0 and parts.is_dir()  # default part dir, kept on request
    out.unlink()
    fx.reset()
    assert main(base + ["--resume"]) == 0 and out.is_file()
    assert requested(fx, avid) == {}  # every segment came from the part directory
    fx.reset()
    assert main(base) == 0  # without --resume: start afresh
    assert sorted(requested(fx, avid)) == list(range(fx.stream(avid).segments))


def test_part_dir_in_use_is_refused(fx, tmp_path):
    from pipeline.errors import MutexLost
    from pipeline.hls.parts import PartDir

    holder = PartDir.open(tmp_path / "p", "another-stream")
    try:
        with pytest.raises(MutexLost, match="in use"):
            download(master(fx, KIND_AVIDS["clear"]), tmp_path / "o.mp4", part_dir=tmp_path / "p",
                     options=opts())
    finally:
        holder.close()
    assert not (tmp_path / "o.mp4").exists()


def test_progress_is_monotonic_and_ends_at_100(fx, tmp_path):
    stream = fx.stream(LONG)
    fx.set_faults(bandwidth_bytes_per_s=stream.total_bytes // stream.segments * 4)
    seen: list[Progress] = []
    download(master(fx, LONG), tmp_path / "o.mp4", part_dir=tmp_path / "p", options=opts(concurrency=4),
             progress=seen.append)
    assert len(seen) >= 5
    pairs = list(zip(seen, seen[1:]))
    assert all(b.percent >= a.percent and b.segments_done >= a.segments_done and b.bytes_done >= a.bytes_done
               for a, b in pairs)
    assert seen[-1].percent == 100.0 and seen[-2].percent < 100.0
    assert any(p.speed_bytes_per_s > 0 and p.eta_s is not None for p in seen[:-1])
