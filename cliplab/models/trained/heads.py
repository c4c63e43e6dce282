"""Projection heads: the small trainable modules that map tower features into the shared space.

A head config is a plain dict (stored in `cliplab.json`), so a checkpoint rebuilds its heads without
the training code:

    {"kind": "none" | "linear" | "mlp", "in_dim": int, "out_dim": int, "hidden": int,
     "dropout": float, "skip": bool, "init": "default" | "identity"}

The image side may combine several tower features (e.g. EfficientNet's pooled vector and its
ConSE vector, the ImageNet-probability-weighted mean of class-prompt embeddings) and may add the
ConSE vector to the head's output ("conse_skip"), which starts training from ConSE's zero-shot
ability instead of from nothing.

Fusion ("conse_fusion": w in both head configs, 0 < w < 1): each side's output becomes
L2norm(concat(√w·a, √(1−w)·b)) where, for images, a = the ConSE vector and b = the unit head
output, and for texts, a = the unit text-tower vector and b = the unit text-head output. The dot
product of two such vectors is w·cos_conse + (1−w)·cos_heads: the frozen ImageNet classifier's
knowledge (ConSE) and what the heads learned, mixed in one unit vector that search, the index and
an ONNX export of the sides use unchanged. w is stored in the config and as a buffer, so the weights
file (and with it a model's fingerprint) changes with it. Configs without the key load as before.

Query-dependent text weight ("conse_fusion_ramp" in the text head config: lo, hi, from, to): the
text side's own weight w_t rises from lo to hi as the text's best cosine to the classifier's class
prompts rises from `from` to `to`, so "a photo of a goldfinch" leans on the ImageNet classifier and a
free caption on the heads. Images keep w; a dot product is then √(w·w_t)·cos_conse +
√((1−w)(1−w_t))·cos_heads, both vectors still unit length.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from cliplab.errors import CliplabError
from cliplab.models.backends.conse import conse_vectors

HEAD_KINDS = ("none", "linear", "mlp")
MAX_LOGIT_SCALE = 100.0  # CLIP clamps the learned temperature here; beyond it training destabilises


def head_config(
    kind: str,
    in_dim: int,
    out_dim: int | None = None,
    hidden: int | None = None,
    dropout: float = 0.0,
    skip: bool = False,
    init: str = "default",
) -> dict:
    """Validated, fully resolved head config (`none` keeps the input size)."""
    if kind not in HEAD_KINDS:
        raise CliplabError(f"unknown head {kind!r} (have: {', '.join(HEAD_KINDS)})")
    if kind == "none":
        return {"kind": "none", "in_dim": int(in_dim), "out_dim": int(in_dim)}
    out_dim = int(out_dim or in_dim)
    cfg = {"kind": kind, "in_dim": int(in_dim), "out_dim": out_dim, "init": init}
    if kind == "mlp":
        cfg.update(hidden=int(hidden or max(in_dim, out_dim)), dropout=float(dropout), skip=bool(skip))
    if init == "identity" and in_dim != out_dim:
        raise CliplabError(f"identity init needs in_dim == out_dim (got {in_dim} → {out_dim})")
    return cfg


class MLPHead(nn.Module):
    """Linear → GELU → Dropout → Linear, plus an optional linear skip path (out = mlp(x) + W x)."""

    def __init__(self, in_dim: int, out_dim: int, hidden: int, dropout: float = 0.0, skip: bool = False):
        super().__init__()
        self.fc1 = nn.Linear(in_dim, hidden)
        self.drop = nn.Dropout(dropout)
        self.fc2 = nn.Linear(hidden, out_dim)
        self.skip = nn.Linear(in_dim, out_dim, bias=False) if skip else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.fc2(self.drop(F.gelu(self.fc1(x))))
        return y + self.skip(x) if self.skip is not None else y


def build_head(cfg: dict) -> nn.Module:
    kind = cfg["kind"]
    if kind == "none":
        return nn.Identity()
    if kind == "linear":
        head = nn.Linear(cfg["in_dim"], cfg["out_dim"])
        target = head
    elif kind == "mlp":
        head = MLPHead(cfg["in_dim"], cfg["out_dim"], cfg["hidden"], cfg.get("dropout", 0.0), cfg.get("skip", False))
        target = head.skip
    else:
        raise CliplabError(f"unknown head {kind!r} (have: {', '.join(HEAD_KINDS)})")
    if cfg.get("init") == "identity" and target is not None:
        # Start as "no change": the untrained model equals its tower, training only moves away
        # from it as far as the data asks.
        with torch.no_grad():
            target.weight.copy_(torch.eye(cfg["out_dim"], cfg["in_dim"]))
            if getattr(target, "bias", None) is not None:
                target.bias.zero_()
            if kind == "mlp":
                head.fc2.weight.mul_(0.1)
                head.fc2.bias.zero_()
    return head


def fusion_weight(head: dict) -> float:
    """The head config's ConSE fusion weight (0 = no fusion; older configs have no key)."""
    w = float(head.get("conse_fusion", 0.0) or 0.0)
    if not 0.0 <= w < 1.0:
        raise CliplabError(f"conse_fusion must be in [0, 1) (got {w})")
    return w


