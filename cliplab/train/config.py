"""Training configuration: one dataclass, saved into the checkpoint so `--resume` needs nothing else."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from cliplab.errors import CliplabError, TrainError  # noqa: F401  (TrainError: importable from here too)
from cliplab.models.trained.heads import HEAD_KINDS, head_config
from cliplab.train.negatives import HARD_NEGATIVES

VIEWS = ("center", "flip", "crop", "lowres", "gray", "sketch")
IMAGE_INPUTS = ("pooled", "logits", "conse")


@dataclass
class TrainConfig:
    # data
    pairs: list[str] = field(default_factory=list)  # caption files (CSV/JSONL: path + caption [+ split])
    labels: list[str] = field(default_factory=list)  # labelled images (labels.csv or ImageFolder)
    label_column: str | None = None  # which labels.csv column names the class
    label_templates: list[str] = field(default_factory=lambda: ["a photo of a {}."])
    split: str | None = "auto"  # pairs rows to train on: "auto" = "train" if a split column has it
    val_split: str = "0.1"  # a fraction of the (pairs) images, or a split name in the pairs file
    # model
    image_tower: str = "efficientnet-lite0"
    text_tower: str = "minilm"
    image_train_last: int = 0  # 0 frozen (features cached), N last blocks, -1 the whole tower
    text_train_last: int = 0
    image_head: str = "mlp"
    text_head: str = "mlp"
    dim: int | None = 256  # None: the text tower's size (map images into the text space)
    hidden: int | None = None  # MLP width; None = max(in, out)
    dropout: float = 0.1
    skip: bool = False  # MLP heads also get a linear path (out = mlp(x) + W x)
    text_head_init: str = "default"  # "identity": a square text head starts as the identity
    image_inputs: list[str] = field(default_factory=lambda: ["pooled"])
    conse_skip: bool = False  # add the ConSE vector to the image output (needs dim == text dim)
    conse_top_t: int = 10
    # optimisation
    epochs: int = 30
    batch_size: int = 256
    accum: int = 1  # gradient accumulation: optimizer step every `accum` batches
    batch_by_source: bool = False  # each batch all captions or all label prompts (harder caption negatives)
    hard_negatives: str | None = None  # "subject": caption batches also share their subject (negatives.py)
    hard_share: float = 1.0  # the part of the captions batched by subject (the rest: ordinary caption batches)
    lr: float = 1e-3
    tower_lr: float = 1e-5  # for unfrozen tower layers
    weight_decay: float = 0.05
    warmup: float = 0.05  # fraction of all optimizer steps spent warming up
    init_logit_scale: float = 1 / 0.07
    learn_scale: bool = True
    patience: int = 5  # epochs without a better validation score before stopping; 0 = never
    seed: int = 0
    augment: list[str] = field(default_factory=list)  # extra cached image views: flip, crop, lowres, gray, sketch
    # plumbing (not part of what is learned)
    cache_dir: str | None = None
    workers: int | None = None

    def validate(self) -> TrainConfig:
        if not self.pairs and not self.labels:
            raise TrainError("nothing to train on: give --pairs (captions) and/or --labels (labelled images)")
        for what, kind in (("image", self.image_head), ("text", self.text_head)):
            if kind not in HEAD_KINDS:
                raise TrainError(f"--{what}-head {kind!r}: choose one of {', '.join(HEAD_KINDS)}")
        bad = [v for v in self.augment if v not in VIEWS or v == "center"]
        if bad:
            raise TrainError(f"--augment {bad}: choose from {', '.join(VIEWS[1:])}")
        bad = [k for k in self.image_inputs if k not in IMAGE_INPUTS]
        if bad or not self.image_inputs:
            raise TrainError(f"image inputs {bad or '[]'}: choose from {', '.join(IMAGE_INPUTS)}")
        if self.hard_negatives not in HARD_NEGATIVES:
            raise TrainError(f"--hard-negatives {self.hard_negatives!r}: choose subject (or leave it out)")
        if not 0 < self.hard_share <= 1:
            raise TrainError(f"--hard-share {self.hard_share}: a fraction in (0, 1]")
        if self.epochs < 1 or self.batch_size < 2 or self.accum < 1:
            raise TrainError("need epochs >= 1, batch size >= 2 and accum >= 1")
        if self.dim is not None and self.dim < 1:
            raise TrainError("--dim must be positive")
        for t in self.label_templates:
            if "{}" not in t:
                raise TrainError(f"label template {t!r} needs a {{}} placeholder")
        try:
            v = float(self.val_split)
            if not 0 <= v < 1:
                raise TrainError(f"--val-split {self.val_split}: a fraction in [0, 1) or a split name")
        except ValueError:
            pass  # a split name
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def model_config(self, image_dims: dict, text_dim: int) -> dict:
        """The architecture part of a checkpoint config, given the towers' feature sizes."""
        dims = {**image_dims, "conse": text_dim}
        missing = [k for k in self.image_inputs if k not in dims]
        if missing:
            raise TrainError(
                f"image inputs {missing} are not available from {self.image_tower} (has: {', '.join(dims)})"
            )
        img_in = sum(dims[k] for k in self.image_inputs)
        if self.image_head == "none" and self.text_head == "none":
            if img_in != text_dim:
                raise TrainError(f"both heads 'none' needs equal tower sizes ({img_in} != {text_dim})")
            dim = text_dim
        elif self.image_head == "none":
            dim = img_in
        elif self.text_head == "none":
            dim = text_dim
        else:
            dim = self.dim or text_dim
        if self.conse_skip and dim != text_dim:
            raise TrainError(f"--conse-skip puts images in the text tower's space: needs dim {text_dim} (got {dim})")
        opts = dict(hidden=self.hidden, dropout=self.dropout, skip=self.skip)
        try:
            image = head_config(self.image_head, img_in, dim, **opts)
            text = head_config(
                self.text_head, text_dim, dim, init=self.text_head_init if text_dim == dim else "default", **opts
            )
        except CliplabError as e:
            raise TrainError(str(e)) from None
        return {
            "image_tower": {"spec": self.image_tower, "train_last": self.image_train_last},
            "text_tower": {"spec": self.text_tower, "train_last": self.text_train_last},
            "image_side": {
                "inputs": list(self.image_inputs),
                "conse_top_t": self.conse_top_t,
                "conse_skip": self.conse_skip,
                "normalize_inputs": True,
                "head": image,
            },
            "text_side": {"head": text},
            "init_logit_scale": self.init_logit_scale,
        }
