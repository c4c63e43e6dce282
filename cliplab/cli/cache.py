"""`cliplab cache` (what is cached: kind, model, size, last used) and `cliplab cache clean`.
The work is in cliplab.runtime.cache_admin; nothing here loads a model."""

from __future__ import annotations

import time
from datetime import datetime
from typing import List, Optional

import typer

from cliplab.cli.app import JsonOpt, app, err, guarded, out, print_json, table

cache_app = typer.Typer(
    help="Cached ONNX exports, training features and zero-shot class embeddings: list or clean them.",
    invoke_without_command=True,
)
app.add_typer(cache_app, name="cache")

KindOpt = typer.Option(None, "--kind", help="onnx, features or classes (repeat; default all).")


def _mb(n: int) -> str:
    """Bytes for people: 512 B, 12.3 kB, 115.2 MB, 1.4 GB."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def _when(ts: float) -> str:
    ago = max(0.0, time.time() - ts)
    unit = next(((s, u) for s, u in ((86400, "d"), (3600, "h"), (60, "min")) if ago >= s), (1, "s"))
    return f"{datetime.fromtimestamp(ts):%Y-%m-%d %H:%M} ({int(ago // unit[0])} {unit[1]} ago)"


def _entries(n: int) -> str:
    return f"{n} entr{'y' if n == 1 else 'ies'}"


@cache_app.callback()
@guarded
def cache_cmd(ctx: typer.Context, kinds: Optional[List[str]] = KindOpt, as_json: bool = JsonOpt):
    """List what cliplab has cached: kind, model, size, last used, and the total."""
    from cliplab.runtime.cache import cache_root
    from cliplab.runtime.cache_admin import check_kinds, list_cache

    ctx.obj = {"kinds": check_kinds(kinds)}
    if ctx.invoked_subcommand is not None:
        return
    entries = list_cache(ctx.obj["kinds"])
    total = sum(e.size_bytes for e in entries)
    if as_json:
        print_json({"root": str(cache_root()), "entries": [e.as_dict() for e in entries], "total_bytes": total})
        return
    if entries:
        rows = [[e.kind, e.model, _mb(e.size_bytes), _when(e.last_used), e.note] for e in entries]
        out.print(table(f"cache in {cache_root()}", ["kind", "model", "size", "last used", "note"], rows))
    out.print(f"total: {_entries(len(entries))}, {_mb(total)} in {cache_root()}", markup=False)


@cache_app.command("clean")
@guarded
def clean_cmd(
    ctx: typer.Context,
    older_than: Optional[str] = typer.Option(
        None, "--older-than", help="Only entries not used for this long: 30d, 12h, 90m (default: every entry)."
    ),
    kinds: Optional[List[str]] = KindOpt,
    dry_run: bool = typer.Option(False, "--dry-run", help="Only list what would be removed."),
    as_json: bool = JsonOpt,
):
    """Remove cached entries (all, or those unused for --older-than). Entries another process holds
    (an export in progress, a training run) are skipped and named."""
    from cliplab.runtime.cache_admin import check_kinds, clean_cache, parse_duration

    age = parse_duration(older_than) if older_than is not None else None
    chosen = check_kinds(kinds) if kinds else (ctx.obj or {}).get("kinds")
    res = clean_cache(age, chosen, dry_run=dry_run)
    if as_json:
        print_json(
            {
                "dry_run": dry_run,
                "removed": [e.as_dict() for e in res.removed],
                "held": [e.as_dict() for e in res.held],
                "freed_bytes": res.freed_bytes,
            }
        )
        return
    verb = "would remove" if dry_run else "removed"
    for e in res.removed:
        out.print(f"{verb} {e.kind} {e.model} ({_mb(e.size_bytes)}, last used {_when(e.last_used)})", markup=False)
    for e in res.held:
        err.print(f"skipped {e.kind} {e.model} ({e.path}): in use by another process (locked)", markup=False)
    line = f"{verb} {_entries(len(res.removed))}, {'would free' if dry_run else 'freed'} {_mb(res.freed_bytes)}"
    out.print(line + (f"; {len(res.held)} in use, skipped" if res.held else ""), markup=False)
