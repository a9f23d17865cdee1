"""How many file names per second ``pipeline.filenames.identify`` gets through.

    python -m tools.bench_identify [--names 100000] [--seed 1]

Generates messy names the way collections hold them (site prefixes and suffixes, DMM content
ids, FC2 variants, parts, editions, resolutions and codecs, non-ASCII titles, and one name in ten
with no code) and times identifying all of them in one process. It also checks that every
generated name with a code identifies back to the code it was made from, so a fast but wrong
identifier shows up here as misses, not as a better figure.
"""

from __future__ import annotations

import argparse
import random
import time

from pipeline.filenames import Identified, identify

_LETTERS = ["ABC", "SSIS", "IPX", "MIDV", "STARS", "CAWD", "PRED", "FSDSS", "JUL", "ABP"]
_WRAPS = ["{n}", "[site.com]{n}", "{n}@site", "hhd800.com@{n}", "{n}_site.com",
          "【中文字幕】{n}", "{n} 1080p x264", "{n} [FHD][HEVC] 2024-03-01", "({n}) タイトル"]
_TAILS = ["", "", "", "-C", "-UC", "ch", "-CD1", "-B", " part2", "-C-CD2"]
_NO_CODE = ["holiday video", "IMG_2023", "movie 1080p", "中文字幕", "x264 HEVC", "site.com"]


def generate(count: int, rng: random.Random) -> list[tuple[str, str | None]]:
    """``count`` (file name, expected code or None) pairs."""
    out: list[tuple[str, str | None]] = []
    for _ in range(count):
        if rng.random() < 0.1:
            out.append((rng.choice(_NO_CODE) + ".mp4", None))
            continue
        kind = rng.random()
        if kind < 0.15:
            n = rng.randint(100000, 9999999)
            code = f"FC2-PPV-{n}"
            body = rng.choice([code, f"fc2ppv_{n}", f"FC2-{n}"])
        else:
            letters, num = rng.choice(_LETTERS), rng.randint(1, 999)
            code = f"{letters}-{num:03d}"
            low = letters.lower()
            body = rng.choice([code, code.lower(), f"{letters}{num:03d}", f"{low}_{num:03d}",
                               f"{low}{num:05d}", f"h_123{low}{num:05d}"])
            body += rng.choice(_TAILS)
        name = rng.choice(_WRAPS).format(n=body) + rng.choice([".mp4", ".mkv", ".avi"])
        out.append((name, code))
    return out


def measure(names: list[tuple[str, str | None]]) -> dict[str, float]:
    """Names per second, and how many generated names came back with the wrong answer."""
    start = time.perf_counter()
    results = [identify(name) for name, _ in names]
    elapsed = time.perf_counter() - start
    misses = 0
    for (_, code), got in zip(names, results):
        found = got.avid.code if isinstance(got, Identified) else None
        misses += found != code
    return {"names": len(names), "seconds": elapsed, "per_second": len(names) / elapsed,
            "misses": misses}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--names", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    r = measure(generate(args.names, random.Random(args.seed)))
    print(f"identify: {r['names']} names in {r['seconds']:.2f} s = {r['per_second']:,.0f} names/s; "
          f"misses {r['misses']}")


if __name__ == "__main__":
    main()
