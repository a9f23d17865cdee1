"""Benchmark the HLS engine against yt-dlp (native HLS) and ffmpeg ``-c copy`` on the fixture CDN.

    .venv/bin/python tools/bench_download.py                 # the README table (~5 min on 2 cores)
    .venv/bin/python tools/bench_download.py --quick         # 40 MB stream, 1 repetition
    .venv/bin/python tools/bench_download.py --big           # also a ~2 GB stream (makes it once: minutes)

Every tool downloads the same AES-128 media playlist (``/cdn/BENCH-001/v1/index.m3u8``)
from a fixture site running in this process, once per scenario and repetition, into a
fresh directory. Each run is measured by a small wrapper process, so CPU seconds and
peak RSS cover the tool *and* the ffmpeg it starts (peak RSS = the largest single
process). For nassav the engine runs inside the measured process (``--engine``), so its own
peak RSS is reported apart from the ffmpeg it starts. The fixture CDN counts the requests
each run made: the minimum is the media playlist, the key and one per segment; anything
above it ("extra") is a retry, a steal (a byte range of a running transfer) or a probe.
"valid" = exit 0, an MP4 whose duration is within 2 % of the stream's, whose
video frame count is the stream's (a skipped segment leaves a gap, not a shorter
timeline), and (first repetition) ``ffmpeg -v error -f null`` prints nothing.

yt-dlp is a bench-only dependency: when missing it is installed here, with pycryptodomex
(without it yt-dlp hands AES-128 HLS to ffmpeg and ignores ``-N``), into this
interpreter's environment with ``pip``.

nassav runs byte-compiled, as installed: ``pip install .`` (``deploy/Dockerfile``) compiles the
package, and a checkout writes ``__pycache__`` on its first run, while yt-dlp comes compiled in
site-packages. Before measuring, the bench compiles ``pipeline/`` (``compileall``, into the usual
``__pycache__`` directories): with ``PYTHONDONTWRITEBYTECODE=1`` set, every measured run would
otherwise compile ~60 modules again (~0.1 s of CPU, not the engine's).

The fixture CDN paces like a real one as it is: its handler sets TCP_NODELAY, and its
per-connection throttle delivers each body at exactly the configured rate
(``tools.fixture_site.server.pace``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

AVID = "BENCH-001"
BIG_AVID = "BENCH-002"
FPS = 25  # tools/fixture_site/media.py makes every stream at 25 frames/s


# -- measuring one run -------------------------------------------------------------------

def _measure_main(cmd: list[str]) -> int:
    """Run ``cmd``; print wall seconds, CPU seconds and peak RSS of it and its descendants."""
    with tempfile.NamedTemporaryFile(prefix="nassav-bench-engine-", suffix=".json") as stats:
        cmd = [stats.name if a == ENGINE_STATS else a for a in cmd]
        t0 = time.monotonic()
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wall = time.monotonic() - t0
        try:
            engine = json.loads(Path(stats.name).read_text() or "{}")
        except ValueError:
            engine = {}
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(json.dumps({"wall_s": wall, "cpu_s": ru.ru_utime + ru.ru_stime, "maxrss_kb": ru.ru_maxrss,
                      "engine_maxrss_kb": engine.get("maxrss_kb", 0),
                      "rc": proc.returncode, "stderr": proc.stderr.decode("utf-8", "replace")[-2000:]}))
    return 0


ENGINE_STATS = "{engine-stats}"  # replaced by the measuring wrapper with a temp file's path


def _engine_main(stats_path: str, argv: list[str]) -> NoReturn:
    """``nassav hls`` in this process; then write this process's own peak RSS (not ffmpeg's)
    and end it as ``nassav hls`` does (``pipeline.hls.cli.run``: no interpreter teardown)."""
    from pipeline.hls.cli import exit_now, main as hls_main

    rc = hls_main(argv)
    Path(stats_path).write_text(json.dumps({"maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
    exit_now(rc)


@dataclass
class Run:
    wall_s: float
    cpu_s: float
    maxrss_kb: int
    rc: int
    stderr: str
    engine_maxrss_kb: int = 0  # nassav only: the engine's own process, without its ffmpeg
    requests: int = 0  # every request the fixture CDN received for the run
    extra_requests: int = 0  # above media playlist + key + one per segment
    valid: bool = False
    why: str = ""


def measure(cmd: list[str], cwd: Path) -> Run:
    out = subprocess.run([sys.executable, __file__, "--measure", "--", *cmd], cwd=cwd,
                         capture_output=True, text=True, timeout=1800)
    data = json.loads(out.stdout.strip().splitlines()[-1])
    return Run(**data)


# -- the fixture CDN -----------------------------------------------------------------------

def start_site(stream_args: dict):
    from tools.fixture_site import FixtureSite

    return FixtureSite.start(titles=[AVID], **stream_args)


# -- the tools -----------------------------------------------------------------------------

def ensure_ytdlp() -> str:
    import importlib.util

    if not (importlib.util.find_spec("yt_dlp") and importlib.util.find_spec("Cryptodome")):
        print("bench: installing yt-dlp and pycryptodomex (bench-only) with pip ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "yt-dlp", "pycryptodomex"], check=True)
    out = subprocess.run([sys.executable, "-m", "yt_dlp", "--version"], capture_output=True, text=True)
    return out.stdout.strip()


def commands(tool: str, url: str, out: Path, *, concurrency: int, ffmpeg: str, bin_dir: Path) -> list[str]:
    if tool == "nassav":
        return [sys.executable, __file__, "--engine", ENGINE_STATS, url, "-o", str(out), "--allow-private",
                "--concurrency", str(concurrency), "-q"]
    if tool == "yt-dlp":
        return [sys.executable, "-m", "yt_dlp", "-q", "--no-warnings", "--no-progress", "--no-cache-dir",
                "--force-overwrites", "-N", str(concurrency), "--downloader", "m3u8:native",
                "--ffmpeg-location", str(bin_dir), "-o", str(out), url]
    if tool == "ffmpeg":
        from tools.fixture_site.media import FFMPEG_INPUT_ARGS

        return [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", *FFMPEG_INPUT_ARGS, "-i", url,
                "-c", "copy", "-bsf:a", "aac_adtstoasc", "-y", str(out)]
    raise ValueError(tool)


def byte_compile() -> None:
    """Compile the engine's package as an install does (see the module docstring)."""
    import compileall

    compileall.compile_dir(ROOT / "pipeline", quiet=1)