RAMP_KEYS = ("lo", "hi", "from", "to")


def fusion_ramp(head: dict) -> dict | None:
    """The text head config's query-dependent weight (module doc), validated; None when absent."""
    ramp = head.get("conse_fusion_ramp")
    if not ramp:
        return None
    try:
        r = {k: float(ramp[k]) for k in RAMP_KEYS}
    except (KeyError, TypeError, ValueError):
        raise CliplabError(f"conse_fusion_ramp needs numbers {', '.join(RAMP_KEYS)} (got {ramp!r})") from None
    if not (0.0 <= r["lo"] <= r["hi"] < 1.0 and r["from"] < r["to"]):
        raise CliplabError(f"conse_fusion_ramp needs 0 <= lo <= hi < 1 and from < to (got {ramp!r})")
    return r


def fuse(a: torch.Tensor, b: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """concat(√w·â, √(1−w)·b̂): unit length, and dot products mix as w·cos_a + (1−w)·cos_b."""
    return torch.cat([w.sqrt() * F.normalize(a, dim=-1), (1 - w).sqrt() * F.normalize(b, dim=-1)], dim=1)


class ImageSide(nn.Module):
    """Named tower features → one vector in the shared space.

    `inputs` picks and concatenates tower features ("pooled", "logits", or "conse", which is
    computed from "logits" and the stored class embeddings); `conse_skip` adds the ConSE vector
    (scaled by a learned gain) to the head's output; `head["conse_fusion"]` fuses it (module doc).
    """

    def __init__(
        self,
        inputs: list[str],
        feature_dims: dict,
        head: dict,
        conse_top_t: int = 10,
        conse_dim: int = 0,
        conse_skip: bool = False,
        normalize_inputs: bool = True,
    ):
        super().__init__()
        self.inputs = list(inputs)
        self.conse_top_t = int(conse_top_t)
        self.conse_skip = bool(conse_skip)
        self.normalize_inputs = bool(normalize_inputs)
        self.fusion = fusion_weight(head)
        uses_conse = "conse" in self.inputs or self.conse_skip or self.fusion > 0
        if uses_conse:
            if "logits" not in feature_dims or not conse_dim:
                raise CliplabError("a ConSE input needs an image tower with ImageNet logits and a text tower")
            self.register_buffer("class_emb", torch.zeros(feature_dims["logits"], conse_dim))
        dims = {**feature_dims, "conse": conse_dim}
        missing = [k for k in self.inputs if k not in dims]
        if missing:
            raise CliplabError(f"image features {missing} not produced by the tower (has: {', '.join(dims)})")
        self.head = build_head(head)
        self.out_dim = head["out_dim"]
        if self.conse_skip:
            if self.out_dim != conse_dim:
                raise CliplabError(f"conse_skip needs image dim == text-tower dim ({self.out_dim} != {conse_dim})")
            self.conse_gain = nn.Parameter(torch.tensor(1.0))
        if self.fusion > 0:
            self.register_buffer("fusion_weight", torch.tensor(self.fusion))
            self.out_dim = conse_dim + self.out_dim

    def forward(self, feats: dict) -> torch.Tensor:
        conse = None
        if "conse" in self.inputs or self.conse_skip or self.fusion > 0:
            conse = conse_vectors(feats["logits"], self.class_emb, self.conse_top_t)
        parts = []
        for k in self.inputs:
            x = conse if k == "conse" else feats[k].float()
            # Unit-length inputs put features of very different scales on an equal footing.
            parts.append(F.normalize(x, dim=-1) if self.normalize_inputs and k != "conse" else x)
        y = self.head(torch.cat(parts, dim=1) if len(parts) > 1 else parts[0])
        if self.conse_skip:
            y = F.normalize(y, dim=-1) + self.conse_gain * conse
        return fuse(conse, y, self.fusion_weight) if self.fusion > 0 else y


class TextSide(nn.Module):
    """Text-tower vector → the shared space; with `head["conse_fusion"]` the tower's own vector
    (what ConSE compares images with) is kept beside the head's output, and with
    `head["conse_fusion_ramp"]` its weight depends on the text (module doc)."""

    def __init__(self, head: dict, n_classes: int = 1000):
        super().__init__()
        self.head = build_head(head)
        self.fusion = fusion_weight(head)
        self.ramp = fusion_ramp(head)
        self.out_dim = head["out_dim"]
        if self.ramp and not self.fusion:
            raise CliplabError("conse_fusion_ramp needs conse_fusion")
        if self.fusion > 0:
            self.register_buffer("fusion_weight", torch.tensor(self.fusion))
            self.out_dim = head["in_dim"] + self.out_dim
        if self.ramp:  # the classifier's class prompts, as the image side's ConSE uses them
            self.register_buffer("class_emb", torch.zeros(n_classes, head["in_dim"]))

    def text_weight(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1) ConSE share per text: the ramp of its best cosine to a class prompt."""
        r = self.ramp
        best = (F.normalize(x, dim=-1) @ F.normalize(self.class_emb, dim=-1).T).max(dim=1, keepdim=True).values
        return r["lo"] + (r["hi"] - r["lo"]) * ((best - r["from"]) / (r["to"] - r["from"])).clamp(0.0, 1.0)

    def forward(self, feats: dict) -> torch.Tensor:
        x = feats["text"].float()
        y = self.head(x)
        if self.ramp:
            return fuse(x, y, self.text_weight(x))
        return fuse(x, y, self.fusion_weight) if self.fusion > 0 else y


class DualHeads(nn.Module):
    """Both heads plus CLIP's learnable temperature (stored as log of the logit scale)."""

    def __init__(self, image: ImageSide, text: TextSide, logit_scale: float = 1 / 0.07):
        super().__init__()
        if image.out_dim != text.out_dim:
            raise CliplabError(f"image and text heads disagree on the shared dim ({image.out_dim} != {text.out_dim})")
        if image.fusion != text.fusion:  # the two halves of the vectors would not line up
            raise CliplabError(f"image and text heads disagree on conse_fusion ({image.fusion} != {text.fusion})")
        self.image = image
        self.text = text
        self.log_scale = nn.Parameter(torch.tensor(math.log(logit_scale)))

    @property
    def dim(self) -> int:
        return self.image.out_dim

    def scale(self) -> torch.Tensor:
        return self.log_scale.clamp(max=math.log(MAX_LOGIT_SCALE)).exp()

    def encode_image(self, feats: dict) -> torch.Tensor:
        return F.normalize(self.image(feats), dim=-1)

    def encode_text(self, feats: dict) -> torch.Tensor:
        return F.normalize(self.text(feats), dim=-1)
