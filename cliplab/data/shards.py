"""Sharded data: reading webdataset `.tar` shards, and reading clip-retrieval's embedding layout.

A webdataset shard is a plain tar whose members are grouped into samples by key (the member name
up to the first dot of its file name): `000123.jpg` + `000123.txt` is one sample with a caption.
Members are read by offset, so a shard is listed once (headers only) and each image is read on
its own, in any thread, without unpacking the tar.

clip-retrieval's layout (so its tools and ours read each other's output):

    DIR/img_emb/img_emb_{i}.npy          (n_i, D) float16, L2-normalised; all-zero rows for failures
    DIR/text_emb/text_emb_{i}.npy        same rows, captions embedded (optional; zero when none)
    DIR/metadata/metadata_{i}.parquet    n_i rows, same order: image_path, key, caption, status, error
    DIR/manifest.json                    model spec + fingerprint, dim, dtype, shard plan, counts

The writers of that layout are in `writers.py`; the metadata file is written last, so a shard
counts as finished exactly when its metadata file exists.
"""

from __future__ import annotations

import json
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from cliplab.errors import CliplabError, DataError, ImageError

TAR_SUFFIXES = (".tar",)
# image members, read from bytes by load_image (HEIC/AVIF too; RAW needs a file name, so not RAW)
IMAGE_EXTS = {"jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff", "heic", "heif", "hif", "avif"}
CAPTION_EXTS = ("txt", "caption")
MANIFEST = "manifest.json"
EMB_DTYPE = "float16"  # clip-retrieval's choice too: half the disk, cosine error < 1e-6


def is_tar(path: str | Path) -> bool:
    return str(path).lower().endswith(TAR_SUFFIXES)


class TarMember(str):
    """One image inside a tar shard. As a string it is its label `shard.tar#key`, so it flows through
    every path-based step (metadata tables, CSVs); `load_image` reads it by offset."""

    tar: str
    key: str
    offset: int
    size: int  # -1: the sample has no image member
    caption: str | None

    def __new__(cls, tar: str, key: str, offset: int, size: int, caption: str | None = None):
        obj = super().__new__(cls, f"{tar}#{key}")
        obj.tar, obj.key, obj.offset, obj.size, obj.caption = str(tar), key, int(offset), int(size), caption
        return obj

    def __str__(self) -> str:  # keep the object (str(x) of a plain subclass would drop it)
        return self

    def __reduce__(self):
        return TarMember, (self.tar, self.key, self.offset, self.size, self.caption)

    def read_bytes(self) -> bytes:
        if self.size < 0:
            raise ImageError("no image in this sample (no .jpg/.png/… member)")
        try:
            with open(self.tar, "rb") as f:
                f.seek(self.offset)
                data = f.read(self.size)
        except OSError as e:
            raise ImageError(f"cannot read from {self.tar} ({e.strerror or e})") from None
        if len(data) != self.size:
            raise ImageError("truncated tar member")
        if not data:
            raise ImageError("empty file (0 bytes)")
        return data


def _split_name(name: str) -> tuple[str, str]:
    """webdataset's rule: key = folder + file name up to the first dot; the rest is the extension."""
    folder, _, base = name.rpartition("/")
    stem, _, ext = base.partition(".")
    return (f"{folder}/{stem}" if folder else stem), ext.lower()


def list_tar(path: str | Path, captions: bool = True) -> list[TarMember]:
    """Every sample of a webdataset shard, in tar order: one TarMember per key (headers only, plus
    the small caption members when `captions`)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise CliplabError(f"no such file or folder: {path}")
    samples: dict[str, dict] = {}
    try:
        with tarfile.open(path, "r:") as tf:
            for m in tf:
                if not m.isfile():
                    continue
                key, ext = _split_name(m.name)
                if not key or key.split("/")[-1].startswith("."):
                    continue
                s = samples.setdefault(key, {})
                if ext in IMAGE_EXTS and "offset" not in s:
                    s["offset"], s["size"] = m.offset_data, m.size
                elif captions and ext in CAPTION_EXTS and "caption" not in s:
                    f = tf.extractfile(m)
                    s["caption"] = f.read().decode("utf-8", "replace").strip() if f else None
    except (tarfile.TarError, OSError, EOFError) as e:
        raise DataError(f"{path}: not a readable (uncompressed) tar shard ({e})") from None
    return [
        TarMember(str(path), k, s.get("offset", 0), s.get("size", -1), s.get("caption")) for k, s in samples.items()
    ]


def caption_of(item: str) -> str | None:
    """A tar sample's caption, or the text of a `.txt` file beside an image file (clip-retrieval's
    convention for folders)."""
    if isinstance(item, TarMember):
        return item.caption
    side = Path(item).with_suffix(".txt")
    try:
        return side.read_text(encoding="utf-8", errors="replace").strip() if side.is_file() else None
    except OSError:
        return None


# --- clip-retrieval layout -------------------------------------------------------------------------
def shard_paths(out: str | Path, i: int) -> dict[str, Path]:
    out = Path(out)
    return {
        "img": out / "img_emb" / f"img_emb_{i}.npy",
        "text": out / "text_emb" / f"text_emb_{i}.npy",
        "meta": out / "metadata" / f"metadata_{i}.parquet",
    }


def finished_shards(out: str | Path) -> set[int]:
    """Shard ids whose metadata (written last) and vectors are both in place."""
    meta = Path(out) / "metadata"
    if not meta.is_dir():
        return set()
    done = set()
    for f in meta.iterdir():
        m = re.fullmatch(r"metadata_(\d+)\.parquet", f.name)
        if m and shard_paths(out, int(m.group(1)))["img"].is_file():
            done.add(int(m.group(1)))
    return done


def read_manifest(out: str | Path) -> dict | None:
    p = Path(out) / MANIFEST
    if not p.is_file():
        return None
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError) as e:
        raise DataError(f"{p}: unreadable manifest ({e})") from None


@dataclass
class EmbeddingShard:
    dir: Path
    id: int

    @property
    def paths(self) -> dict[str, Path]:
        return shard_paths(self.dir, self.id)

    def vectors(self, mmap: bool = True) -> np.ndarray:
        return np.load(self.paths["img"], mmap_mode="r" if mmap else None)

    def metadata(self, columns: list[str] | None = None):
        import pandas as pd

        return pd.read_parquet(self.paths["meta"], columns=columns)

    def ok_mask(self) -> np.ndarray:
        """Rows that hold a real vector (failed images are zero rows); all rows for foreign shards
        without a status column."""
        import pyarrow.parquet as pq

        meta = pq.ParquetFile(self.paths["meta"])
        if "status" not in meta.schema_arrow.names:
            return np.ones(meta.metadata.num_rows, bool)
        return meta.read(columns=["status"]).column("status").to_numpy(zero_copy_only=False) == "ok"


def list_shards(out: str | Path) -> list[EmbeddingShard]:
    """The finished shards of an embeddings folder, by id. Raises when there are none."""
    out = Path(out).expanduser()
    if not out.is_dir():
        raise CliplabError(f"no such embeddings folder: {out}")
    ids = sorted(finished_shards(out))
    if not ids:
        raise DataError(f"{out}: no embedding shards (expected img_emb/img_emb_N.npy + metadata/metadata_N.parquet)")
    return [EmbeddingShard(out.resolve(), i) for i in ids]


def iter_rows(shards: list[EmbeddingShard]) -> Iterator[tuple[EmbeddingShard, np.ndarray]]:
    """Each shard with its loaded (in-memory, float32) vectors: one shard in memory at a time."""
    for s in shards:
        yield s, np.asarray(s.vectors(), np.float32)
