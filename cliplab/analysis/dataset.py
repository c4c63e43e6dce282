"""Every dataset layout `cliplab analyze` accepts, loaded into one shape.

- the seed layout: a folder of category sub-folders plus `captions.json`, either a mapping
  {relative image path: caption (or list of captions)} or a list of
  {image|file|path, caption|text|captions, category?} objects (category defaults to the parent folder);
- a captions table (CSV / JSONL / JSON records, via `read_pairs`), category column optional;
- an ImageFolder (or labels.csv) with no captions: one caption per category is generated
  from CAPTION_TEMPLATE, and the report says so.

Images are sorted by category so heatmaps and tables come out grouped.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from cliplab.data.datasets import read_labels, read_pairs
from cliplab.data.images import IMAGE_EXTENSIONS
from cliplab.errors import DataError

CAPTION_TEMPLATE = "a photo of a {}."
IMAGE_KEYS = ("image", "file", "path", "filename", "image_path")
CAPTION_KEYS = ("caption", "text", "captions")
CATEGORY_KEYS = ("category", "label", "class")
CAPTION_FILES = ("captions.json", "captions.csv", "captions.jsonl")


@dataclass
class AnalysisDataset:
    """images: DataFrame[path, category]; captions: DataFrame[caption, category, image].

    `captions.image` is the row in `images` a caption describes, or -1 for a generated category
    caption, which then matches every image of its category.
    """

    images: pd.DataFrame
    captions: pd.DataFrame
    source: str
    layout: str  # "seed" | "captions-table" | "imagefolder"
    generated_captions: bool = False
    root: Path | None = None  # image paths are shown relative to this
    notes: list[str] = field(default_factory=list)

    @property
    def categories(self) -> list[str]:
        return sorted(self.images["category"].unique())

    def relevance(self, image_rows: np.ndarray | None = None) -> np.ndarray:
        """(n_images, n_captions) bool: caption j describes image i."""
        rows = np.arange(len(self.images)) if image_rows is None else np.asarray(image_rows)
        cap_img = self.captions["image"].to_numpy()
        by_image = cap_img[None, :] == rows[:, None]
        img_cat = self.images["category"].to_numpy()[rows]
        by_category = (cap_img[None, :] < 0) & (self.captions["category"].to_numpy()[None, :] == img_cat[:, None])
        return by_image | by_category

    def display_path(self, path: str) -> str:
        if self.root is not None:
            try:
                return Path(path).relative_to(self.root).as_posix()
            except ValueError:
                pass
        return path

    def summary(self) -> dict:
        return {
            "source": self.source,
            "layout": self.layout,
            "images": len(self.images),
            "captions": len(self.captions),
            "categories": len(self.categories),
            "generated_captions": self.generated_captions,
            "notes": list(self.notes),
        }


def category_phrase(category: str) -> str:
    """Folder name → words for a prompt: '1_drivers_emotions' → 'drivers emotions'."""
    words = re.sub(r"^\d+[_\-. ]+", "", str(category)).replace("_", " ").replace("-", " ").strip()
    return words or str(category)


def load_dataset(source: str | Path, split: str | None = None) -> AnalysisDataset:
    """Any supported layout → AnalysisDataset. Raises DataError naming what is wrong."""
    src = Path(source).expanduser()
    if not src.exists():
        raise DataError(f"no such dataset: {source}")
    if src.is_dir():
        for name in CAPTION_FILES:
            if (src / name).is_file():
                return load_dataset(src / name, split)
        if split:
            raise DataError(f"{src}: --split {split!r} needs a captions table with a split column")
        return _from_imagefolder(src)
    if src.suffix.lower() == ".json":  # the seed format (a list of records fits it too)
        if split:
            raise DataError(f"{src}: --split is not supported for captions.json")
        return _from_seed_json(src)
    return _from_table(src, split)


# --- seed layout: captions.json ------------------------------------------------------------------


def _entry_name(i, key) -> str:
    return f"entry {i} ({key!r})" if key is not None else f"entry {i}"


def _captions_of(value, where: str, path: Path) -> list[str]:
    if isinstance(value, str):
        caps = [value]
    elif isinstance(value, list) and value and all(isinstance(c, str) for c in value):
        caps = list(value)
    else:
        got = type(value).__name__ if not isinstance(value, list) else "a list with non-strings or none"
        raise DataError(f"{path}: {where}: caption must be a string or a list of strings, got {got}")
    caps = [c.strip() for c in caps]
    if any(not c for c in caps):
        raise DataError(f"{path}: {where}: empty caption")
    return caps


def _pick_key(obj: dict, keys: tuple) -> str | None:
    return next((k for k in keys if k in obj), None)


def _from_seed_json(path: Path) -> AnalysisDataset:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"cannot read {path}: {e}") from None
    except ValueError as e:
        raise DataError(f"{path}: not valid JSON ({e})") from None
    root = path.parent.resolve()
    entries: list[tuple[str, object, object, str | None]] = []  # (where, image, captions, category)
    if isinstance(data, dict):
        for i, (k, v) in enumerate(data.items()):
            entries.append((_entry_name(i, k), k, v, None))
    elif isinstance(data, list):
        for i, obj in enumerate(data):
            if not isinstance(obj, dict):
                raise DataError(
                    f"{path}: entry {i}: expected an object with image and caption, got {type(obj).__name__}"
                )
            ik, ck = _pick_key(obj, IMAGE_KEYS), _pick_key(obj, CAPTION_KEYS)
            where = _entry_name(i, obj.get(ik) if ik else None)
            if ik is None or ck is None:
                missing = (
                    "an image key (" + "|".join(IMAGE_KEYS) + ")"
                    if ik is None
                    else "a caption key (" + "|".join(CAPTION_KEYS) + ")"
                )
                raise DataError(f"{path}: {where}: missing {missing}")
            cat_key = _pick_key(obj, CATEGORY_KEYS)
            cat = obj.get(cat_key) if cat_key else None
            if cat is not None and not isinstance(cat, (str, int)):
                raise DataError(f"{path}: {where}: category must be a string, got {type(cat).__name__}")
            entries.append((where, obj[ik], obj[ck], None if cat is None else str(cat)))
    else:
        raise DataError(
            f"{path}: expected a JSON object {{image: caption}} or a list of "
            f"{{image, caption}} objects, got {type(data).__name__}"
        )
    if not entries:
        raise DataError(f"{path}: no entries")

    rows = []
    for where, image, caps, cat in entries:
        if not isinstance(image, str) or not image.strip():
            raise DataError(f"{path}: {where}: image path must be a non-empty string, got {type(image).__name__}")
        f = Path(image) if Path(image).is_absolute() else root / image
        if not f.is_file():
            raise DataError(f"{path}: {where}: image file not found ({f})")
        captions = _captions_of(caps, where, path)
        rows.append((str(f.resolve()), cat or f.parent.name, captions))
    ds = _assemble(rows, str(path), "seed", root)
    listed = set(ds.images["path"])
    unlisted = [f for f in root.rglob("*") if f.suffix.lower() in IMAGE_EXTENSIONS and str(f.resolve()) not in listed]
    if unlisted:
        ds.notes.append(
            f"{len(unlisted)} image(s) in {root} have no entry in {path.name} and were left out "
            f"(first: {unlisted[0].relative_to(root).as_posix()})"
        )
    return ds


# --- captions tables -----------------------------------------------------------------------------


def _from_table(path: Path, split: str | None) -> AnalysisDataset:
    pairs = read_pairs(path)
    from cliplab.data.datasets import read_table  # same reader as read_pairs, so rows line up

    raw = read_table(path).reset_index(drop=True)
    cat_col = _pick_key({c: 1 for c in raw.columns}, CATEGORY_KEYS)
    if cat_col is not None and len(raw) == len(pairs):
        pairs["category"] = raw[cat_col].astype(str).to_numpy()
    else:
        pairs["category"] = pairs["path"].map(lambda p: Path(p).parent.name)
    if split:
        if not (pairs["split"] != "").any():
            raise DataError(f"{path}: --split {split!r} given but the file has no split column")
        pairs = pairs[pairs["split"] == split]
        if pairs.empty:
            raise DataError(f"{path}: no rows with split == {split!r}")
    missing = [p for p in pairs["path"].unique() if not Path(p).is_file()]
    notes = []
    if missing:
        # A table may list thousands of images; a few missing ones are reported, not fatal.
        # (The embedding step records them as failed with the reason.)
        notes.append(f"{len(missing)} image file(s) listed in {path.name} do not exist (first: {missing[0]})")
    rows = []
    for p, group in pairs.groupby("path", sort=False):
        cats = group["category"].unique()
        if len(cats) > 1:
            raise DataError(f"{path}: image {p} has captions in several categories ({', '.join(map(str, cats))})")
        caps = [c.strip() for c in group["caption"] if c.strip()]
        if caps:
            rows.append((p, str(cats[0]), caps))
    if not rows:
        raise DataError(f"{path}: no non-empty captions")
    ds = _assemble(rows, str(path), "captions-table", path.parent.resolve())
    ds.notes.extend(notes)
    return ds


# --- ImageFolder / labels.csv --------------------------------------------------------------------


def _from_imagefolder(folder: Path) -> AnalysisDataset:
    labels = read_labels(folder)
    images = pd.DataFrame({"path": labels["path"].astype(str), "category": labels["label"].astype(str)})
    images = images.sort_values(["category", "path"], kind="stable").reset_index(drop=True)
    cats = sorted(images["category"].unique())
    captions = pd.DataFrame(
        {"caption": [CAPTION_TEMPLATE.format(category_phrase(c)) for c in cats], "category": cats, "image": -1}
    )
    note = (
        f"no captions found: one caption per category was generated as "
        f"{CAPTION_TEMPLATE.format('{category}')!r}; every image matches its category's caption"
    )
    return AnalysisDataset(
        images, captions, str(folder), "imagefolder", generated_captions=True, root=folder.resolve(), notes=[note]
    )


def _assemble(rows: list[tuple[str, str, list[str]]], source: str, layout: str, root: Path) -> AnalysisDataset:
    seen: dict[str, int] = {}
    merged: list[list] = []
    for p, cat, caps in rows:  # the same image listed twice: merge its captions
        if p in seen:
            prev = merged[seen[p]]
            if prev[1] != cat:
                raise DataError(f"{source}: image {p} is listed under two categories ({prev[1]}, {cat})")
            prev[2].extend(caps)
        else:
            seen[p] = len(merged)
            merged.append([p, cat, list(caps)])
    merged.sort(key=lambda r: (r[1], r[0]))
    images = pd.DataFrame({"path": [r[0] for r in merged], "category": [r[1] for r in merged]})
    cap_rows = [(c, cat, i) for i, (_, cat, caps) in enumerate(merged) for c in caps]
    captions = pd.DataFrame(cap_rows, columns=["caption", "category", "image"])
    return AnalysisDataset(images, captions, source, layout, root=root)
