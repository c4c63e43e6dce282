"""CLI command `explore`: what is in an indexed folder — its photos as named clusters (the map of
`cliplab.analysis.explore`, cached with the index)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from cliplab.cli.app import JsonOpt, app, err, fail, guarded, load_model, out, print_json, table

MODEL_HELP = "The index to explore, by its model (default: the folder's default index)."


@app.command()
@guarded
def explore(
    folder: Path = typer.Argument(Path("."), help="An indexed folder (`cliplab index DIR` first)."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help=MODEL_HELP),
    method: str = typer.Option(
        "auto", "--method", help="auto (UMAP when umap-learn is installed, else PCA), umap, pca."
    ),
    paths: Optional[int] = typer.Option(None, "--paths", min=0, help="Print the paths of this cluster, one a line."),
    as_json: bool = JsonOpt,
):
    """What is in a folder: its photos in k-means clusters (k by silhouette), each named by zero-shot
    against ImageNet's classes and their WordNet parents, with sizes and date ranges.

    Reads the folder's index and writes nothing but the map's cache beside it (INDEX_DIR/map/)."""
    from cliplab.analysis import explore as maps
    from cliplab.analysis.map_views import describe, members
    from cliplab.cli.index_view import not_indexed
    from cliplab.index import Collection
    from cliplab.progress import progress_bar

    where = not_indexed(folder, None, model)
    if where is not None:
        fail(f"{where} has no{' ' + model if model else ''} index: run `cliplab index {folder}` first")
    if method not in maps.METHODS:
        fail(f"--method {method!r}: use {', '.join(maps.METHODS)}")
    with Collection.find(folder, model=model, loader=lambda spec: load_model(spec)) as col:
        done = [0]

        with progress_bar(100, "mapping the photos", not as_json) as advance:

            def step(fraction: float, stage: str) -> None:
                now = int(fraction * 100)
                advance(now - done[0])
                done[0] = now

            m = maps.get(col, method, progress=step)
        if paths is not None:
            if paths >= m.k:
                fail(f"--paths {paths}: this map has clusters 0…{m.k - 1}")
            got = col.catalog.paths(m.ids[members(m, cluster=paths)].tolist())
            for i in m.ids[members(m, cluster=paths)]:
                if int(i) in got:
                    out.print(got[int(i)], markup=False, highlight=False)
            return
        about = describe(m, col.catalog)
        if as_json:
            print_json({"folder": str(col.folder), "model": col.model, "method": m.method, "stale": m.stale, **about})
            return
    _show(about, m.method, col)


def _show(about: dict, method: str, col) -> None:
    from cliplab.analysis.naming import month

    rows = []
    for c in sorted(about["clusters"], key=lambda c: -c["size"]):
        names = ", ".join(f"{n['name']} ({n['score']:.2f})" for n in c["names"]) or "—"
        d = c["dates"]
        when = (
            "—"
            if d is None
            else (month(d["from"]) if month(d["from"]) == month(d["to"]) else f"{month(d['from'])} … {month(d['to'])}")
        )
        rows.append([c["cluster"], c["size"], names, when])
    out.print(about["summary"]["text"], markup=False)
    out.print(table(f"{col.folder} · {col.model} · {method} map", ["cluster", "photos", "top names", "dates"], rows))
    err.print(f"k: {about['rule']}", markup=False)
    err.print("a cluster's paths: cliplab explore DIR --paths C", markup=False)
