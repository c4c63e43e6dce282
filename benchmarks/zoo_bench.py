"""Model zoo (issue 26): one row per family at its real shape, random weights (speed does not depend
on the weights' values): parameters, ONNX fp32 and int8 img/s end-to-end (decode + preprocess +
encode) on the shared photos, text queries/s (one query per call, as search sends them) and the
wall time of a whole-process `cliplab search` on a folder indexed with that model.

The models are built offline by `build_random_open_clip(..., small=False)` into a temporary folder;
the ONNX export and the indexes go to a temporary cache too (nothing is written elsewhere).

    nice -n 10 env HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/zoo_bench.py [--n 64] [--arch ViT-B-32 ...]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TMP = Path(tempfile.mkdtemp(prefix="zoo_bench-"))
# before any cliplab import (settings are read once): exports and indexes stay out of the user's folders
os.environ.update(CLIPLAB_CACHE=str(TMP / "cache"), CLIPLAB_INDEX_HOME=str(TMP / "indexes"), HF_HUB_OFFLINE="1")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, require_shared  # noqa: E402

DEFAULT = ["ViT-B-32", "MobileCLIP-S1", "MobileCLIP-S2"]
NOT_MEASURED = ["ViT-B-16", "ViT-L-14", "convnext_base_w", "xlm-roberta-base-ViT-B-32", "siglip-base", "nllb-clip-base"]
QUERIES = ["a dog on the grass", "red car", "two people on a beach at sunset", "a bowl of soup", "snow", "a cat"]


def seconds(run) -> float:
    t = time.perf_counter()
    run()
    return time.perf_counter() - t


def best_of(repeat: int, run) -> float:
    """Fastest of `repeat` runs: the fastest is the one least disturbed by this shared VM's neighbours."""
    return min(seconds(run) for _ in range(repeat))


def photos(n: int) -> list[str]:
    root = require_shared() / "data" / "flickr8k-1k"
    return sorted(str(p) for p in root.rglob("*.jpg"))[:n]


def params(folder: Path) -> int:
    from cliplab.zoo.installed import header_params

    return header_params(str(folder)) or 0


def build(arch: str, out: Path) -> Path:
    """A random-weight model of `arch`'s real shape in `out`, as its family loads it: open_clip's
    hub layout; for the multilingual XLM-R CLIP also the text base it names (xlm-roberta-base's
    shape, a small tokenizer trained here: its ids fall inside the real embedding); for `siglip-base`
    a transformers SiglipModel folder (SiglipConfig's defaults: ViT-B/16 at 224 px, 64 tokens) with
    a SentencePiece tokenizer trained here (SigLIP 1's layout: spiece.model only)."""
    from cliplab.models.backends.openclip_build import build_random_open_clip, make_xlmr_base

    if arch == "siglip-base":
        return build_siglip(out)
    if arch.startswith("xlm-roberta-base-"):
        base = make_xlmr_base(out.parent / f"{arch}-text-base", QUERIES, small=False)
        text_cfg = {"hf_model_name": str(base), "hf_tokenizer_name": str(base), "hf_pooler_type": "mean_pooler"}
        from cliplab.models.backends.openclip import import_open_clip

        cfg = import_open_clip().get_model_config(arch)["text_cfg"]
        return build_random_open_clip(out, arch, small=False, text_cfg={**cfg, **text_cfg})
    return build_random_open_clip(out, arch, small=False)


def build_siglip(out: Path) -> Path:
    import torch
    from transformers import SiglipConfig, SiglipModel, SiglipTokenizer

    from cliplab.models.backends.openclip_build import train_sentencepiece

    out.mkdir(parents=True, exist_ok=True)
    proto = train_sentencepiece(QUERIES * 20, 60, pad_id=0, eos_id=1, unk_id=2, bos_id=-1)
    (out / "spiece.model").write_bytes(proto)
    SiglipTokenizer(vocab_file=str(out / "spiece.model")).save_pretrained(out)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        SiglipModel(SiglipConfig()).eval().save_pretrained(out)
    return out


def row(arch: str, folder: Path, paths: list[str], tmp: Path, repeat: int) -> dict:
    from cliplab import api
    from cliplab.runtime import load

    out = {"arch": arch, "params": params(folder)}
    for precision in ("fp32", "int8"):
        t = time.perf_counter()
        enc = load(str(folder), runtime="onnx", precision=precision, notify=None)
        api.embed(paths[:8], enc)  # warm-up (and, the first time, the export)
        out[f"prepare_{precision}"] = time.perf_counter() - t
        out[f"img_s_{precision}"] = len(paths) / best_of(repeat, lambda e=enc: api.embed(paths, e))
        if precision == "fp32":
            enc.encode_texts(QUERIES[:1])
            per = best_of(repeat, lambda e=enc: [e.encode_texts([q]) for q in QUERIES])
            out["queries_s"] = len(QUERIES) / per
    out["search_s"] = startup(folder, paths, tmp / arch)
    return out


def startup(folder: Path, paths: list[str], tmp: Path) -> float:
    """Median wall time of `cliplab search` (a new process: imports, index open, text tower, search)."""
    photos_dir = tmp / "photos"
    photos_dir.mkdir(parents=True)
    for p in paths:
        shutil.copy(p, photos_dir)
    exe = str(Path(sys.executable).parent / "cliplab")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    common = ["--dir", str(photos_dir), "--model", str(folder)]
    subprocess.run([exe, "index", str(photos_dir), "--model", str(folder)], env=env, check=True, capture_output=True)
    times = []
    for q in QUERIES[:3]:
        t = time.perf_counter()
        subprocess.run([exe, "search", q, *common, "--no-update"], env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def table(rows: list[dict]) -> str:
    lines = [
        "| model (random weights, real shape) | parameters | ONNX fp32 img/s | ONNX int8 img/s | text queries/s (fp32) "
        "| `cliplab search` wall s | first load (export) fp32 / int8 s |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['arch']} | {r['params'] / 1e6:.1f} M | {r['img_s_fp32']:.1f} | {r['img_s_int8']:.1f} "
            f"| {r['queries_s']:.1f} | {r['search_s']:.2f} | {r['prepare_fp32']:.0f} / {r['prepare_int8']:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=64, help="shared photos per img/s measurement")
    ap.add_argument(
        "--arch", nargs="*", default=DEFAULT, help="open_clip architectures to measure, or siglip-base (transformers)"
    )
    ap.add_argument("--repeat", type=int, default=2, help="timed runs per figure (the fastest is kept)")
    args = ap.parse_args()
    paths = photos(args.n)
    rows = []
    try:
        for arch in args.arch:
            folder = build(arch, TMP / "models" / arch)
            rows.append(row(arch, folder, paths, TMP, args.repeat))
            print(rows[-1], file=sys.stderr, flush=True)
            shutil.rmtree(TMP / "cache", ignore_errors=True)  # one model's exports at a time on disk
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
    print(table(rows))
    others = [a for a in NOT_MEASURED if a not in args.arch]
    print(f"\nNot measured here (time): {', '.join(others)}.")
    print(f"\n{len(paths)} Flickr8k photos (longest side 320 px); machine: {machine()}")


if __name__ == "__main__":
    main()
