"""Dataset readers shared by eval, train and analysis.

- labelled images: `labels.csv` (path + label columns) or an ImageFolder (one sub-folder per class);
- image–caption pairs: CSV or JSONL with an image column and a caption column, optional `split`.
Paths inside index files are relative to the index file's folder. Every reader returns a pandas
DataFrame with absolute paths, so later stages never care where the file came from.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd

from cliplab.data.images import IMAGE_EXTENSIONS
from cliplab.errors import DataError

IMAGE_COLUMNS = ("path", "image", "file", "filepath", "filename", "image_path")
CAPTION_COLUMNS = ("caption", "text", "sentence", "title")


def read_table(path: Path) -> pd.DataFrame:
    """CSV / JSON / JSONL / parquet → DataFrame, or DataError naming the file."""
    if not path.is_file():
        raise DataError(f"no such file: {path}")
    try:
        if path.suffix.lower() in {".jsonl", ".ndjson"}:
            return pd.read_json(path, lines=True)
        if path.suffix.lower() == ".json":
            return pd.read_json(path)
        if path.suffix.lower() == ".parquet":
            return pd.read_parquet(path)
        # sep=None sniffs the delimiter (`;` from a spreadsheet, tabs); a BOM is dropped
        return pd.read_csv(path, sep=None, engine="python", encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataError(f"cannot read {path}: not UTF-8 text (byte {e.start}); save it as UTF-8") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"cannot read {path}: empty file") from None
    except (ValueError, pd.errors.ParserError, csv.Error) as e:
        raise DataError(f"cannot read {path}: {str(e).strip().splitlines()[0] if str(e).strip() else e}") from None


def _pick(df: pd.DataFrame, wanted: str | None, options: tuple, what: str, path: Path) -> str:
    if wanted:
        if wanted not in df.columns:
            raise DataError(f"{path}: no column {wanted!r} (columns: {', '.join(map(str, df.columns))})")
        return wanted
    for c in options:
        if c in df.columns:
            return c
    raise DataError(
        f"{path}: no {what} column (looked for {', '.join(options)}; found {', '.join(map(str, df.columns))})"
    )


def _absolute(paths: pd.Series, base: Path) -> pd.Series:
    return paths.astype(str).map(lambda p: p if Path(p).is_absolute() else str((base / p).resolve()))


def read_labels(source: str | Path, label_column: str | None = None, path_column: str | None = None) -> pd.DataFrame:
    """Labelled images → DataFrame[path, label(, split)]. `source` is a labels table or an ImageFolder."""
    src = Path(source).expanduser()
    if src.is_dir():
        labels_csv = src / "labels.csv"
        if labels_csv.is_file():
            return read_labels(labels_csv, label_column, path_column)
        rows = [
            (str(f.resolve()), d.name)
            for d in sorted(src.iterdir())
            if d.is_dir()
            for f in sorted(d.rglob("*"))
            if f.suffix.lower() in IMAGE_EXTENSIONS
        ]
        if not rows:
            raise DataError(f"{src}: no labels.csv and no class sub-folders with images")
        return pd.DataFrame(rows, columns=["path", "label"])
    df = read_table(src)
    pcol = _pick(df, path_column, IMAGE_COLUMNS, "image path", src)
    lcol = _pick(df, label_column, ("label", "class", "category", "name"), "label", src)
    if df.empty:
        raise DataError(f"{src}: no rows")
    out = pd.DataFrame({"path": _absolute(df[pcol], src.parent), "label": df[lcol].astype(str)})
    if "split" in df.columns:
        out["split"] = df["split"].astype(str)
    if out["label"].str.strip().eq("").any():
        raise DataError(f"{src}: empty labels in column {lcol!r}")
    return out.reset_index(drop=True)


def read_pairs(
    source: str | Path, split: str | None = None, caption_column: str | None = None, path_column: str | None = None
) -> pd.DataFrame:
    """Image–caption pairs → DataFrame[path, caption, split] (several rows per image allowed)."""
    src = Path(source).expanduser()
    df = read_table(src)
    pcol = _pick(df, path_column, IMAGE_COLUMNS, "image path", src)
    ccol = _pick(df, caption_column, CAPTION_COLUMNS, "caption", src)
    out = pd.DataFrame({"path": _absolute(df[pcol], src.parent), "caption": df[ccol].fillna("").astype(str)})
    out["split"] = df["split"].astype(str) if "split" in df.columns else ""
    if split:
        if "split" not in df.columns:
            raise DataError(f"{src}: --split {split!r} given but the file has no split column")
        out = out[out["split"] == split]
        if out.empty:
            raise DataError(
                f"{src}: no rows with split == {split!r} (splits: {', '.join(sorted(set(df['split'].astype(str))))})"
            )
    if out.empty:
        raise DataError(f"{src}: no rows")
    return out.reset_index(drop=True)
