"""`cliplab search QUERY --model a --model b`: one query, the models' results side by side.

Parses nothing new: `search` (cli/index.py) hands over its options; the work is the library's
(`cliplab.search.compare`). Each model must already have an index of the folder (a comparison never
starts embedding one); existing indexes catch up with the folder first, as a search's does.
"""

from __future__ import annotations

from typing import Callable

from cliplab.cli.app import err, fail, out, print_json

MARK = "●"  # a photo only this model found (among the columns shown)


def refuse(**given) -> None:
    """Options that name one index or one model's way of reading text: not for a comparison."""
    for option, value in given.items():
        if value:
            fail(f"{option}: not with several models (it is for one model's search); give one --model")


def search_compare(
    folder,
    models: list[str],
    terms: list,
    k: int,
    search_kw: dict,
    loader: Callable,
    update: Callable | None,
    as_json: bool,
    query: str | None,
) -> None:
    from cliplab.search.compare import compare, open_models

    cols = open_models(folder, models, loader=loader)  # a model without an index: error: … exit 2
    try:
        for col in cols if update is not None else []:
            update(col)
        result = compare(cols, terms, k, **search_kw)
        if as_json:
            name = str(cols[0].folder) + (f"/{cols[0].scope}" if cols[0].scope else "")
            print_json(
                {"collection": name, "query": query, "mode": search_kw.get("mode") or "semantic", **result.as_dict()}
            )
            return
        print_columns(result, f"{cols[0].folder} · {len(cols)} models · k {k}")
    finally:
        for col in cols:
            col.close()


def print_columns(result, header: str) -> None:
    """rank, then per model: file name and score, ● on a photo no other column holds; then the
    agreement line (overlap@k, Spearman ρ and Kendall τ over the union, per pair)."""
    from rich.table import Table

    table = Table(title=header, title_justify="left")
    table.add_column("rank", justify="right")
    for c in result.columns:
        table.add_column(c.model)
    depth = max((len(c.hits) for c in result.columns), default=0)
    for r in range(depth):
        cells = [str(r + 1)]
        for c in result.columns:
            if r >= len(c.hits):
                cells.append("")
                continue
            p = c.paths[r]
            mark = f" {MARK}" if p in c.only_here else ""
            cells.append(f"{p.rsplit('/', 1)[-1]}  {float(c.hits[r].score):.3f}{mark}")
        table.add_row(*cells)
    if not depth:  # filters or a threshold that nothing passes: as a one-model search says it
        err.print("no results under any model", markup=False)
        return
    out.print(table)
    out.print(agreement_line(result.agreement, result.k), markup=False)


def agreement_line(agree: dict, k: int) -> str:
    def num(x) -> str:
        return "–" if x is None else f"{x:.2f}"

    pairs = [
        f"{pair}: overlap@{k} {num(agree['overlap'][pair])}, ρ {num(agree['spearman'][pair])}, "
        f"τ {num(agree['kendall'][pair])}"
        for pair in agree["overlap"]
    ]
    return f"agreement over {agree['union']} photos ({MARK} = found by one model only) · " + " · ".join(pairs)
