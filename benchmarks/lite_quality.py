"""Quality of the shipped `lite` model beside every other shipped baseline (`conse`, `preclip`).

Reporting sets only — nothing here was trained or tuned on (the recipe was chosen by
benchmarks/lite_select.py on validation splits):
- CIFAR-10-dev zero-shot top-1 (2,000 images), template "a photo of a {}." and the 80 CLIP templates;
- FER2013-dev, the reporting part (`lite_recipe.fer_parts`, 50 % of each emotion, 478 faces), top-1
  with "a photo of a {}." — zero-shot for conse/preclip, *not* for lite, which trains on FER's
  separate 30 % training part;
- breadth: the 250 ImageNet-sample classes `lite` never trains on (`lite_recipe.breadth_mask`),
  each photo classified among the 250 ImageNet names (top-1 / top-5: the classifier's own labels,
  ConSE's home ground) and among the nearest WordNet parents of those classes ("van", "terrier":
  broad names that are not the classifier's labels, like Caltech-101's; top-1);
- Flickr8k-1k *test* retrieval (200 images / 1,000 captions), text→image and image→text R@1/5/10.
Prints a markdown table plus the recipe's recorded training time.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/lite_quality.py [--model lite --model conse ...]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, require_shared  # noqa: E402

from cliplab.eval import evaluate_retrieval, evaluate_zeroshot  # noqa: E402
from cliplab.eval.metrics import classification_metrics  # noqa: E402
from cliplab.models import load_encoder  # noqa: E402
from cliplab.models.core.imagenet import imagenet_hypernyms  # noqa: E402
from cliplab.models.specs import lite_dir as lite_checkpoint_dir  # noqa: E402
from cliplab.zeroshot import class_embeddings, load_templates  # noqa: E402
from tools.lite_recipe import HYPERNYM_MAX_UP, HYPERNYM_MIN_DEPTH, breadth_mask, fer_parts  # noqa: E402


def reporting_sets(shared: Path) -> dict[str, pd.DataFrame]:
    data = shared / "data"

    def table(folder: str, label: str = "label") -> pd.DataFrame:
        df = pd.read_csv(data / folder / "labels.csv")
        df["path"] = [str((data / folder / p).resolve()) for p in df["path"]]
        df["label"] = df[label].astype(str)
        return df

    cifar, fer, inet = table("cifar10-dev"), table("fer2013-dev"), table("imagenet-samples", "name")
    inet = inet[breadth_mask(len(inet))]
    parents = inet.assign(
        label=[
            (imagenet_hypernyms(w, HYPERNYM_MIN_DEPTH, HYPERNYM_MAX_UP) or [n])[0]
            for w, n in zip(inet["wnid"], inet["name"])
        ]
    )
    return {
        "cifar": cifar[["path", "label"]],
        "fer": fer[fer_parts(fer["label"]) == "report"][["path", "label"]],
        "breadth": inet[["path", "label"]],
        "parents": parents[["path", "label"]],
    }


def measure(spec: str, shared: Path, sets: dict) -> dict:
    enc = load_encoder(spec).unfitted()  # preclip: fitted on these sets, not its shipped reference fit
    t = time.perf_counter()
    z1 = evaluate_zeroshot(enc, sets["cifar"], templates="single")
    a = z1["arrays"]  # the same image vectors, the 80 CLIP templates
    c80 = classification_metrics(a["vectors"] @ class_embeddings(enc, a["names"], load_templates("clip80")).T, a["y"])
    fer = evaluate_zeroshot(enc, sets["fer"], templates="single")
    wide = evaluate_zeroshot(enc, sets["breadth"], templates="single")
    pa = wide["arrays"]  # the same photos among their parents' names
    pnames = sorted(sets["parents"]["label"].unique())
    py = sets["parents"]["label"].map({n: i for i, n in enumerate(pnames)}).to_numpy()[pa["ok"]]
    par = classification_metrics(pa["vectors"] @ class_embeddings(enc, pnames, ["a photo of a {}."]).T, py)
    r = evaluate_retrieval(enc, shared / "data" / "flickr8k-1k" / "captions.csv", split="test")
    t2i, i2t = r["text_to_image"], r["image_to_text"]
    return {
        "model": spec,
        "cifar_single": z1["top1"],
        "cifar_clip80": c80["top1"],
        "fer": fer["top1"],
        "breadth_top1": wide["top1"],
        "breadth_top5": wide["top5"],
        "parents_top1": par["top1"],
        "n_parents": len(pnames),
        **{f"t2i_R@{k}": t2i[f"R@{k}"] for k in (1, 5, 10)},
        **{f"i2t_R@{k}": i2t[f"R@{k}"] for k in (1, 5, 10)},
        "n_cifar": z1["n"],
        "n_fer": fer["n"],
        "n_breadth": wide["n"],
        "n_images": r["n_images"],
        "n_texts": r["n_texts"],
        "seconds": time.perf_counter() - t,
    }


def markdown(rows: list[dict]) -> str:
    head = (
        "| model | CIFAR-10-dev top-1 (1 template / clip80) | FER reporting part top-1 | "
        "breadth: 250 unseen ImageNet classes top-1 / top-5 | same photos, WordNet-parent names top-1 | "
        "Flickr8k test t→i R@1 / R@5 / R@10 | "
        "i→t R@1 / R@5 / R@10 |"
    )
    lines = [head, "|" + "---|" * 7]
    pct = lambda v: f"{100 * v:.1f}"  # noqa: E731
    for r in rows:
        lines.append(
            f"| {r['model']} | {pct(r['cifar_single'])} / {pct(r['cifar_clip80'])} | {pct(r['fer'])} | "
            f"{pct(r['breadth_top1'])} / {pct(r['breadth_top5'])} | {pct(r['parents_top1'])} | "
            f"{pct(r['t2i_R@1'])} / {pct(r['t2i_R@5'])} / {pct(r['t2i_R@10'])} | "
            f"{pct(r['i2t_R@1'])} / {pct(r['i2t_R@5'])} / {pct(r['i2t_R@10'])} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", help="Repeatable (default: lite, conse, preclip).")
    ap.add_argument("--json", type=Path, help="Also write the raw numbers here.")
    args = ap.parse_args()
    shared = require_shared()
    sets = reporting_sets(shared)
    rows = []
    for spec in args.model or ["lite", "conse", "preclip"]:
        print(f"evaluating {spec} …", file=sys.stderr, flush=True)
        rows.append(measure(spec, shared, sets))
    print(markdown(rows))
    print()
    cfg_file = lite_checkpoint_dir() / "cliplab.json"
    if cfg_file.is_file():
        cfg = json.loads(cfg_file.read_text())
        rec, tr = cfg.get("recipe", {}), cfg.get("training", {})
        if rec:
            print(
                f"`lite` recipe (`{rec.get('command')}`, ConSE fusion w = {rec.get('conse_fusion', 0)}, text ramp {rec.get('conse_fusion_ramp')}): "
                f"{rec.get('seconds', 0):.0f} s in all ({rec.get('setup_seconds', 0):.0f} s loading + features, "
                f"{rec.get('train_seconds', 0):.0f} s training, best epoch {tr.get('best_epoch')} of "
                f"{tr.get('epochs_run')}) on {rec.get('machine')}."
            )
    r0 = rows[0]
    print(
        f"Benchmark machine: {machine()}. CIFAR-10-dev: {r0['n_cifar']} images; FER reporting part: {r0['n_fer']} "
        f"faces (7 classes, chance 14.3 %); breadth: {r0['n_breadth']} photos / classes "
        f"({r0['n_parents']} parent names); Flickr8k test: "
        f"{r0['n_images']} images / {r0['n_texts']} captions. preclip fits its PCAs on the data it encodes "
        "(by design)."
    )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
