"""Photo-library search at scale, whole processes as a user runs them: index time and peak memory,
an unchanged re-index, the metadata upgrade of an index made by an earlier release (schema 1), and a search
with two filters.

    python benchmarks/make_library.py /tmp/lib --n 100000
    python benchmarks/library_bench.py /tmp/lib [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine  # noqa: E402

CLI = [str(Path(sys.executable).parent / "cliplab")]  # the console script of this environment


def timed(args: list[str], env: dict) -> tuple[float, int]:
    """(seconds, peak RSS in MB of the child) of one whole `cliplab …` process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t = time.perf_counter()
    subprocess.run(CLI + args, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seconds = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # the largest child so far (kB)
    return seconds, (peak if peak > before else before) // 1024


def to_schema_1(index_dir: Path) -> None:
    """What an index made by an earlier release looks like: no photo metadata, no keyword index, schema 1."""
    con = sqlite3.connect(index_dir / "catalog.db")
    con.executescript("DROP TABLE photos; DROP TABLE keywords; UPDATE meta SET value='1' WHERE key='schema_version';")
    con.commit()
    con.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("folder", type=Path)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    n = sum(1 for _ in a.folder.rglob("*.*"))
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "CLIPLAB_INDEX_HOME": home, "HF_HUB_OFFLINE": "1"}
        rows = []
        s, rss = timed(["index", str(a.folder)], env)
        rows.append(("index (first run, lite, onnx fp32)", f"{s:.0f} s ({n / s:.0f} photos/s)", f"{rss} MB"))
        again = [timed(["index", str(a.folder)], env)[0] for _ in range(a.runs)]
        rows.append(("index again, nothing changed", f"{statistics.median(again):.2f} s (median of {a.runs})", ""))
        index_dir = next(Path(home).iterdir())
        to_schema_1(index_dir)
        s, rss = timed(["index", str(a.folder)], env)
        rows.append(("upgrade of a schema-1 index: migration + metadata + keywords", f"{s:.1f} s", f"{rss} MB"))
        search = [
            "search",
            "a dog on the beach",
            "--dir",
            str(a.folder),
            "--no-update",
            "--after",
            "2018",
            "--camera",
            "canon",
        ]
        times = [timed(search, env)[0] for _ in range(a.runs)]
        rows.append(
            ("search with two filters (whole process)", f"{statistics.median(times):.2f} s (median of {a.runs})", "")
        )
    print(f"# photo library of {n:,} photos ({machine()})\n")
    print("| what | time | peak RSS |\n|---|---|---|")
    for r in rows:
        print(f"| {' | '.join(r)} |")


if __name__ == "__main__":
    main()
