"""Photo-library search at scale, whole processes as a user runs them: index time and peak memory,
an unchanged re-index, the metadata upgrade of an index made by an earlier release (schema 1), and a search
with two filters.

    python benchmarks/make_library.py /tmp/lib --n 100000
    python benchmarks/library_bench.py /tmp/lib [--runs 3] [--home DIR]

--home keeps the index there (default: a temporary folder, removed at the end), e.g. for
benchmarks/library_serve.py to serve it afterwards. Each step is printed as it finishes.

--stand-in makes the first index with a stand-in for lite's image tower (the photos decoded as
usual, then a fixed random projection of an 8×8 thumbnail, stored under lite's identity), for a
machine too busy to embed 100k photos in the time at hand: every later row (unchanged re-index,
upgrade, search with lite's text tower) works on a catalog, FAISS index and metadata of the real
size, and their cost does not depend on what the vectors mean. Measure lite's embedding rate apart.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine  # noqa: E402

CLI = [str(Path(sys.executable).parent / "cliplab")]  # the console script of this environment


CPU: dict[str, float] = {}  # the last run's CPU seconds (user + system), whatever else the machine runs


def timed(args: list[str], env: dict, cmd: list[str] = CLI) -> tuple[float, int]:
    """(seconds, peak RSS in MB) of one whole `cliplab …` process (its own rusage, from wait4; its CPU
    seconds in CPU["last"]). Its output goes to a file (a pipe nobody reads would fill with progress
    bars and stop it)."""
    with tempfile.TemporaryFile() as err:
        t = time.perf_counter()
        proc = subprocess.Popen(cmd + args, env=env, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - t
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode:
            err.seek(0)
            sys.exit(f"{' '.join(cmd + args)} failed ({proc.returncode}): {err.read().decode()[-2000:]}")
    CPU["last"] = usage.ru_utime + usage.ru_stime
    return seconds, usage.ru_maxrss // 1024


def stand_in_index(folder: Path) -> None:
    """`cliplab index FOLDER` with the stand-in encoder (see the module doc), in this process."""
    from cliplab.index import Collection
    from cliplab.models.core.base import Encoder, l2_normalize
    from cliplab.runtime import load_encoder

    lite = load_encoder("lite", runtime="torch")

    class StandIn(Encoder):
        name, dim = "lite", lite.dim
        proj = np.random.default_rng(0).standard_normal((3 * 8 * 8, lite.dim)).astype(np.float32)

        def preprocess(self, image):
            return np.asarray(image.convert("RGB").resize((8, 8)), np.float32).transpose(2, 0, 1) / 255.0

        def encode_image_batch(self, batch):
            return l2_normalize(batch.reshape(len(batch), -1) @ self.proj)

        def encode_texts(self, texts):
            raise RuntimeError("the stand-in embeds images only")

        def describe(self):
            return lite.describe()  # so lite searches the index (same identity)

    with Collection(folder, encoder=StandIn()) as col:
        col.update(progress=True)


def to_schema_1(index_dir: Path) -> None:
    """What an index made by an earlier release looks like: no photo metadata, no keyword index, no OCR
    or video-frame tables (schemas 2 and 3), schema 1."""
    con = sqlite3.connect(index_dir / "catalog.db")
    con.executescript(
        "DROP TABLE photos; DROP TABLE keywords; DROP TABLE IF EXISTS ocr; DROP TABLE IF EXISTS frames; "
        "UPDATE meta SET value='1' WHERE key='schema_version';"
    )
    con.commit()
    con.close()


class Rows(list):
    """The table's rows, each also printed when it is added (a 100k run takes a while)."""

    def append(self, row) -> None:
        print(" | ".join(row), file=sys.stderr, flush=True)
        super().append(row)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("folder", type=Path)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--home", type=Path, help="keep the index here (CLIPLAB_INDEX_HOME); default: a temp folder")
    ap.add_argument("--stand-in", action="store_true", help="first index with a stand-in for lite's image tower")
    ap.add_argument("--stand-in-child", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.stand_in_child:
        return stand_in_index(a.folder)
    n = sum(1 for _ in a.folder.rglob("*.*"))
    with tempfile.TemporaryDirectory() if a.home is None else contextlib.nullcontext(a.home) as home:
        env = {**os.environ, "CLIPLAB_INDEX_HOME": str(home), "HF_HUB_OFFLINE": "1"}
        rows = Rows()

        def median(args: list[str], what: str) -> None:
            runs = [(timed(args, env), CPU["last"]) for _ in range(a.runs)]
            (wall, rss), cpu = sorted(runs)[len(runs) // 2]
            rows.append((what, f"{wall:.2f} s (median of {a.runs})", f"{cpu:.2f} s", f"{rss} MB"))

        if a.stand_in:
            s, rss = timed([__file__, str(a.folder), "--stand-in-child"], env, [sys.executable])
            what = "index (first run, stand-in encoder: not lite's cost)"
        else:
            s, rss = timed(["index", str(a.folder)], env)
            what = "index (first run, lite)"
        rows.append((what, f"{s:.0f} s ({n / s:.0f} photos/s)", f"{CPU['last']:.0f} s", f"{rss} MB"))
        median(["index", str(a.folder)], "index again, nothing changed")
        index_dir = next(Path(home).iterdir())
        to_schema_1(index_dir)
        s, rss = timed(["index", str(a.folder)], env)
        what = "upgrade of a schema-1 index: migration + metadata + keywords"
        rows.append((what, f"{s:.1f} s", f"{CPU['last']:.1f} s", f"{rss} MB"))
        search = ["search", "a dog on the beach", "--dir", str(a.folder), "--no-update"]
        median([*search, "--after", "2018", "--camera", "canon"], "search with two filters (whole process)")
    print(f"# photo library of {n:,} photos ({machine()})\n")
    print("| what | time | CPU (user + system) | peak RSS |\n|---|---|---|---|")
    for r in rows:
        print(f"| {' | '.join(r)} |")


if __name__ == "__main__":
    main()
