"""How result rows reach stdout: a table for people on a terminal, one line per row for pipes.

`--format table|csv|tsv|jsonl` (classify, search, duplicates); without it, `table` on a terminal and
`tsv` otherwise. csv/tsv/jsonl carry the same rows and columns (csv/tsv with a header line; fields
holding a tab, comma, quote or newline are quoted as the csv module does). `--json` stays the whole
document; `--paths` / `--print0` print paths only.
"""

from __future__ import annotations

import csv
import json
import sys
from typing import Any, Optional, Sequence

import typer

from cliplab.errors import CliplabError

FORMATS = ("table", "csv", "tsv", "jsonl")
FormatOpt = typer.Option(
    None,
    "--format",
    help="table, csv, tsv or jsonl, one line per row (default: table on a terminal, tsv otherwise).",
)
Print0Opt = typer.Option(
    False, "--print0", "-0", help="Only the paths, each ended by a NUL byte (for xargs -0): any file name survives."
)


def output_mode(fmt: Optional[str], as_json: bool = False, **flags: bool) -> str:
    """The one output asked for: 'json', a flag's name ('paths', 'print0'), or a FORMATS entry."""
    given = ["--json"] * as_json + [f"--{k}" for k, on in flags.items() if on] + ["--format"] * (fmt is not None)
    if len(given) > 1:
        raise CliplabError(f"{' and '.join(given)} each choose the output: give one of them")
    if fmt is not None:
        if fmt.lower() not in FORMATS:
            raise CliplabError(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")
        return fmt.lower()
    if given:
        return given[0].lstrip("-")
    return "table" if sys.stdout.isatty() else "tsv"


def _plain(v: Any) -> Any:
    if isinstance(v, float):
        return round(v, 6)
    if hasattr(v, "item"):  # numpy scalars
        return _plain(v.item())
    return v


def write_rows(mode: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """csv / tsv (header + one line per row) or jsonl (one object per row) on stdout."""
    if mode == "jsonl":
        for r in rows:
            sys.stdout.write(json.dumps(dict(zip(columns, map(_plain, r))), ensure_ascii=False) + "\n")
    else:
        w = csv.writer(sys.stdout, delimiter="\t" if mode == "tsv" else ",", lineterminator="\n")
        w.writerow(columns)
        w.writerows([[_plain(v) for v in r] for r in rows])
    sys.stdout.flush()


def write_paths(paths: Sequence[str], nul: bool) -> None:
    """One path per line, or each ended by NUL (names with newlines stay whole)."""
    end = "\0" if nul else "\n"
    sys.stdout.write("".join(f"{p}{end}" for p in paths))
    sys.stdout.flush()


def print_hits(mode: str, hits: Sequence, header: str) -> None:
    """Search results (rank, score, path; a shards index adds the caption) in any mode but json."""
    from cliplab.cli.app import err, out

    if mode in ("paths", "print0"):
        return write_paths([h.path for h in hits], nul=mode == "print0")
    captions = any(getattr(h, "caption", None) for h in hits)
    rows = [[h.rank, h.score, h.path, *([h.caption or ""] if captions else [])] for h in hits]
    if mode != "table":
        err.print(header, markup=False)  # stdout keeps only the rows
        return write_rows(mode, ["rank", "score", "path", *(["caption"] if captions else [])], rows)
    if hits:
        out.print(header, markup=False)
    for r in rows:
        out.print(f"{r[0]:>3}  {r[1]:.4f}  " + "  ".join(map(str, r[2:])), markup=False)


def print_groups(mode: str, groups: Sequence, threshold: float) -> None:
    """Duplicate groups: a block per group for people, one line per image otherwise."""
    from cliplab.cli.app import err, out

    if mode != "table":
        if not groups:
            err.print(f"no duplicates at threshold {threshold}", markup=False)
        rows = [[i, p, g.min_score, g.max_score] for i, g in enumerate(groups, 1) for p in g.paths]
        return write_rows(mode, ["group", "path", "min_score", "max_score"], rows)
    if not groups:
        out.print(f"no duplicates at threshold {threshold}", markup=False)
    for i, g in enumerate(groups, 1):
        out.print(f"group {i}: {len(g.paths)} images, similarity {g.min_score:.3f}–{g.max_score:.3f}", markup=False)
        for p in g.paths:
            out.print(f"  {p}", markup=False)
