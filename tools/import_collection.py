"""A generated collection for ``nassav import`` tests and benchmarks: tiny real videos (made
with the bundled ffmpeg, cached) under the messy names people's collections have.

Every file's expected outcome is returned with it: where it lands in the library, or why it
is left alone. The known AVIDs are to be served by the fixture site; the unknown codes are
well-formed but no catalogue has them.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

CACHE = Path(__file__).resolve().parent / ".cache" / "import-videos"
PREFIXES = ("IPX", "SSIS", "MIDE", "ABP")


@dataclass
class Expect:
    action: str                # place, duplicate, skipped, conflict
    avid: str = ""             # the AVID's code
    target: str = ""           # the library file name (place)
    reason: str = ""           # a piece of the reason (skipped, conflict, duplicate)
    edition: str = ""


@dataclass
class Collection:
    root: Path
    files: dict[str, Expect] = field(default_factory=dict)  # path relative to root → outcome
    known: list[str] = field(default_factory=list)           # AVIDs the fixture site must serve
    conflicts: list[str] = field(default_factory=list)       # AVIDs pre-seeded in the library


def tiny_videos(ffmpeg: str | None = None) -> list[Path]:
    """Three real MP4s (1, 2 and 3 s, 32×24), generated once and cached."""
    import imageio_ffmpeg

    CACHE.mkdir(parents=True, exist_ok=True)
    out = []
    for seconds in (1, 2, 3):
        p = CACHE / f"tiny-{seconds}s.mp4"
        if not p.exists():
            tmp = p.with_suffix(".tmp.mp4")
            subprocess.run([ffmpeg or imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error",
                            "-y", "-f", "lavfi", "-i", f"testsrc=size=32x24:rate=5:duration={seconds}",
                            "-c:v", "libx264", "-pix_fmt", "yuv420p", str(tmp)], check=True)
            tmp.replace(p)
        out.append(p)
    return out


def _word(i: int) -> str:
    """A name part without digits: digits beside letters could read as a code."""
    s = ""
    i += 26
    while i:
        i, r = divmod(i, 26)
        s = chr(ord("a") + r) + s
    return s


def make_collection(root: Path, n: int = 300, *, library: Path | None = None) -> Collection:
    """About ``n`` files under ``root`` (created); with ``library``, a different video is put
    there for a few known AVIDs, so their import is a conflict."""
    videos = tiny_videos()
    root.mkdir(parents=True, exist_ok=True)
    col = Collection(root)
    i = 0

    def put(rel: str, expect: Expect, video: int = 0, data: bytes | None = None) -> None:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if data is not None:
            p.write_bytes(data)
        else:
            shutil.copyfile(videos[video % len(videos)], p)
        col.files[rel] = expect

    while len(col.files) < n:
        pre = PREFIXES[i % len(PREFIXES)]
        num = 100 + i
        code = f"{pre}-{num}"
        lo = pre.lower()
        form = i % 24
        v = i  # which tiny video: sizes differ between neighbours
        if form == 0:
            put(f"{code}.mp4", Expect("place", code, f"{code}.mp4"), v)
        elif form == 1:
            put(f"[site.com]{lo}-{num}.mp4", Expect("place", code, f"{code}.mp4"), v)
        elif form == 2:
            put(f"{lo}-{num}@site.mkv", Expect("place", code, f"{code}.mkv"), v)
        elif form == 3:
            put(f"hhd800.com@{code}.avi", Expect("place", code, f"{code}.avi"), v)
        elif form == 4:
            put(f"{lo}00{num}.mp4", Expect("place", code, f"{code}.mp4"), v)
        elif form == 5:
            put(f"h_123{lo}00{num}.wmv", Expect("place", code, f"{code}.wmv"), v)
        elif form == 6:
            put(f"1{lo}{num}.mp4", Expect("place", code, f"{code}.mp4"), v)
        elif form == 7:
            put(f"{pre}_{num} 1080p x264.ts", Expect("place", code, f"{code}.ts"), v)
        elif form == 8:
            put(f"{code}-C.mp4", Expect("place", code, f"{code}.mp4", edition="C"), v)
        elif form == 9:
            put(f"{lo}-{num}ch.m4v", Expect("place", code, f"{code}.m4v", edition="C"), v)
        elif form == 10:
            put(f"{code}-UC.mp4", Expect("place", code, f"{code}.mp4", edition="UC"), v)
        elif form == 11:
            put(f"{code}-U.mkv", Expect("place", code, f"{code}.mkv", edition="U"), v)
        elif form == 12:
            put(f"{code}-CD1.mp4", Expect("place", code, f"{code}-cd1.mp4"), 0)
            put(f"{lo}-{num}-cd2.mp4", Expect("place", code, f"{code}-cd2.mp4"), 1)
        elif form == 13:
            put(f"{code}-A.mkv", Expect("place", code, f"{code}-cd1.mkv"), 1)
            put(f"{code}-B.mkv", Expect("place", code, f"{code}-cd2.mkv"), 2)
        elif form == 14:
            put(f"multi/{lo}{num} part1.mp4", Expect("place", code, f"{code}-cd1.mp4"), 2)
            put(f"multi/{lo}{num} part2.mp4", Expect("place", code, f"{code}-cd2.mp4"), 0)
        elif form == 15:
            fc2 = f"FC2-PPV-{1000000 + i}"
            name = (f"{fc2}.mp4", f"fc2ppv_{1000000 + i}.mkv", f"FC2-{1000000 + i}.avi")[(i // 24) % 3]
            # The fixture's catalogues are JavBus mirrors, which have no FC2 titles: the import
            # must leave these where they are and say why.
            put(name, Expect("skipped", fc2, reason="FC2 titles are not on JavBus"), v)
            code = ""
        elif form == 16:
            put(f"sub/deeper/{code} [{_word(i)}].mp4", Expect("place", code, f"{code}.mp4"), v)
        elif form == 17:
            put(f"{code}.mp4", Expect("place", code, f"{code}.mp4"), 0)
            put(f"dups/{lo}-{num} copy.mkv", Expect("duplicate", code, reason="the same title as"), 1)
        elif form == 18:
            code = f"ZZQ-{num}"  # well-formed, but no catalogue knows it
            put(f"{code}.mp4", Expect("skipped", code, reason=f"no catalogue has metadata for {code}"), v)
        elif form == 19:
            put(f"family trip {_word(i)}.mp4", Expect("skipped", reason="no product code"), v)
            code = ""
        elif form == 20:
            put(f"{code}.nfo", Expect("skipped", reason="not a video"), data=b"<movie/>")
            put(f"notes {_word(i)}.txt", Expect("skipped", reason="not a video"), data=b"notes")
            code = ""
        elif form == 21:
            put(f"{code} and {pre}-{num + 1000}.mp4", Expect("skipped", reason="ambiguous"), v)
            code = ""
        elif form == 22 and library is not None:
            put(f"{code}.mp4", Expect("conflict", code, reason="already holds a different file"), 0)
            d = library / code
            d.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(videos[2], d / f"{code}.mp4")
            col.conflicts.append(code)
        else:
            put(f"www.site.net_{code}_hd.mp4", Expect("place", code, f"{code}.mp4"), v)
        if code and not code.startswith("ZZQ"):
            col.known.append(code)
        i += 1
    return col
