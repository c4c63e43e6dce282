"""Quality of the shipped `lite` model against the untrained baselines (`conse`, `preclip`).

- CIFAR-10-dev zero-shot top-1 (2,000 images), template "a photo of a {}." and the 80 CLIP templates;
- Flickr8k-1k *test* split retrieval (200 images / 1,000 captions), text→image and image→text R@1/5/10.
Both sets are reporting-only: nothing is trained or tuned on them. Prints a markdown table plus the
recipe's recorded training time.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/lite_quality.py [--model lite --model conse ...]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, require_shared  # noqa: E402

from cliplab.eval import evaluate_retrieval, evaluate_zeroshot  # noqa: E402
from cliplab.models import load_encoder  # noqa: E402
from cliplab.models.registry import lite_checkpoint_dir  # noqa: E402


def measure(spec: str, shared: Path) -> dict:
    enc = load_encoder(spec)
    t = time.perf_counter()
    cifar = shared / "data" / "cifar10-dev" / "labels.csv"
    z1 = evaluate_zeroshot(enc, cifar, templates="single")
    z80 = evaluate_zeroshot(enc, cifar, templates="clip80")
    r = evaluate_retrieval(enc, shared / "data" / "flickr8k-1k" / "captions.csv", split="test")
    t2i, i2t = r["text_to_image"], r["image_to_text"]
    return {"model": spec, "cifar_single": z1["top1"], "cifar_clip80": z80["top1"],
            **{f"t2i_R@{k}": t2i[f"R@{k}"] for k in (1, 5, 10)},
            **{f"i2t_R@{k}": i2t[f"R@{k}"] for k in (1, 5, 10)},
            "n_cifar": z1["n"], "n_images": r["n_images"], "n_texts": r["n_texts"],
            "seconds": time.perf_counter() - t}


def markdown(rows: list[dict]) -> str:
    head = ("| model | CIFAR-10-dev top-1 (1 template) | CIFAR-10-dev top-1 (clip80) | "
            "Flickr8k test t→i R@1 / R@5 / R@10 | i→t R@1 / R@5 / R@10 |")
    lines = [head, "|" + "---|" * 5]
    pct = lambda v: f"{100 * v:.1f}"  # noqa: E731
    for r in rows:
        lines.append(f"| {r['model']} | {pct(r['cifar_single'])} | {pct(r['cifar_clip80'])} | "
                     f"{pct(r['t2i_R@1'])} / {pct(r['t2i_R@5'])} / {pct(r['t2i_R@10'])} | "
                     f"{pct(r['i2t_R@1'])} / {pct(r['i2t_R@5'])} / {pct(r['i2t_R@10'])} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", help="Repeatable (default: lite, conse, preclip).")
    ap.add_argument("--json", type=Path, help="Also write the raw numbers here.")
    args = ap.parse_args()
    shared = require_shared()
    rows = []
    for spec in args.model or ["lite", "conse", "preclip"]:
        print(f"evaluating {spec} …", file=sys.stderr, flush=True)
        rows.append(measure(spec, shared))
    print(markdown(rows))
    print()
    cfg_file = lite_checkpoint_dir() / "cliplab.json"
    if cfg_file.is_file():
        rec = json.loads(cfg_file.read_text()).get("recipe", {})
        tr = json.loads(cfg_file.read_text()).get("training", {})
        if rec:
            print(f"`lite` recipe (`{rec.get('command')}`): {rec.get('seconds', 0):.0f} s in all "
                  f"({rec.get('setup_seconds', 0):.0f} s loading + features, {rec.get('train_seconds', 0):.0f} s "
                  f"training, best epoch {tr.get('best_epoch')} of {tr.get('epochs_run')}) on {rec.get('machine')}.")
    print(f"Benchmark machine: {machine()}. CIFAR-10-dev: {rows[0]['n_cifar']} images; Flickr8k test: "
          f"{rows[0]['n_images']} images / {rows[0]['n_texts']} captions. preclip fits its PCAs on the data "
          "it encodes (by design).")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
