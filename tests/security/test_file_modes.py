"""Files media servers can read, secrets nobody else can (issue 9).

The real stages run on the fixture site under a umask set by each test; the modes of every
file and folder they leave are read back from disk. The rename order and the directory fsync
are watched with strace on the real code paths (atomic_write and the HLS engine's MP4).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import stat
import subprocess
import sys
import textwrap
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest
import redis

from actors import stages
from actors.registry import CHAIN
from actors.context import Context
from pipeline import cookies, logs
from pipeline.avid import parse
from pipeline.config import load
from pipeline.embedded_redis import EmbeddedRedis
from pipeline.errors import ConfigError
from pipeline.files import atomic_write
from tests.api_helpers import gateway, put_resource
from tests.conftest import ROOT
from tools.fixture_site import FixtureSite

AVID = "DEMO-001"


@contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def mode(p: Path) -> int:
    return stat.S_IMODE(os.lstat(p).st_mode)


def modes_under(folder: Path) -> dict[str, str]:
    """Every file and folder under ``folder`` (itself included) → its mode in octal."""
    out = {".": oct(mode(folder))}
    for p in sorted(folder.rglob("*")):
        out[str(p.relative_to(folder))] = oct(mode(p))
    return out


@pytest.fixture(scope="module")
def site():
    s = FixtureSite.start(titles=(AVID,), stream_kind="clear", duration_s=4.0, segment_s=1.0)
    yield s
    s.stop()


def run_job(site: FixtureSite, tmp_path: Path, redis_url: str, library: dict) -> Context:
    """Every stage of a download job, in-process on the real Redis, against the fixture site."""
    extra = {"library": {"extrafanart": True, "actor_photos": True, **library}}
    cfg = load(site.write_config(tmp_path / "c.yaml", data_dir=tmp_path / "data", redis_url=redis_url,
                                 extra=extra), {})
    ctx = Context.create(cfg, redis_url)
    avid = parse(AVID)
    job = ctx.jobs.submit(avid.code)
    assert CHAIN.run_inline(ctx, avid, job.job_id, "download") == ["resolve", "scrape", "cover", "download"]
    return ctx


# -- library files -----------------------------------------------------------------------

@pytest.mark.parametrize("mask, file_mode, want_file, want_dir", [
    (0o022, None, 0o644, 0o755),     # the usual umask: a normal file
    (0o002, None, 0o664, 0o775),     # a group-writable umask is respected too
    (0o022, "0640", 0o640, 0o750),   # shared setup: group reads, others nothing
    (0o077, "0664", 0o664, 0o775),   # an explicit mode is exact, whatever the umask takes away
], ids=["umask022", "umask002", "file_mode0640", "file_mode0664-umask077"])
def test_every_file_of_a_finished_job_has_the_library_mode(site, tmp_path, r, redis_url,
                                                           mask, file_mode, want_file, want_dir):
    library = {} if file_mode is None else {"file_mode": file_mode}
    with umask(mask):
        ctx = run_job(site, tmp_path, redis_url, library)
    try:
        d = ctx.store.dir(parse(AVID))
        names = {p.relative_to(d).as_posix() for p in d.rglob("*")}
        # The job really wrote every kind of library file.
        for want in (f"{AVID}.mp4", f"{AVID}.json", f"{AVID}.nfo", f"{AVID}.jpg", f"{AVID}-poster.jpg",
                     f"{AVID}-fanart.jpg", f"{AVID}-thumb.jpg", "extrafanart/fanart1.jpg"):
            assert want in names, sorted(names)
        assert any(n.startswith(".actors/") and n.endswith(".jpg") for n in names), sorted(names)
        assert not [n for n in names if n.endswith(".tmp")]
        expected = {rel: oct(want_dir if (d / rel).is_dir() else want_file) for rel in modes_under(d)}
        assert modes_under(d) == expected
    finally:
        ctx.redis.close()


def test_files_rewritten_over_old_private_ones_get_the_new_mode(site, tmp_path, r, redis_url):
    with umask(0o022):
        ctx = run_job(site, tmp_path, redis_url, {})
    try:
        avid = parse(AVID)
        d = ctx.store.dir(avid)
        # What the previous version left: everything 0600 (mkstemp).
        for p in d.rglob("*"):
            if p.is_file():
                p.chmod(0o600)
        with umask(0o022):
            job = ctx.jobs.submit(avid.code, kind="metadata")
            stages.resolve(ctx, avid, job.job_id)
            stages.scrape(ctx, avid, job.job_id)
            stages.cover(ctx, avid, job.job_id)  # reuses the cover, rewrites JSON and NFO
        assert oct(mode(ctx.store.meta(avid))) == oct(0o644)
        assert oct(mode(ctx.store.nfo(avid))) == oct(0o644)
    finally:
        ctx.redis.close()


def test_atomic_write_over_an_existing_file_takes_the_new_mode(tmp_path):
    target = tmp_path / "f.json"
    with umask(0o022):
        atomic_write(target, b"1")
        assert oct(mode(target)) == oct(0o644)
        atomic_write(target, b"2", mode=0o640)
        assert oct(mode(target)) == oct(0o640) and target.read_bytes() == b"2"
        atomic_write(target, b"3", mode=0o600)
        assert oct(mode(target)) == oct(0o600)
        atomic_write(target, b"4")
        assert oct(mode(target)) == oct(0o644) and target.read_bytes() == b"4"
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]  # no temp file left


def test_gateway_writes_the_cover_cache_and_user_state_with_the_library_mode(tmp_path, r, redis_url):
    data = tmp_path / "data"
    put_resource(data, AVID)
    with umask(0o022), gateway(data, redis_url, library={"file_mode": "0640"}) as client:
        res = client.get(f"/api/resource/cover?avid={AVID}&size=small")
        assert res.status_code == 200, res.text
        res = client.patch(f"/api/resource/{AVID}/status", json={"watched": True})
        assert res.status_code == 200, res.text
    cache = data / ".cache" / "covers"
    assert oct(mode(cache / f"{AVID}-small.jpg")) == oct(0o640)
    assert (oct(mode(data / ".cache")), oct(mode(cache))) == (oct(0o750), oct(0o750))
    assert oct(mode(data / AVID / f"{AVID}.json")) == oct(0o640)


# -- library.file_mode: the accepted forms ---------------------------------------------------

@pytest.mark.parametrize("text, want", [
    ('"0640"', 0o640), ('"0o664"', 0o664), ("'644'", 0o644),
    ("0640", 0o640),   # YAML's unquoted octal is the int 416
    ("420", 0o644),    # the decimal a JSON user would write
])
def test_file_mode_accepts_octal_as_yaml_and_json_users_write_it(tmp_path, text, want):
    p = tmp_path / "c.yaml"
    p.write_text(f"library:\n  file_mode: {text}\n")
    assert load(p, {}).library.file_mode_bits == want


@pytest.mark.parametrize("text", ["640", '"0755"', '"0400"', '"rw-r-----"', '"8"', "true", '"01644"', "[1]"])
def test_file_mode_refuses_what_is_not_a_library_file_mode_and_names_the_key(tmp_path, text):
    p = tmp_path / "c.yaml"
    p.write_text(f"library:\n  file_mode: {text}\n")
    with pytest.raises(ConfigError) as e:
        load(p, {})
    assert e.value.key == "library.file_mode"
    if text != "[1]":
        assert '"0644"' in str(e.value) and "octal" in str(e.value)


def test_file_mode_cannot_be_changed_through_the_settings_api(tmp_path, r, redis_url):
    with gateway(tmp_path / "data", redis_url) as client:
        res = client.put("/api/setting", json={"library": {"file_mode": "0666"}})
    assert res.status_code == 400 and "file_mode" in res.text
    assert not (tmp_path / "data" / "settings.json").exists()


# -- secrets ---------------------------------------------------------------------------------

def test_cookie_jar_and_settings_stay_owner_only_even_under_umask_000(tmp_path, r, redis_url):
    data = tmp_path / "data"
    data.mkdir()
    # An older file someone loosened: rewriting it must close it again.
    cookies.path(data).write_text("{}")
    cookies.path(data).chmod(0o644)
    with umask(0o000), gateway(data, redis_url, library={"file_mode": "0664"}) as client:
        res = client.post("/api/source/cookie", json={"source": "missav", "cookie": "cf_clearance=abcdef123"})
        assert res.status_code == 200, res.text
        res = client.put("/api/setting", json={"download": {"concurrency": 4}})
        assert res.status_code == 200, res.text
    assert json.loads(cookies.path(data).read_text())["missav"] == {"cf_clearance": "abcdef123"}
    assert oct(mode(cookies.path(data))) == oct(0o600)
    assert oct(mode(data / "settings.json")) == oct(0o600)


def test_embedded_redis_files_are_owner_only_under_umask_000(tmp_path):
    d = tmp_path / ".redis"
    d.mkdir(mode=0o755)
    (d / "redis.log").write_text("left by an older version\n")
    (d / "redis.log").chmod(0o644)
    with umask(0o000):
        srv = EmbeddedRedis(tmp_path)
        url = srv.start()
    try:
        assert url.startswith("unix://")
        c = redis.Redis.from_url(url)
        c.set("nassav:probe", "x")
        c.bgrewriteaof()  # redis-server writes new AOF files itself
        deadline = time.monotonic() + 30
        while c.info("persistence")["aof_rewrite_in_progress"] or c.info("persistence")["aof_rewrite_scheduled"]:
            assert time.monotonic() < deadline, "AOF rewrite did not finish"
            time.sleep(0.05)
        c.close()
        got = modes_under(d)
        assert "redis.sock" in got and any(n.endswith(".aof") for n in got), got
        assert got == {n: oct(0o700 if (d / n).is_dir() else 0o600) for n in got}
    finally:
        srv.stop()
    got = modes_under(d)
    assert got == {n: oct(0o700 if (d / n).is_dir() else 0o600) for n in got}


def test_logs_folder_is_owner_only(tmp_path):
    (tmp_path / "logs").mkdir(mode=0o755)  # as an older version made it
    root = logging.getLogger()
    before = list(root.handlers)
    try:
        with umask(0o000):
            logs.setup("modes", data_dir=tmp_path)
            root.warning("a line")
    finally:
        for h in list(root.handlers):
            if h not in before:
                root.removeHandler(h)
                h.close()
        for h in before:
            if h not in root.handlers:
                root.addHandler(h)
    assert oct(mode(tmp_path / "logs")) == oct(0o700)
    assert (tmp_path / "logs" / "modes.log").read_text().strip().endswith("a line")


# -- order of operations: mode before the rename, directory fsync after it ---------------------

def _strace(script: str, log: Path, *, mask: int) -> None:
    exe = shutil.which("strace")
    assert exe, "strace (Debian package 'strace') is needed to watch the syscalls of a real write"
    cmd = [exe, "-f", "-qq", "-o", str(log), "-e",
           "trace=openat,mkdir,mkdirat,fchmod,chmod,fchmodat,fsync,rename,renameat,renameat2",
           sys.executable, "-c", textwrap.dedent(script)]
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120, umask=mask)
    assert p.returncode == 0, p.stderr[-2000:]


_LINE = re.compile(r"^(\d+)\s+(\w+)\((.*)\)\s+=\s+(-?\d+)")


def _syscalls(log: Path) -> list[tuple[int, str, str, int]]:
    """(tid, name, args, result) in order; interleaved calls (unfinished/resumed) joined."""
    pending: dict[str, str] = {}
    out = []
    for raw in log.read_text().splitlines():
        tid = raw.split(" ", 1)[0]
        if raw.endswith("<unfinished ...>"):
            pending[tid] = raw[: -len("<unfinished ...>")].rstrip()
            continue
        m = re.match(r"^(\d+)\s+<\.\.\. \w+ resumed>\s?(.*)$", raw)
        if m:
            raw = pending.pop(tid, "") + m.group(2)
        m = _LINE.match(raw)
        if m:
            out.append((int(m.group(1)), m.group(2), m.group(3), int(m.group(4))))
    return out


def _assert_mode_then_rename_then_dir_fsync(calls, final: Path, want_mode: int) -> None:
    """In the thread that renames into ``final``: the temp file's fd got ``want_mode`` before
    the rename, and the folder was opened and fsynced after it. Nothing chmods ``final``."""
    renames = [i for i, (_, name, args, res) in enumerate(calls)
               if name.startswith("rename") and res == 0 and args.endswith(f'"{final}"')]
    assert renames, f"no rename into {final}"
    i = renames[-1]
    tid, _, args, _ = calls[i]
    tmp = re.search(r'"([^"]+)"', args).group(1)
    fds = {res for t, name, a, res in calls[:i] if t == tid and name == "openat" and f'"{tmp}"' in a}
    chmods = [a for t, name, a, _ in calls[:i] if t == tid and name == "fchmod"
              and int(a.split(",")[0]) in fds]
    assert chmods and chmods[-1].split(",")[1].strip() == f"0{want_mode:o}", chmods
    after = [(name, a, res) for t, name, a, res in calls[i + 1:] if t == tid]
    dir_fds = [res for name, a, res in after if name == "openat" and f'"{final.parent}"' in a and res >= 0]
    assert dir_fds, f"{final.parent} was not opened after the rename"
    assert ("fsync", str(dir_fds[0]), 0) in after, f"{final.parent} was not fsynced after the rename"
    assert not [c for c in calls if c[1] in ("chmod", "fchmodat") and str(final) in c[2]]


def test_atomic_write_sets_the_mode_before_the_rename_and_fsyncs_the_folder(tmp_path):
    final = tmp_path / "lib" / "X.nfo"
    log = tmp_path / "strace.log"
    _strace(f"""
        from pathlib import Path
        from pipeline.store import ResourceStore
        ResourceStore({str(tmp_path)!r}, file_mode=0o640).write(Path({str(final)!r}), b"<movie/>")
    """, log, mask=0o022)
    assert oct(mode(final)) == oct(0o640)
    assert oct(mode(final.parent)) == oct(0o750)
    calls = _syscalls(log)
    _assert_mode_then_rename_then_dir_fsync(calls, final, 0o640)
    # The folder made for it is durable too: its parent is fsynced after the mkdir.
    made = [i for i, (_, name, args, res) in enumerate(calls)
            if name.startswith("mkdir") and f'"{final.parent}"' in args and res == 0]
    assert made, "the folder was not created by mkdir"
    after = calls[made[0] + 1:]
    fds = [res for _, name, args, res in after if name == "openat" and args.split(", ")[1] == f'"{tmp_path}"']
    assert fds and any(name == "fsync" and args == str(fds[0]) for _, name, args, _ in after)


def test_folders_made_for_library_files_keep_a_shared_parents_setgid_bit(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o2775)  # the usual group-shared library folder
    target = shared / AVID / f"{AVID}.nfo"
    with umask(0o022):
        atomic_write(target, b"<movie/>", mode=0o640, dir_mode=0o750)
    assert oct(stat.S_IMODE(target.parent.stat().st_mode)) == oct(0o2750)
    assert oct(mode(target)) == oct(0o640)
    # An existing folder keeps the mode its owner gave it.
    target.parent.chmod(0o2770)
    with umask(0o022):
        atomic_write(target, b"<movie/>", mode=0o640, dir_mode=0o750)
    assert oct(stat.S_IMODE(target.parent.stat().st_mode)) == oct(0o2770)


def test_the_mp4_gets_its_mode_before_the_rename_and_its_folder_is_fsynced(site, tmp_path):
    final = tmp_path / "lib" / f"{AVID}.mp4"
    log = tmp_path / "strace.log"
    _strace(f"""
        from pathlib import Path
        from pipeline.config import HttpConfig
        from pipeline.hls import HlsOptions, download
        opts = HlsOptions(http=HttpConfig(allow_private_urls=True), file_mode=0o664, concurrency=2)
        download({site.base_url + "/cdn/" + AVID + "/master.m3u8"!r}, Path({str(final)!r}),
                 part_dir=Path({str(tmp_path / "parts")!r}), options=opts)
    """, log, mask=0o077)
    assert final.stat().st_size > 0
    assert oct(mode(final)) == oct(0o664)
    assert oct(mode(final.parent)) == oct(0o775)
    _assert_mode_then_rename_then_dir_fsync(_syscalls(log), final, 0o664)
