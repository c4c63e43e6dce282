"""Zero-shot classification benchmark: class prompts vs labelled images → top-1/top-5/per-class."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping, Sequence

import pandas as pd

from cliplab.errors import DataError
from cliplab.eval.common import dataset_name, embed_paths, read_labelled, resolve_encoder
from cliplab.eval.metrics import classification_metrics
from cliplab.models import Encoder
from cliplab.zeroshot import class_embeddings, load_templates


def load_classnames(spec, labels: Sequence[str], label_column: str | None = None) -> list[str]:
    """Prompt names for `labels` (sorted class labels). Without `spec` the label is the name.

    spec: a dict {label: name}; a CSV/TSV with a key column (the label column's name if present,
    else `label`, else the first) and a `name` column (else the second); a JSON object
    {label: name}; or a JSON list / {"classnames": [...]} / a .txt file (one per line), giving the
    names of the labels in sorted order (the layout of CLIP's ImageNet class-name lists).
    """
    labels = list(labels)
    if spec is None:
        return labels
    mapping: Mapping | None = spec if isinstance(spec, Mapping) else None
    ordered: list | None = list(spec) if isinstance(spec, (list, tuple)) else None
    if mapping is None and ordered is None:
        p = Path(str(spec)).expanduser()
        if not p.is_file():
            raise DataError(f"no such classnames file: {spec}")
        if p.suffix.lower() == ".json":
            try:
                obj = json.loads(p.read_text(encoding="utf-8"))
            except ValueError as e:
                raise DataError(f"{p}: not valid JSON ({e})") from None
            if isinstance(obj, dict) and isinstance(obj.get("classnames"), list):
                ordered = obj["classnames"]
            elif isinstance(obj, list):
                ordered = obj
            elif isinstance(obj, dict):
                mapping = obj
            else:
                raise DataError(f"{p}: expected an object {{label: name}} or a list of names")
        elif p.suffix.lower() in {".txt", ".lst"}:
            ordered = [t.strip() for t in p.read_text(encoding="utf-8").splitlines() if t.strip()]
        else:
            df = pd.read_csv(p, sep=None, engine="python", dtype=str)
            if df.shape[1] < 2:
                raise DataError(f"{p}: a classnames table needs a label column and a name column")
            key = next((c for c in (label_column, "label") if c and c in df.columns), df.columns[0])
            name = "name" if "name" in df.columns and key != "name" else next(c for c in df.columns if c != key)
            mapping = dict(zip(df[key].astype(str), df[name].astype(str)))
    if ordered is not None:
        if len(ordered) != len(labels):
            raise DataError(f"classnames: {len(ordered)} names for {len(labels)} classes")
        return [str(n) for n in ordered]
    missing = [lab for lab in labels if lab not in mapping]
    if missing:
        raise DataError(
            f"classnames: no name for label(s) {', '.join(missing[:5])}"
            + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        )
    return [str(mapping[lab]) for lab in labels]


def check_zeroshot_data(data, label_column: str | None = None, path_column: str | None = None) -> pd.DataFrame:
    """The labelled set, if zero-shot accuracy means something on it: with one class every
    prediction is right, so it is an error rather than a perfect score."""
    df = read_labelled(data, label_column, path_column)
    labels = sorted(df["label"].unique())
    if len(labels) < 2:
        raise DataError(
            f"{dataset_name(data)}: zero-shot needs at least two classes; every image is labelled {labels[0]!r}"
            if labels
            else f"{dataset_name(data)}: no labels"
        )
    return df


def evaluate_zeroshot(
    encoder: Encoder | str,
    data,
    templates: str | Sequence[str] | None = None,
    classnames=None,
    label_column: str | None = None,
    path_column: str | None = None,
    ks: Sequence[int] = (1, 5),
    batch_size: int | None = None,
    progress: bool = False,
) -> dict:
    """Zero-shot accuracy of one model on a labelled image set.

    data: labels.csv (path + label columns), an ImageFolder, or a DataFrame[path, label].
    Classes are the sorted distinct labels; their prompt names come from `classnames` (see
    `load_classnames`); templates: None/"single", "clip80", a file, or a list of templates.
    Images that cannot be read are left out and listed under `failed`.
    Returns top1, top5, mean_per_class_recall, per_class_accuracy {label: accuracy}, n, …;
    `arrays` holds the confusion matrix (rows true, columns predicted) for plots, and the image
    vectors with their class indices `y` and the mask `ok` over the dataset's rows (for reuse,
    e.g. a linear probe on the same embeddings).
    """
    enc = resolve_encoder(encoder)
    df = check_zeroshot_data(data, label_column, path_column)
    labels = sorted(df["label"].unique())
    names = load_classnames(classnames, labels, label_column)
    tmpl = list(templates) if isinstance(templates, (list, tuple)) else load_templates(templates)
    class_emb = class_embeddings(enc, names, tmpl)
    vectors, ok, failed = embed_paths(enc, df["path"].tolist(), batch_size, progress)
    y = df["label"].map({lab: i for i, lab in enumerate(labels)}).to_numpy()[ok]
    m = classification_metrics(vectors @ class_emb.T, y, ks=ks, classnames=labels)
    out = {f"top{k}": m[f"top{k}"] for k in ks}
    out.update(
        {
            "mean_per_class_recall": m["mean_per_class_recall"],
            "n": m["n"],
            "n_classes": len(labels),
            "n_failed": len(failed),
            "templates": len(tmpl),
            "dataset": dataset_name(data),
            "model": enc.describe(),
            "per_class_accuracy": m["per_class_accuracy"],
            "failed": failed,
            "arrays": {
                "confusion_matrix": m["confusion_matrix"],
                "labels": labels,
                "names": names,
                "vectors": vectors,
                "y": y,
                "ok": ok,
            },
        }
    )
    return out
