"""Calibrate and declare `lite`'s int8 towers by task quality (issue 24); `make lite-model` runs it.

1. Activation ranges of the image tower (EfficientNet-Lite0: ReLU6, no SE, made for int8) are
   measured on real photos that are neither validation nor reporting photos — Flickr8k *train*
   photos outside lite_select's validation split and ImageNet-sample photos of classes that are
   neither validation nor breadth classes — and written to `int8_calibration.json` beside the
   weights (a few hundred KB of numbers; building the int8 graph later reads no photo).
   The stem and the first FP32_BLOCKS blocks stay fp32: at 112×112 their int8 noise is what moved
   the vectors most, and they are where int8 saves least.
2. benchmarks/lite_int8.py measures each tower's int8 against fp32 on the validation sets, and the
   result is written into the model's `cliplab.json` under "int8": per tower, the recipe, every
   validation metric fp32/int8, the cosines, and whether the rule (every metric within 0.5 point,
   min cosine ≥ 0.99) holds. The library runs a tower int8 only when that record meets the rule
   (cliplab/runtime/quantize.py); the rest keep fp32. Same photos, same ORT → same bytes.

    HF_HUB_OFFLINE=1 .venv/bin/python tools/lite_int8_calibrate.py [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))

FP32_BLOCKS = 3  # blocks 0..2 (and the stem) stay fp32
N_FLICKR, N_IMAGENET, SEED = 96, 96, 0
BATCH = 16
# Text recipes, fastest first; the first that meets the rule is declared. Dynamic int8 on every
# MatMul (the cosine rule's recipe) moves MiniLM's vectors to min cosine ≈ 0.98; its FFN output
# projections and first/last layers are where that comes from.
TEXT_RECIPES = ("all", "ffn-out, first and last layer fp32")


def calibration_photos(shared: Path) -> dict[str, list[str]]:
    """Photos that no validation or reporting set uses, chosen by a fixed seed."""
    from lite_select import splits

    from tools.lite_recipe import breadth_mask

    s = splits(shared)
    caps = pd.read_csv(shared / "data" / "flickr8k-1k" / "captions.csv")
    train = caps[caps["split"] == "train"]["path"]
    flickr = sorted({str((shared / "data" / "flickr8k-1k" / p).resolve()) for p in train} - set(s["val_images"]))
    im = s["imagenet_all"]
    allowed = ~breadth_mask(len(im)) & ~s["val_classes"]
    imagenet = sorted(im[allowed]["path"])
    rng = np.random.default_rng(SEED)
    return {
        "flickr8k-1k train (not lite_select validation)": sorted(rng.choice(flickr, N_FLICKR, replace=False)),
        "imagenet-samples (not validation or breadth classes)": sorted(rng.choice(imagenet, N_IMAGENET, replace=False)),
    }


def int8_nodes(graph) -> list[str]:
    """The image graph's backbone Conv/Clip/Add nodes from block FP32_BLOCKS on (and the head conv);
    the stem, the first blocks, pooling, the classifier and the ConSE fusion stay fp32."""
    from cliplab.runtime.calibrate import OP_TYPES

    out = []
    for n in graph.node:
        if n.op_type not in OP_TYPES or not n.name.startswith("/backbone/inner/"):
            continue
        m = re.match(r"/backbone/inner/_blocks\.(\d+)/", n.name)
        if (m and int(m.group(1)) >= FP32_BLOCKS) or n.name.startswith(
            ("/backbone/inner/_conv_head", "/backbone/inner/_swish_1/")
        ):
            out.append(n.name)
    return out


def text_fp32_nodes(graph, recipe: str) -> list[str]:
    """The text graph's MatMul/Gemm nodes a recipe keeps fp32 (the fused head's always)."""
    mm = [n.name for n in graph.node if n.op_type in ("MatMul", "Gemm")]
    keep = [n for n in mm if n.startswith("/side")]
    if recipe != "all":
        last = max(int(m.group(1)) for n in mm if (m := re.search(r"/layer\.(\d+)/", n)))
        edge = ("/layer.0/", f"/layer.{last}/")
        keep += [n for n in mm if ("/output/dense" in n and "attention" not in n) or any(e in n for e in edge)]
    return sorted(set(keep))


def calibrate(entry, folder: Path, shared: Path) -> Path:
    import onnx
    from PIL import Image

    from cliplab.runtime.calibrate import activation_ranges, preprocess_graph, write_calibration
    from cliplab.runtime.session import preprocess_from_config

    rec = entry.manifest["towers"]["image"]
    pre_fn = preprocess_from_config(rec["config"]["preprocess"])
    photos = calibration_photos(shared)
    paths = [p for ps in photos.values() for p in ps]
    with tempfile.TemporaryDirectory(prefix="lite-cal-") as tmp:
        pre = Path(tmp) / "pre.onnx"
        preprocess_graph(entry.path(rec["graphs"]["fp32"]["file"]), pre)
        nodes = int8_nodes(onnx.load(str(pre)).graph)

        def batches():
            for i in range(0, len(paths), BATCH):
                x = np.stack([pre_fn(Image.open(p).convert("RGB")) for p in paths[i : i + BATCH]])
                yield {rec["inputs"][0]: x.astype(np.float32)}

        ranges = activation_ranges(pre, nodes, batches())
    data = (shared / "data").resolve()
    names = {k: [os.path.relpath(p, data) for p in v] for k, v in photos.items()}
    out = folder / "int8_calibration.json"
    write_calibration(
        out, nodes, ranges, {"seed": SEED, "sources": {k: len(v) for k, v in names.items()}, "files": names}
    )
    return out


def declare(folder: Path, res: dict) -> None:
    """Write the measured records into cliplab.json "int8" (key order fixed: same bytes twice)."""
    from cliplab.data.atomic import atomic_write_json
    from cliplab.runtime.quantize import TASK_RULE

    cfg = json.loads((folder / "cliplab.json").read_text(encoding="utf-8"))
    keep = ("method", "calibration", "fp32_nodes", "validation", "cosine", "max_delta", "accepted")
    cfg["int8"] = {
        "rule": TASK_RULE,
        "command": "python tools/lite_int8_calibrate.py",
        **{side: {k: res[side][k] for k in keep if k in res[side]} for side in ("image", "text") if side in res},
    }
    atomic_write_json(folder / "cliplab.json", cfg)


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from cliplab.data.shared import shared_dir
    from cliplab.models.specs import lite_dir
    from cliplab.runtime import load

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=lite_dir(), help="The lite model folder (default: the shipped one).")
    args = ap.parse_args(argv)
    shared = shared_dir()
    if shared is None:
        print("error: the shared data folder is missing (../shared or $CLIPLAB_SHARED)", file=sys.stderr)
        return 2
    if args.out.resolve() != lite_dir().resolve():
        print("error: only the shipped lite folder is supported (its ONNX export is what is measured)", file=sys.stderr)
        return 2
    from lite_int8 import measure

    enc = load("lite", runtime="onnx", notify=lambda m: print(m, file=sys.stderr))  # fp32 entry, before any change
    cal = calibrate(enc.entry, args.out, shared)
    import onnx

    res = measure(enc.entry, {"image": {"method": "static", "calibration": cal.name}}, args.out, shared)
    text_graph = onnx.load(str(enc.entry.path("text.onnx"))).graph
    for recipe in TEXT_RECIPES:
        r = measure(
            enc.entry,
            {"text": {"method": "dynamic", "fp32_nodes": text_fp32_nodes(text_graph, recipe)}},
            args.out,
            shared,
        )
        print(
            f"text ({recipe}): cosine min {r['text']['cosine']['min']:.4f}, largest change {r['text']['max_delta']:.2f}"
        )
        if "text" not in res or r["text"]["accepted"]:
            res["text"] = r["text"]
        if r["text"]["accepted"]:
            break
    declare(args.out, res)
    for side in ("image", "text"):
        r = res[side]
        verdict = "accepted" if r["accepted"] else "not accepted (keeps fp32)"
        print(
            f"{side}: int8 cosine mean {r['cosine']['mean']:.4f} / min {r['cosine']['min']:.4f}, "
            f"largest metric change {r['max_delta']:.2f} points → {verdict}"
        )
    print(f'declared in {args.out / "cliplab.json"} ("int8"); ranges in {cal}')
    return 0


if __name__ == "__main__":
    sys.exit(main())
