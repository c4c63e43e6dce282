"""Images/s end to end (JPEG folder → vectors on disk) for:
 1. a random-weight CLIP in the exact ViT-B/32 shape through cliplab's pipeline,
 2. the same model the tutorial way: one image at a time, PIL.open → CLIPImageProcessor → get_image_features,
 3. `lite` through cliplab's pipeline.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/embed_throughput.py [--n 128] [--n-lite 512]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, require_shared, timer  # noqa: E402

from cliplab import api, export  # noqa: E402
from cliplab.models import load_encoder  # noqa: E402
from cliplab.models.clip_hf import build_random_clip  # noqa: E402


def naive_loop(model_dir: Path, paths: list[str], out: Path) -> None:
    from PIL import Image
    from transformers import CLIPImageProcessorPil, CLIPModel

    model = CLIPModel.from_pretrained(model_dir).eval()
    processor = CLIPImageProcessorPil.from_pretrained(model_dir)
    feats = []
    with torch.no_grad():
        for p in paths:
            inputs = processor(images=Image.open(p).convert("RGB"), return_tensors="pt")
            f = model.get_image_features(**inputs)
            f = getattr(f, "pooler_output", f)
            feats.append((f / f.norm(dim=-1, keepdim=True))[0].numpy())
    np.save(out / "naive.npy", np.stack(feats))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=128, help="images for the two CLIP runs")
    ap.add_argument("--n-lite", type=int, default=512, help="images for the lite run")
    args = ap.parse_args()
    images = sorted(str(p) for p in (require_shared() / "data" / "flickr8k-1k" / "images").glob("*.jpg"))
    t: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        clip_dir = build_random_clip(tmp / "clip-b32", tiny=False)
        enc = load_encoder(str(clip_dir))
        enc.encode_images([])  # nothing; model already loaded, timing starts at the files
        clip_paths, lite_paths = images[: args.n], images[: args.n_lite]
        # warm-up both paths on a few images so one-off costs (allocations, oneDNN kernels) don't count
        api.embed(clip_paths[:4], enc)
        naive_loop(clip_dir, clip_paths[:2], tmp)
        with timer(t, "naive"):
            naive_loop(clip_dir, clip_paths, tmp)
        with timer(t, "cliplab"):
            export.write_image_embeddings(tmp / "c", api.embed(clip_paths, enc))
        lite = load_encoder("lite")
        api.embed(lite_paths[:16], lite)
        with timer(t, "lite"):
            res = api.embed(lite_paths, lite)
            export.write_image_embeddings(tmp / "l", res)
    rate = {"cliplab": args.n / t["cliplab"], "naive": args.n / t["naive"], "lite": args.n_lite / t["lite"]}
    print(f"Machine: {machine()}\n")
    print("| path | images | seconds | images/s |\n|---|---:|---:|---:|")
    print(f"| CLIP ViT-B/32 (random weights), naive loop | {args.n} | {t['naive']:.1f} | {rate['naive']:.1f} |")
    print(f"| CLIP ViT-B/32 (random weights), cliplab pipeline | {args.n} | {t['cliplab']:.1f} | {rate['cliplab']:.1f} |")
    print(f"| lite, cliplab pipeline | {args.n_lite} | {t['lite']:.1f} | {rate['lite']:.1f} |")
    print(f"\ncliplab / naive = **{rate['cliplab'] / rate['naive']:.2f}x** (target ≥ 1.5x); "
          f"lite = **{rate['lite']:.0f} img/s** (target ≥ 50)")


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
