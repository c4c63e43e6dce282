"""How the index commands show indexes: `index --status` tables (both kinds of index), the header
line of search results, and "not indexed" without creating an index."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from cliplab.cli.app import load_model, out, print_json, table


def search_header(d: dict) -> str:
    """The first line of search results, alike for both kinds of index (from their `describe()`):
    what was searched, with which model (and runtime, once it ran), in which index."""
    source = d.get("folder") or ", ".join(d.get("sources") or [])
    return f"{source} · model {d['model']}{ran(d)} · index {d['index_dir']}"


def ran(d: dict) -> str:
    """' (onnx fp32)' once the index's model ran in this process (`describe()` says so), else ''."""
    if "runtime" not in d:
        return ""
    from cliplab.runtime import precision_phrase

    return f" ({d['runtime']} {precision_phrase(d.get('precision', 'fp32'))})"


def not_indexed(folder: Optional[Path], index: Optional[Path], model: Optional[str] = None) -> Optional[str]:
    """Where to say "not indexed" (without creating an index), or None when there is an index (of
    `model`, when given)."""
    from cliplab.errors import CliplabError
    from cliplab.index import find_index
    from cliplab.index.catalog import catalog_exists
    from cliplab.index.locate import normalize_spec

    if index is not None:
        return None if catalog_exists(index) else str(index)
    folder = folder if folder is not None else Path(".")
    if not folder.expanduser().is_dir():
        raise CliplabError(f"no such folder: {folder}")
    found = find_index(folder, normalize_spec(model) if model else None)
    return None if found else str(folder.expanduser().resolve())


def show_status(folder, index, models: list, rt: tuple, as_json: bool) -> None:
    """`index --status`: every index of the folder (or those of the models asked for), or the one
    `--index` names, of either kind. Never creates an index."""
    from cliplab.index import Collection
    from cliplab.index.shards import is_shards_index

    if index is not None and is_shards_index(index):
        from cliplab.index.shards import ShardsIndex

        with ShardsIndex(index) as idx:
            sts = [idx.status()]
    else:
        missing = [m for m in models or [None] if not_indexed(folder, index, m) is not None]
        for m in missing:  # say so; creating an empty index just to show it would be a side effect
            where = not_indexed(folder, index, m)
            if as_json:
                print_json({"folder": where, **({"model": m} if m else {}), "indexed": False})
            else:
                out.print(
                    f"{where}: not indexed{f' with {m}' if m else ''} (run `cliplab index {where}{f' --model {m}' if m else ''}`)",
                    markup=False,
                )
        if missing:
            return
        kw = dict(loader=lambda spec: load_model(spec, *rt))
        if index is not None:
            cols = [Collection(folder, index_dir=index, model=models[0] if models else None, **kw)]
        elif models:
            cols = [Collection.find(folder or Path("."), model=m, **kw) for m in models]
        else:
            cols = Collection.every(folder or Path("."), **kw)
        sts = []
        for col in cols:
            with col:
                sts.append({**col.status(check=True), "runtime": runtime_note(*rt)})
    if as_json:  # the first (default) index's status, and every one under "indexes"
        return print_json({**sts[0], "indexes": sts})
    for st in sts:
        print_status(st, many=len(sts) > 1)


def runtime_note(runtime: str, precision: str, device: str) -> dict:
    return {
        "runtime": runtime,
        "precision": precision,
        "device": device,
        "note": "vectors of one model are interchangeable across runtimes and precisions: "
        "this index is searchable with any of them",
    }


def _metadata(m: dict) -> str:
    """'3 of 3 images; dates from DateTimeOriginal 2, mtime 1'."""
    dates = ", ".join(f"{k.removeprefix('date_from_')} {v}" for k, v in m.items() if k.startswith("date_from_"))
    return f"{m['with_metadata']} of {m['indexed']} images" + (f"; dates from {dates}" if dates else "")


def ocr_line(o: dict) -> str:
    """'on: 40 of 42 images read, 3 with text, 1 failed' (index/ocr.py `coverage`)."""
    if not o["enabled"] and not o["read"]:
        return "off (cliplab index --ocr reads it)"
    line = f"{'on' if o['enabled'] else 'off'}: {o['read']} of {o['images']} images read, {o['with_text']} with text"
    line += f", {o['failed']} failed" if o["failed"] else ""
    return line + (f" ({o['unavailable']})" if o.get("unavailable") else "")


def print_status(st: dict, many: bool = False) -> None:
    scope = f" (sub-folder {st['scope']})" if st["scope"] else ""
    where = ["folder", st["folder"] + scope] if st["folder"] else ["embeddings", ", ".join(st["sources"])]
    rows = [
        where,
        ["index", st["index_dir"]],
        ["model", f"{st['model']} ({st['dim']}-d)" if st["dim"] else f"{st['model']} (nothing embedded yet)"],
        ["indexed", st["indexed"]],
        ["failed", st["failed"]],
        *([["videos", f"{st['videos']} ({st['frames']} frames searched)"]] if st.get("videos") else []),
        *([["pending", ", ".join(f"{v} {k}" for k, v in st["pending"].items())]] if "pending" in st else []),
        ["size on disk", f"{st['size_bytes'] / 1e6:.2f} MB ({st['bytes_per_image'] or 0} B/image)"],
        ["search", st["search"]],
        ["updated", st["updated_at"] or "never"],
        *([["photo metadata", _metadata(st["metadata"])]] if st.get("metadata") else []),
        *([["text in images", ocr_line(st["ocr"])]] if st.get("ocr") else []),
    ]
    if st.get("runtime"):
        r = st["runtime"]
        rows.append(
            [
                "runtime",
                f"{r['runtime']} {r['precision']} (device {r['device']}) for commands here; "
                "any runtime/precision of this model can search this index",
            ]
        )
    out.print(table(f"index status: {st['model']}" if many else "index status", ["", "value"], rows))
    for reason, n in st["failure_reasons"].items():
        out.print(f"  {n} × {reason}", markup=False)
    for f in st["failures"][:20]:
        out.print(f"    {f['path']}: {f['reason']}", markup=False)
