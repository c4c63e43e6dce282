"""How `lite`'s recipe generalises to ImageNet classes it never trained on.

The shipped `lite` trains on one photo per ImageNet class, so its ImageNet-sample accuracy in
`eval_all.py` is measured on training photos. Here 250 random classes (seeded) are held out: the
recipe trains on the other 750 (same Flickr8k data, same WordNet-parent rule), then classifies the
250 held-out photos among the 250 held-out names. The previous recipe (6 epochs picked on a 10 %
Flickr8k validation split, no parents, mixed batches) is trained the same way for comparison.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/lite_heldout.py
"""
from __future__ import annotations

import dataclasses
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, require_shared  # noqa: E402

from cliplab.eval import evaluate_zeroshot  # noqa: E402
from cliplab.models import load_encoder  # noqa: E402
from cliplab.train import train  # noqa: E402
from cliplab.train.lite_recipe import hypernym_labels, lite_config  # noqa: E402

N_HELD_OUT = 250


def main() -> None:
    shared = require_shared()
    src = shared / "data" / "imagenet-samples"
    lab = pd.read_csv(src / "labels.csv")
    lab["path"] = [str((src / p).resolve()) for p in lab["path"]]
    held = np.zeros(len(lab), bool)
    held[np.random.default_rng(99).choice(len(lab), N_HELD_OUT, replace=False)] = True
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        lab[~held].to_csv(tmp / "labels.csv", index=False)
        lab[held][["path", "name"]].to_csv(tmp / "heldout.csv", index=False)
        hypernym_labels(tmp / "labels.csv", tmp / "hyper.csv")
        current = lite_config(shared, tmp / "hyper.csv")
        current.labels = [str(tmp / "labels.csv"), str(tmp / "hyper.csv")]
        previous = dataclasses.replace(current, labels=[str(tmp / "labels.csv")], val_split="0.1", epochs=6,
                                       patience=3, batch_by_source=False)
        for name, cfg in (("current recipe", current), ("previous recipe", previous)):
            res = train(cfg, tmp / name.replace(" ", "-"), progress=False)
            enc = load_encoder(str(res.out_dir))
            z = evaluate_zeroshot(enc, tmp / "heldout.csv", label_column="name")
            rows.append((name, z["top1"], z["top5"]))
    print(f"| recipe | {N_HELD_OUT} held-out ImageNet classes: top-1 | top-5 |\n|---|---|---|")
    for name, t1, t5 in rows:
        print(f"| {name} | {100 * t1:.1f} | {100 * t5:.1f} |")
    print(f"\nMachine: {machine()}. Chance: {100 / N_HELD_OUT:.1f} % top-1.")


if __name__ == "__main__":
    main()