def startup_s(tool: str, bin_dir: Path, ffmpeg: str) -> float:
    """Median wall seconds of the tool doing nothing (interpreter start and imports)."""
    noop = {"nassav": [sys.executable, "-m", "pipeline.hls", "--help"],
            "yt-dlp": [sys.executable, "-m", "yt_dlp", "--version"],
            "ffmpeg": [ffmpeg, "-hide_banner", "-version"]}[tool]
    walls = []
    for _ in range(3):
        t0 = time.monotonic()
        subprocess.run(noop, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        walls.append(time.monotonic() - t0)
    return statistics.median(walls)


def video_frames(ffmpeg: str, path: Path) -> int | None:
    """Video frames in ``path``, counted by a stream copy to the null muxer (no decoding)."""
    p = subprocess.run([ffmpeg, "-hide_banner", "-nostdin", "-v", "error", "-stats", "-i", str(path),
                        "-map", "0:v:0", "-c", "copy", "-f", "null", "-"], capture_output=True, text=True)
    found = re.findall(r"frame=\s*(\d+)", p.stderr)
    return int(found[-1]) if found else None


def check_output(run: Run, out: Path, expected_s: float, ffmpeg: str, decode: bool) -> None:
    from pipeline.hls.remux import mp4_duration, probe_duration

    if run.rc != 0:
        run.why = f"exit {run.rc}: {run.stderr.strip().splitlines()[-1:] or ''}"
        return
    if not out.is_file():
        run.why = "no output file"
        return
    dur = mp4_duration(out) or probe_duration(ffmpeg, out)
    if abs(dur - expected_s) > 0.02 * expected_s:
        run.why = f"lasts {dur:.1f} s of {expected_s:.1f} s"
        return
    # A skipped segment leaves a gap, not a shorter timeline: count the video frames too.
    frames = video_frames(ffmpeg, out)
    expected_frames = round(expected_s * FPS)
    if frames is None or abs(frames - expected_frames) > max(2, 0.005 * expected_frames):
        run.why = f"{frames} video frames of {expected_frames} (segments skipped)"
        return
    if decode:
        p = subprocess.run([ffmpeg, "-nostdin", "-v", "error", "-i", str(out), "-f", "null", "-"],
                           capture_output=True, text=True)
        if p.returncode != 0 or p.stderr.strip():
            run.why = f"decode errors: {p.stderr.strip()[:120]}"
            return
    run.valid = True


@dataclass
class Row:
    scenario: str
    tool: str
    mb: float
    runs: list[Run] = field(default_factory=list)
    ceiling_mb_s: float | None = None


def count_requests(run: Run, stats: dict, segments: int, has_key: bool) -> None:
    """Every request the fixture CDN received (it was reset before the run); the minimum is
    media playlist + key + one per segment."""
    run.requests = stats["requests"].get("cdn", 0)
    run.extra_requests = run.requests - (1 + int(has_key) + segments)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--measure"]:
        return _measure_main(argv[2:] if argv[1:2] == ["--"] else argv[1:])
    if argv[:1] == ["--engine"]:
        return _engine_main(argv[1], argv[2:])
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kind", default="aes128")
    ap.add_argument("--duration", type=float, default=200.0, help="stream seconds (200 s × 8000 kbps ≈ 207 MB)")
    ap.add_argument("--segment", type=float, default=1.0, help="segment seconds (~1 MB at 8000 kbps)")
    ap.add_argument("--video-kbps", type=int, default=8000)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--reps", type=int, default=3, help="repetitions per row (median reported)")
    ap.add_argument("--slow-reps", type=int, default=1,
                    help="repetitions for ffmpeg when throttled (it is sequential: ~100 s a run)")
    ap.add_argument("--bandwidth", type=int, default=2_000_000, help="per-connection cap of the throttled scenario, bytes/s")
    ap.add_argument("--latency-ms", type=int, default=0, help="added before every segment response (all scenarios)")
    ap.add_argument("--error-rate", type=float, default=0.0, help="segment 500s (all scenarios)")
    ap.add_argument("--scenarios", default="loopback,throttled,faulty",
                    help="loopback (no knobs), throttled (--bandwidth per connection), "
                         "faulty (5 %% of segment responses 500, 1 %% truncated)")
    ap.add_argument("--faulty-reps", type=int, default=1, help="repetitions of the faulty scenario")
    ap.add_argument("--tools", default="nassav,yt-dlp,ffmpeg")
    ap.add_argument("--quick", action="store_true", help="40 MB stream, 1 repetition")
    ap.add_argument("--big", action="store_true",
                    help="also download a long stream (--big-duration) on loopback, once per tool of --big-tools")
    ap.add_argument("--big-duration", type=float, default=2000.0, help="seconds of the big stream (2000 s ≈ 2.07 GB)")
    ap.add_argument("--big-tools", default="nassav,ffmpeg")
    ap.add_argument("--json", type=Path, help="also write the raw measurements here")
    args = ap.parse_args(argv)
    if args.quick:
        args.duration, args.reps = 40.0, 1

    from pipeline.hls.remux import ffmpeg_exe
    from tools.fixture_site.media import make_stream

    tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    ffmpeg = ffmpeg_exe(None)
    versions = {"ffmpeg": subprocess.run([ffmpeg, "-version"], capture_output=True, text=True).stdout.split("\n")[0]}
    if "yt-dlp" in tools:
        versions["yt-dlp"] = ensure_ytdlp()
    stream_args = {"stream_kind": args.kind, "duration_s": args.duration, "segment_s": args.segment,
                   "video_kbps": args.video_kbps}
    t_gen = time.monotonic()
    stream = make_stream(args.kind, duration_s=args.duration, segment_s=args.segment, video_kbps=args.video_kbps)
    print(f"bench: stream {args.kind}, {stream.segments} segments, {stream.total_bytes / 1e6:.1f} MB "
          f"({time.monotonic() - t_gen:.1f} s to make or load)", file=sys.stderr)
    site = start_site(stream_args)
    url = f"{site.base_url}/cdn/{AVID}/v1/index.m3u8"
    work = Path(tempfile.mkdtemp(prefix="nassav-bench-dl-"))
    bin_dir = work / "bin"
    bin_dir.mkdir()
    (bin_dir / "ffmpeg").symlink_to(ffmpeg)  # yt-dlp finds ffmpeg by that name
    if "nassav" in tools:
        byte_compile()
    startup = {tool: startup_s(tool, bin_dir, ffmpeg) for tool in tools}
    print("bench: start-up (no-op) seconds: " + ", ".join(f"{t} {v:.2f}" for t, v in startup.items()),
          file=sys.stderr)
    rows: list[Row] = []
    load_before = os.getloadavg()
    started = time.monotonic()
    plan = [(scenario, AVID, stream, tools) for scenario in scenarios]
    if args.big:
        t_gen = time.monotonic()
        site.add_title(BIG_AVID, duration_s=args.big_duration)
        big = site.stream(BIG_AVID)
        print(f"bench: big stream {big.segments} segments, {big.total_bytes / 1e6:.1f} MB "
              f"({time.monotonic() - t_gen:.1f} s to make or load)", file=sys.stderr)
        big_tools = [t.strip() for t in args.big_tools.split(",") if t.strip()]
        plan.append((f"loopback {big.total_bytes / 1e9:.1f} GB", BIG_AVID, big, big_tools))
    try:
        for scenario, avid, strm, scenario_tools in plan:
            url = f"{site.base_url}/cdn/{avid}/v1/index.m3u8"
            faults = {"latency_ms": args.latency_ms, "error_rate": args.error_rate,
                      "bandwidth_bytes_per_s": args.bandwidth if scenario == "throttled" else 0}
            if scenario == "faulty":
                faults.update(error_rate=max(args.error_rate, 0.05), truncate_rate=0.01, seed=1)
            for tool in scenario_tools:
                row = Row(scenario, tool, strm.total_bytes / 1e6)
                if scenario == "throttled":
                    conns = 1 if tool == "ffmpeg" else args.concurrency
                    row.ceiling_mb_s = conns * args.bandwidth / 1e6
                reps = args.slow_reps if (tool == "ffmpeg" and scenario == "throttled") else args.reps
                if scenario == "faulty":
                    reps = min(reps, args.faulty_reps)
                if avid == BIG_AVID:
                    reps = 1
                if reps < 1:
                    continue
                for rep in range(reps):
                    site.reset()
                    site.set_faults(**faults)
                    run_dir = work / f"{scenario.replace(' ', '-')}-{tool}-{rep}"
                    run_dir.mkdir()
                    out = run_dir / "out.mp4"
                    cmd = commands(tool, url, out, concurrency=args.concurrency, ffmpeg=ffmpeg, bin_dir=bin_dir)
                    run = measure(cmd, run_dir)
                    count_requests(run, site.stats(), strm.segments, strm.key is not None)
                    check_output(run, out, strm.duration_s, ffmpeg, decode=(rep == 0 and avid != BIG_AVID))
                    row.runs.append(run)
                    engine = f" (engine {run.engine_maxrss_kb / 1024:.0f} MB)" if run.engine_maxrss_kb else ""
                    print(f"bench: {scenario:9s} {tool:7s} rep {rep + 1}/{reps}: {run.wall_s:6.2f} s "
                          f"{row.mb / run.wall_s:6.1f} MB/s cpu {run.cpu_s:5.2f} s "
                          f"rss {run.maxrss_kb / 1024:5.0f} MB{engine} requests {run.requests} "
                          f"(+{run.extra_requests}) {'valid' if run.valid else 'INVALID: ' + run.why}",
                          file=sys.stderr)
                    shutil.rmtree(run_dir, ignore_errors=True)
                rows.append(row)
    finally:
        site.stop()
        shutil.rmtree(work, ignore_errors=True)
    elapsed = time.monotonic() - started
    print(render(rows, stream, args, versions, load_before, os.getloadavg(), elapsed, startup))
    if args.json:
        args.json.write_text(json.dumps([{"scenario": r.scenario, "tool": r.tool,
                                          "runs": [vars(x) for x in r.runs]} for r in rows], indent=1))
    return 0 if all(x.valid for r in rows if r.tool == "nassav" for x in r.runs) else 1


def render(rows: list[Row], stream, args, versions: dict, load_before, load_after, elapsed_s: float,
           startup: dict[str, float]) -> str:
    mb = stream.total_bytes / 1e6
    lines = [
        f"Stream: {args.kind}, {stream.segments} segments of {args.segment:g} s, {mb:.1f} MB; "
        f"concurrency {args.concurrency} (nassav, yt-dlp -N); throttled = {args.bandwidth / 1e6:g} MB/s per connection"
        + (f"; latency {args.latency_ms} ms" if args.latency_ms else "")
        + (f"; error rate {args.error_rate:g}" if args.error_rate else ""),
        f"Machine: {os.cpu_count()} cores, {platform.python_implementation()} {platform.python_version()}; "
        f"load average {load_before[0]:.1f} before, {load_after[0]:.1f} after; bench took {elapsed_s:.0f} s. "
        + "; ".join(f"{k} {v}" for k, v in versions.items()),
        "",
        "Start-up (the tool doing nothing, subtracted in the 'excl. start-up' column): "
        + ", ".join(f"{t} {v:.2f} s" for t, v in startup.items()),
        "",
        "| scenario | tool | runs | wall s (median) | MB/s | MB/s excl. start-up | % of ceiling | CPU s "
        "| peak RSS MB | engine RSS MB | requests (extra) | output valid |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        wall = statistics.median(x.wall_s for x in r.runs)
        cpu = statistics.median(x.cpu_s for x in r.runs)
        rss = max(x.maxrss_kb for x in r.runs) / 1024
        rate = r.mb / wall
        net = r.mb / max(1e-3, wall - startup.get(r.tool, 0.0))
        ceiling = (f"{100 * rate / r.ceiling_mb_s:.0f} % ({100 * net / r.ceiling_mb_s:.0f} %) of {r.ceiling_mb_s:g}"
                   if r.ceiling_mb_s else "")
        bad = [x.why for x in r.runs if not x.valid]
        engine_rss = f"{max(x.engine_maxrss_kb for x in r.runs) / 1024:.0f}" if r.tool == "nassav" else ""
        requests = f"{statistics.median(x.requests for x in r.runs):.0f} (+{max(x.extra_requests for x in r.runs)})"
        valid = "yes" if not bad else f"NO ({len(bad)}/{len(r.runs)}: {bad[0]})"
        lines.append(f"| {r.scenario} | {r.tool} | {len(r.runs)} | {wall:.2f} | {rate:.1f} | {net:.1f} | {ceiling} | "
                     f"{cpu:.2f} | {rss:.0f} | {engine_rss} | {requests} | {valid} |")
    by = {(r.scenario, r.tool): statistics.median(x.wall_s for x in r.runs) for r in rows}
    for scenario in dict.fromkeys(r.scenario for r in rows):
        if (scenario, "nassav") in by and (scenario, "yt-dlp") in by:
            lines.append(f"\n{scenario}: nassav is {by[(scenario, 'yt-dlp')] / by[(scenario, 'nassav')]:.2f}× "
                         "yt-dlp's throughput at equal concurrency.")
        if (scenario, "nassav") in by and (scenario, "ffmpeg") in by:
            lines.append(f"\n{scenario}: nassav has {100 * by[(scenario, 'ffmpeg')] / by[(scenario, 'nassav')]:.0f} % "
                         "of ffmpeg -c copy's throughput (same stream, same run).")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
