"""Whole-process start-up of `cliplab search` (and of an unchanged `cliplab index`), issue 21.

    HF_HUB_OFFLINE=1 python benchmarks/search_startup.py FOLDER --home INDEX_HOME [--runs 10]
    HF_HUB_OFFLINE=1 python benchmarks/search_startup.py FOLDER            # indexes FOLDER in a temp home first

Each run is a fresh `python -c "cliplab.cli.main()"` process (what the `cliplab` script does), timed
from outside: wall clock, and user + system CPU from `wait4`. One untimed run first warms the page
cache and writes bytecode (into a temp PYTHONPYCACHEPREFIX: this checkout stays clean, and the runs
import compiled modules as an installed cliplab does, even where PYTHONDONTWRITEBYTECODE is set).
Prints the medians, then the ten slowest top-level imports of one `-X importtime` run.

--src DIR runs another cliplab source tree (e.g. `git archive HEAD | tar -x -C /tmp/before`) for
before/after figures. Builds nothing big: give a small indexed folder; the catalog and FAISS index
are the only parts of start-up that grow with the folder.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
QUERY = "a dog on the beach"


def child_code(argv: list[str]) -> str:
    return f"import sys; sys.argv = {['cliplab', *argv]!r}\nfrom cliplab.cli import main\nmain()"


def run_once(argv: list[str], env: dict, extra: tuple = ()) -> tuple[float, float, float, int, str]:
    """(wall s, user s, system s, peak RSS MB, stderr) of one process. It runs in the index home, not
    here: `-c` puts the working directory first on sys.path, and PYTHONPATH must pick the source tree."""
    t0 = time.perf_counter()
    p = subprocess.Popen(
        [sys.executable, *extra, "-c", child_code(argv)],
        cwd=env["CLIPLAB_INDEX_HOME"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    err = p.stderr.read()
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        raise SystemExit(f"cliplab {' '.join(argv)} exited {p.returncode}:\n{err[-2000:]}")
    return wall, ru.ru_utime, ru.ru_stime, ru.ru_maxrss // 1024, err


def measure(name: str, argv: list[str], env: dict, runs: int) -> None:
    run_once(argv, env)  # untimed: page cache, bytecode
    rows = [run_once(argv, env) for _ in range(runs)]
    wall = statistics.median(r[0] for r in rows)
    cpu = statistics.median(r[1] + r[2] for r in rows)
    user = statistics.median(r[1] for r in rows)
    sys_ = statistics.median(r[2] for r in rows)
    rss = max(r[3] for r in rows)
    print(
        f"{name}: median of {runs}: {wall:.2f} s wall, {cpu:.2f} s CPU ({user:.2f} user + {sys_:.2f} system), "
        f"peak RSS {rss} MB; walls {' '.join(f'{r[0]:.2f}' for r in rows)}"
    )


def import_top(argv: list[str], env: dict, n: int = 10) -> None:
    """The slowest top-level imports (cumulative µs, as -X importtime prints them) of one run."""
    err = run_once(argv, env, ("-X", "importtime"))[4]
    top = []
    for line in err.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cum, name = line.split("|", 2)
        if not cum.strip().isdigit() or name.startswith("  "):  # the header, or nested
            continue
        top.append((int(cum), name.strip()))
    total = sum(c for c, _ in top)
    print(f"imports (-X importtime, one run, inflated by the tracing): {total / 1e6:.3f} s at top level; slowest:")
    for cum, name in sorted(top, reverse=True)[:n]:
        print(f"  {cum / 1e3:8.1f} ms  {name}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", type=Path, help="an image folder (indexed under --home, or indexed now)")
    ap.add_argument("--home", type=Path, help="CLIPLAB_INDEX_HOME holding its index (default: a temp one, indexed now)")
    ap.add_argument("--cache", type=Path, help="CLIPLAB_CACHE (default: $CLIPLAB_CACHE, else a temp one)")
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--src", type=Path, default=REPO, help="the cliplab source tree to run (default: this one)")
    ap.add_argument("--no-index-row", action="store_true", help="only the search")
    a = ap.parse_args()
    if a.runs < 1:
        ap.error("--runs: at least 1")
    if not a.folder.is_dir():
        ap.error(f"{a.folder}: not a folder")
    tmp = Path(tempfile.mkdtemp(prefix="search-startup-"))
    try:
        run(a, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(a: argparse.Namespace, tmp: Path) -> None:
    cache = a.cache or Path(os.environ.get("CLIPLAB_CACHE") or tmp / "cache")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(
        HF_HUB_OFFLINE="1",
        CLIPLAB_INDEX_HOME=str(a.home or tmp / "home"),
        CLIPLAB_CACHE=str(cache),
        PYTHONPYCACHEPREFIX=str(tmp / "pyc"),
        PYTHONPATH=os.pathsep.join([str(a.src.resolve()), *filter(None, [os.environ.get("PYTHONPATH")])]),
    )
    folder = str(a.folder.resolve())
    Path(env["CLIPLAB_INDEX_HOME"]).mkdir(parents=True, exist_ok=True)
    if a.home is None:
        print(f"indexing {folder} into {env['CLIPLAB_INDEX_HOME']} (lite) …", flush=True)
        run_once(["index", folder], env)
    print(f"cliplab from {a.src.resolve()}; {os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f}")
    search = ["search", QUERY, "--dir", folder, "--no-update", "--after", "2018", "--camera", "canon"]
    measure(f'search "{QUERY}" --no-update --after 2018 --camera canon', search, env, a.runs)
    if not a.no_index_row:
        measure("index, nothing changed", ["index", folder], env, a.runs)
    import_top(search, env)
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
