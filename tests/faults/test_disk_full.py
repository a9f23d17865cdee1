"""Disk full in the middle of a download.

The data dir is a small tmpfs (``mount -t tmpfs``), and again a plain directory with the
download worker under ``RLIMIT_FSIZE`` (its writes fail with EFBIG, and ffmpeg is killed by
SIGXFSZ; this is also the fallback where mounting is not permitted), and the
stream is ~6 MB: with 4 MiB the segments in the part directory do not fit, with 8 MiB the
segments fit but not the MP4 being remuxed beside them. The job fails with a reason that
says the disk is full (not "internal error"); no ``{AVID}.mp4`` and no temp MP4 is left,
and the metadata written before stays whole. Once there is room again, the same AVID is
submitted again and completes.
"""

from __future__ import annotations

import os
import resource
import subprocess
import time

import pytest
import redis

from tests.faults.conftest import Cluster, check_final_files, stray_temps, wait_terminal
from tests.figures import record
from tools.fixture_site import FixtureSite

AVID = "FULL-001"
DURATION_S = 16.0
MIB = 1024 * 1024
FULL_WORDS = ("no space left", "disk full", "file too large", "errno 28", "errno 27")


def _mount(path, size: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    if os.environ.get("NASSAV_FAULTS_NO_MOUNT"):  # exercise the RLIMIT_FSIZE fallback
        return False
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True).returncode == 0


@pytest.fixture(params=[("tmpfs", 4), ("tmpfs", 8), ("rlimit", 4), ("rlimit", 8)],
                ids=["tmpfs-parts-do-not-fit", "tmpfs-mp4-does-not-fit",
                     "rlimit-parts-do-not-fit", "rlimit-mp4-does-not-fit"])
def small_disk(tmp_path, request):
    """A tmpfs of that size (where mounting is permitted), or the RLIMIT_FSIZE fallback,
    which is always exercised too: there ffmpeg dies of SIGXFSZ without a word."""
    how, mib = request.param
    mnt = tmp_path / "small"
    size = mib * MIB
    mounted = how == "tmpfs" and _mount(mnt, str(size))
    mnt.mkdir(parents=True, exist_ok=True)
    yield mnt, mounted, size
    if mounted:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


@pytest.fixture
def cluster(tmp_path, r, redis_url, small_disk):
    mnt, mounted, size = small_disk
    site = FixtureSite.start(titles=[AVID], stream_kind="clear", duration_s=DURATION_S, segment_s=1.0,
                             video_kbps=3000)
    c = Cluster(tmp_path, site, redis_url, data_dir=mnt / "data",
                extra={"download": {"max_retries": 0, "min_free_gb": 0}})  # the guard: test_disk_guard.py
    c.mounted, c.size = mounted, size

    def limit_size() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (size // 2, size // 2))
    try:
        c.serve()
        c.worker("metadata")
        c.worker("download", preexec_fn=None if mounted else limit_size)
        c.wait_healthy(metadata=1, download=1)
        yield c
    finally:
        c.stop()
        site.stop()


def test_disk_full_during_download(cluster: Cluster, r: redis.Redis):
    stream = cluster.site.stream(AVID)
    assert stream.total_bytes > cluster.size * 0.7, "the stream must not fit twice on the small disk"
    t0 = time.time()
    job = cluster.submit(AVID)
    end = wait_terminal(r, [job], 60, f"the download to fail ({cluster.log_path})")[job]
    assert end.type == "task_failed", f"expected a failure on a full disk: {end.data}"
    message = end.data.get("message", "")
    video = cluster.data / AVID / f"{AVID}.mp4"
    assert not video.exists(), "a final MP4 exists after a failed download"
    assert any(w in message.lower() for w in FULL_WORDS), f"the reason does not say the disk is full: {message!r}"
    assert "internal error" not in message, f"a full disk is reported as a bug: {message!r}"
    assert not stray_temps(cluster.data, AVID), "temp files left under the AVID folder"
    names = check_final_files(cluster.data, AVID)  # metadata written before the failure is whole
    assert f"{AVID}.json" in names

    # Room again: the same AVID completes (resuming from the kept parts).
    freed = time.time()
    if cluster.mounted:
        subprocess.run(["mount", "-o", "remount,size=64m", str(cluster.data.parent)], check=True)
    else:
        cluster.kill("download")
        cluster.worker("download")
        cluster.wait_healthy(metadata=1, download=1)
    again = cluster.submit(AVID)
    end2 = wait_terminal(r, [again], 60, "the download to complete once there is room")[again]
    assert end2.type == "task_completed", end2.data
    assert f"{AVID}.mp4" in check_final_files(cluster.data, AVID, expected_duration_s=DURATION_S)
    mib = cluster.size // MIB
    method = f"tmpfs {mib} MiB" if cluster.mounted else f"RLIMIT_FSIZE {mib // 2} MiB"
    record(f"Disk full during a download ({mib} MiB)", method=method,
           outcome="failed with reason", reason=message[:160], fail_s=round(end.ts - t0, 1),
           recover_s=round(end2.ts - freed, 1), final_name="absent, then whole after room was made",
           data_lost="none")
