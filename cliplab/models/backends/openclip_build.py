"""Random-weight open_clip models of real architectures, saved in open_clip's hub layout (offline):
what the tests (small widths) and benchmarks/zoo_bench.py (real shapes) load like a downloaded checkpoint."""

from __future__ import annotations

import io
import json
from pathlib import Path

import torch

from cliplab.errors import ModelNotFoundError
from cliplab.models.backends.openclip import import_open_clip
from cliplab.models.core.quiet import quiet
from cliplab.models.specs import OPEN_CLIP_CONFIG, OPEN_CLIP_WEIGHTS


def build_random_open_clip(
    out_dir: str | Path, arch: str, small: bool = True, seed: int = 0, image_size: int | None = None, **cfg
) -> Path:
    """Save a randomly initialised open_clip model of `arch` in hub layout (offline; tests, benchmarks).

    `small` keeps the architecture but cuts the text transformer to 2 layers of width 64 (and a ViT
    image tower likewise); `cfg` overrides model_cfg keys (e.g. text_cfg for an HF text tower)."""
    oc = import_open_clip()
    model_cfg = oc.get_model_config(arch)
    if model_cfg is None:
        raise ModelNotFoundError(f"open_clip has no architecture {arch!r}")
    model_cfg = json.loads(json.dumps(model_cfg))
    v, t = model_cfg["vision_cfg"], model_cfg["text_cfg"]
    if small:
        if "hf_model_name" not in t:
            t.update(width=64, heads=2, layers=2)
        if "timm_model_name" not in v:
            v.update(width=64, layers=2, head_width=32)
        model_cfg["embed_dim"] = 32
    if image_size:
        v["image_size"] = image_size
    model_cfg.update(cfg)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with quiet(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        cls = oc.CustomTextCLIP if ("hf_model_name" in t or model_cfg.get("custom_text")) else oc.CLIP
        args = {k: w for k, w in model_cfg.items() if k != "custom_text"}
        if "hf_model_name" in args["text_cfg"]:  # random weights: the HF text model from its config only
            args["text_cfg"] = {**args["text_cfg"], "hf_model_pretrained": False}
        model = cls(**args).eval()
    from open_clip.model import get_model_preprocess_cfg
    from safetensors.torch import save_file

    pre = get_model_preprocess_cfg(model) or {}
    pre = {"size": v.get("image_size", 224), **{k: list(x) if isinstance(x, tuple) else x for k, x in pre.items()}}
    (out_dir / OPEN_CLIP_CONFIG).write_text(
        json.dumps({"model_cfg": model_cfg, "preprocess_cfg": pre, "arch": arch}, indent=1)
    )
    save_file({k: x.contiguous() for k, x in model.state_dict().items()}, str(out_dir / OPEN_CLIP_WEIGHTS[0]))
    return out_dir


# xlm-roberta-base's config.json (transformers' XLMRobertaConfig defaults to BERT's vocabulary size)
XLMR_BASE = dict(vocab_size=250002, max_position_embeddings=514, type_vocab_size=1, layer_norm_eps=1e-5)
SMALL_TEXT = dict(num_hidden_layers=2, num_attention_heads=2, intermediate_size=128, max_position_embeddings=82)


def train_sentencepiece(texts: list[str], vocab_size: int, **options) -> bytes:
    """A small Unigram SentencePiece model trained on `texts` (offline, quiet, deterministic), as
    bytes: the tokenizers of the random-weight models built here. `options`: SentencePiece's own
    (pad_id/eos_id/unk_id/bos_id, byte_fallback, …)."""
    import sentencepiece as spm

    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(texts),
        model_writer=buf,
        vocab_size=vocab_size,
        model_type="unigram",
        **{"character_coverage": 1.0, "minloglevel": 2, "hard_vocab_limit": False, **options},
    )
    return buf.getvalue()


def make_xlmr_base(out: Path, texts: list[str], small: bool = True) -> Path:
    """`out` holding an XLMRobertaConfig and an XLMRobertaTokenizer whose vocabulary was trained on
    `texts` (offline): what a multilingual open_clip text tower is built from (`text_cfg.hf_model_name`).
    `small`: 2 layers of width 64; else xlm-roberta-base's shape (its 250,002-token embedding too; the
    small tokenizer's ids fall inside it, so speed is measured at the real shape)."""
    import sentencepiece as spm
    from transformers import XLMRobertaConfig, XLMRobertaTokenizer

    out.mkdir(parents=True, exist_ok=True)
    ids = dict(unk_id=0, bos_id=-1, eos_id=-1, pad_id=-1)  # XLM-R adds its specials in fairseq order below
    proto = train_sentencepiece(texts[:4] * 20 + ["el perro corre", "la playa", "red car"] * 20, 120, **ids)
    sp = spm.SentencePieceProcessor(model_proto=proto)
    pieces = [(sp.id_to_piece(i), sp.get_score(i)) for i in range(1, sp.get_piece_size())]
    specials = [("<s>", 0.0), ("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]  # XLM-R's fairseq order
    tok = XLMRobertaTokenizer(vocab=specials + pieces + [("<mask>", 0.0)])
    tok.save_pretrained(out)
    cfg = (
        XLMRobertaConfig(vocab_size=len(tok), hidden_size=64, **SMALL_TEXT) if small else XLMRobertaConfig(**XLMR_BASE)
    )
    cfg.save_pretrained(out)
    return out
