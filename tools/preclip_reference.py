"""The reference fit shipped with `preclip`:  python tools/preclip_reference.py   (make preclip-model)

`preclip` reduces EfficientNet-Lite0's pooled features (1280-d) and MiniLM's sentence vectors (384-d)
each by its own PCA to 64 dimensions. Fitted on the data being analysed (what eval and analyze do),
its vectors change with the data, so no index can keep them. This script fits both PCAs once, on
data every checkout has, and writes them into the package, where `load_encoder("preclip")` loads them:
- the image PCA on the ImageNet sample photos of the shared data (`imagenet-samples`, one photo per
  ImageNet-1k class, in `labels.csv` order);
- the text PCA on the package's own vocabulary (`cliplab/resources/`): the 1,000 ImageNet class names,
  then all their WordNet parents, each name once, each in the template "a photo of a {}.".

Output: cliplab/models/weights/preclip/reference.npz (`image_mean`, `image_components`, `text_mean`,
`text_components`, float32) and reference.json (what it was fitted on, its sha256). Deterministic:
the same inputs give the same bytes (a zip with fixed timestamps, sklearn's full SVD with its sign
rule), and an unchanged result leaves the files untouched.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from cliplab.data.atomic import atomic_write_bytes
from cliplab.data.shared import shared_dir
from cliplab.models import specs

COMMAND = "python tools/preclip_reference.py"
TEMPLATE = "a photo of a {}."
OUT = Path(specs.__file__).resolve().parent / "weights" / "preclip"
ABOUT = "reference.json"
ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed, so the same arrays give the same bytes


def vocabulary() -> list[str]:
    """ImageNet class names, then all their WordNet parents (nearest first); each once, case-insensitive."""
    from cliplab.models.core.imagenet import _hypernym_table, imagenet_classnames, imagenet_hypernyms

    names = list(imagenet_classnames())
    for wnid in sorted(_hypernym_table()):  # sorted wnids are ImageNet's class order
        names += imagenet_hypernyms(wnid)
    seen: dict[str, str] = {}
    for name in names:
        seen.setdefault(name.lower(), name)
    return list(seen.values())


def photos(shared: Path) -> list[str]:
    root = shared / "data" / "imagenet-samples"
    return [str(root / p) for p in pd.read_csv(root / "labels.csv")["path"]]


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """What np.savez writes, without the time of writing in the zip entries."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for name, arr in arrays.items():
            one = io.BytesIO()
            np.lib.format.write_array(one, np.ascontiguousarray(arr), allow_pickle=False)
            zf.writestr(zipfile.ZipInfo(f"{name}.npy", date_time=ZIP_TIME), one.getvalue())
    return buf.getvalue()


def fit(paths: list[str], texts: list[str], dim: int = specs.PRECLIP_DIM) -> tuple[dict, dict]:
    """Both PCAs, fitted as preclip fits on data → (arrays for the npz, facts for the json)."""
    from cliplab.models.backends.preclip import PreClipEncoder
    from cliplab.pipeline import embed_images

    enc = PreClipEncoder(specs.PRECLIP_VARIANT, dim).unfitted()
    res = embed_images(enc, paths, batch_size=32, workers=1, progress=True)
    if res.failures:
        raise SystemExit(f"{len(res.failures)} photos could not be read, e.g. {res.failures[0]}")
    enc.encode_texts([TEMPLATE.format(t) for t in texts])
    arrays, facts = {}, {}
    for side, pca in (("image", enc.image_pca), ("text", enc.text_pca)):
        arrays[f"{side}_mean"] = pca.mean_.astype(np.float32)
        arrays[f"{side}_components"] = pca.components_.astype(np.float32)
        facts[side] = {
            "features": int(pca.mean_.shape[0]),
            "explained_variance": round(float(pca.explained_variance_ratio_.sum()), 4),
        }
    return arrays, facts


def write(out: Path, arrays: dict, about: dict) -> bool:
    """Write the npz and its json into `out`; False when both already hold exactly that."""
    data = npz_bytes(arrays)
    about = {**about, "file": specs.PRECLIP_REFERENCE, "sha256": hashlib.sha256(data).hexdigest()}
    text = json.dumps(about, indent=2) + "\n"
    npz, js = out / specs.PRECLIP_REFERENCE, out / ABOUT
    if npz.is_file() and js.is_file() and npz.read_bytes() == data and js.read_text() == text:
        return False
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(npz, data)
    atomic_write_bytes(js, text.encode())
    return True


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT, help="folder for reference.npz + reference.json")
    ap.add_argument("--limit", type=int, help="only the first N photos and N vocabulary entries (tests)")
    args = ap.parse_args(argv)
    shared = shared_dir()
    if shared is None:
        raise SystemExit("the shared data folder is missing (../shared or $CLIPLAB_SHARED)")
    paths, texts = photos(shared)[: args.limit], vocabulary()[: args.limit]
    arrays, facts = fit(paths, texts)
    about = {
        "what": "the two PCAs of `preclip` (EfficientNet-Lite0 pooled features and MiniLM, each to 64 dims)",
        "command": COMMAND + (f" --limit {args.limit}" if args.limit else ""),
        "dim": specs.PRECLIP_DIM,
        "image": {
            "tower": f"efficientnet-{specs.PRECLIP_VARIANT}",
            "fitted_on": "shared data imagenet-samples: one photo per ImageNet-1k class, labels.csv order",
            "count": len(paths),
            **facts["image"],
        },
        "text": {
            "tower": "all-MiniLM-L6-v2",
            "fitted_on": "cliplab/resources: ImageNet class names, then their WordNet parents, each once",
            "template": TEMPLATE,
            "count": len(texts),
            **facts["text"],
        },
    }
    changed = write(args.out, arrays, about)
    sha = json.loads((args.out / ABOUT).read_text())["sha256"]
    print(f"{'wrote' if changed else 'unchanged:'} {args.out / specs.PRECLIP_REFERENCE} (sha256 {sha})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
