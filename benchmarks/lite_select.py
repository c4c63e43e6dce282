"""How `lite`'s recipe was chosen: validation splits only, never a reporting set.

The recipe's heads are trained with more held out — 160 of the 800 Flickr8k *train* photos and 150
of the 750 trainable ImageNet-sample classes — and scored on those plus FER2013-dev's validation
part, for every ConSE fusion weight w (heads.py "conse_fusion"; cosine = w·ConSE + (1−w)·heads):

- Flickr8k train-held-out text→image and image→text R@1 (160 photos / 800 captions),
- ImageNet-sample held-out classes top-1 (150 photos among their 150 names, "a photo of a {}."),
- FER validation part top-1 (7 emotions, "a photo of a {}."; the training part is the recipe's),
- the same 150 held-out photos named by their nearest WordNet parent instead ("a photo of a van.",
  130 names): broad names that are not the classifier's own labels, like Caltech's,

and the chosen w is the one with the best mean of the five. Then the same for a text-side weight
that depends on the text (heads.py "conse_fusion_ramp"): images keep w, and a text's ConSE share
rises from lo to hi as its best cosine to an ImageNet class prompt rises from `from` to `to`; the
grid's best mean is shipped when it beats the best fixed w. Everything comes from the on-disk
feature cache, so after the first run this takes seconds. CIFAR-10-dev, the Flickr8k test split,
FER's reporting part and the 250 breadth classes are never read.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/lite_select.py [--seed N] [--no-fer]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tools/
from _common import machine, require_shared  # noqa: E402
from lite_validation import extra_sets, rank_key, within_recall, worst_margin  # noqa: E402

from cliplab.models.backends.conse import conse_vectors  # noqa: E402
from cliplab.models.core.imagenet import imagenet_hypernyms  # noqa: E402
from cliplab.models.trained.checkpoint import load_checkpoint  # noqa: E402
from cliplab.train import train  # noqa: E402
from cliplab.train.features import image_features, text_features  # noqa: E402
from tools.lite_recipe import HYPERNYM_MAX_UP, HYPERNYM_MIN_DEPTH, breadth_mask, fer_parts, lite_config, prepare  # noqa: E402

WEIGHTS = [round(float(w), 2) for w in np.arange(0, 1.0001, 0.05)]
N_VAL_IMAGES, N_VAL_CLASSES, VAL_SEED = 160, 150, 7


def splits(shared: Path) -> dict:
    data = shared / "data"
    caps = pd.read_csv(data / "flickr8k-1k" / "captions.csv")
    caps["path"] = [str((data / "flickr8k-1k" / p).resolve()) for p in caps["path"]]
    caps = caps[caps["split"] == "train"]
    rng = np.random.default_rng(VAL_SEED)
    val_images = sorted(rng.choice(sorted(caps["path"].unique()), N_VAL_IMAGES, replace=False))
    im = pd.read_csv(data / "imagenet-samples" / "labels.csv")
    im["path"] = [str((data / "imagenet-samples" / p).resolve()) for p in im["path"]]
    val_classes = np.zeros(len(im), bool)
    val_classes[rng.choice(np.flatnonzero(~breadth_mask(len(im))), N_VAL_CLASSES, replace=False)] = True
    fer = pd.read_csv(data / "fer2013-dev" / "labels.csv")
    fer["path"] = [str((data / "fer2013-dev" / p).resolve()) for p in fer["path"]]
    fer = fer[fer_parts(fer["label"]) == "val"]
    return {
        "captions": caps[caps["path"].isin(val_images)],
        "val_images": val_images,
        "imagenet": im[val_classes],
        "val_classes": val_classes,
        "imagenet_all": im,
        "fer": fer,
    }


def _recall_at(sim: torch.Tensor, gt: torch.Tensor, k: int) -> float:
    return float((sim.topk(k, dim=1).indices == gt[:, None]).any(1).float().mean())


def _caption_hit(sim: torch.Tensor, caption_image: torch.Tensor) -> float:
    """R@1 image → text: the best caption of each image (rows) belongs to it."""
    best = sim.argmax(dim=1)
    return float((caption_image[best] == torch.arange(sim.shape[0])).float().mean())


class Scorer:
    """Cached tower outputs for the validation sets → scores of any heads at any fusion weight."""

    def __init__(self, enc, s: dict, cache_dir=None, extra: dict | None = None):
        self.enc = enc
        img, txt = enc.image_tower, enc.text_tower
        self.class_emb = enc.heads.image.class_emb
        fer_labels = sorted(s["fer"]["label"].unique())
        self.sets = {}
        caps = s["captions"]
        gt = torch.tensor([s["val_images"].index(p) for p in caps["path"]])
        self.sets["flickr_t2i_R@1"] = (s["val_images"], list(caps["caption"]), gt, "t2i")
        # image → text: a hit when the top caption is one of the image's own (gt: caption → image)
        self.sets["flickr_i2t_R@1"] = (s["val_images"], list(caps["caption"]), gt, "i2t-multi")
        names = [f"a photo of a {n}." for n in s["imagenet"]["name"]]
        self.sets["imagenet_top1"] = (list(s["imagenet"]["path"]), names, torch.arange(len(names)), "i2t")
        gt = torch.tensor([fer_labels.index(v) for v in s["fer"]["label"]])
        self.sets["fer_top1"] = (list(s["fer"]["path"]), [f"a photo of a {n}." for n in fer_labels], gt, "i2t")
        im = s["imagenet"]
        parent = [
            (imagenet_hypernyms(w, HYPERNYM_MIN_DEPTH, HYPERNYM_MAX_UP) or [n])[0]
            for w, n in zip(im["wnid"], im["name"])
        ]
        names = sorted(set(parent))
        gt = torch.tensor([names.index(p) for p in parent])
        self.sets["parent_top1"] = (list(im["path"]), [f"a photo of a {n}." for n in names], gt, "i2t")
        views = {key: "center" for key in self.sets}
        self.blind = {}  # set → the classes its classifier is made blind to (lite_validation.unseen_sets)
        for key, (paths, texts, gt, direction, view, *blind) in (extra or {}).items():  # lite_validation.extra_sets
            self.sets[key], views[key] = (paths, texts, gt, direction), view
            if blind:
                self.blind[key] = torch.from_numpy(blind[0])
        self.feats = {}
        for key, (paths, texts, _, _) in self.sets.items():
            f, failed = image_features(img, paths, views[key], cache_dir, progress=False)
            if failed:
                raise SystemExit(f"unreadable validation images: {failed}")
            t = text_features(txt, texts, cache_dir, progress=False)
            self.feats[key] = ({k: torch.from_numpy(v) for k, v in f.items()}, torch.from_numpy(t["text"]))

    def halves(self, heads, top_t: int = 10) -> dict:
        """Per set → (ConSE image, heads image, text-tower text, heads text) unit vectors, the
        images' logits, ground truth and direction."""
        out = {}
        with torch.no_grad():
            for key, (_, _, gt, direction) in self.sets.items():
                f, t = self.feats[key]
                if key in self.blind:
                    f = {**f, "logits": blind_logits(f["logits"], self.blind[key])}
                hi, ht = F.normalize(heads.image(f), dim=-1), F.normalize(heads.text({"text": t}), dim=-1)
                ci, ct = conse_vectors(f["logits"], self.class_emb, top_t), F.normalize(t, dim=-1)
                out[key] = (ci, hi, ct, ht, f["logits"], gt, direction)
        return out

    def best_prompt(self, key: str, ct: torch.Tensor) -> torch.Tensor:
        """(1, T) each text's best cosine to a class prompt the set's classifier knows (the ramp's input)."""
        ce = F.normalize(self.class_emb.float(), dim=-1)
        if key in self.blind:
            ce = ce[~self.blind[key]]
        return (ct @ ce.T).max(1).values[None, :]

    def sizes(self) -> dict[str, int]:
        """Queries per set: what one miss is worth (lite_validation.worst_margin)."""
        out = {}
        for key, (paths, texts, gt, direction) in self.sets.items():
            out[key] = len(texts) if direction.startswith("t2i") else len(paths)
        return out

    def curves(self, heads, top_t: int = 10) -> dict[str, list[float]]:
        out = {}
        for key, (ci, hi, ct, ht, _, gt, direction) in self.halves(heads, top_t).items():
            sc, sh = ci @ ct.T, hi @ ht.T
            out[key] = [score(w * sc + (1 - w) * sh, gt, direction) for w in WEIGHTS]
        out["mean"] = list(np.mean([out[k] for k in self.sets], axis=0))
        return out


def blind_logits(logits: torch.Tensor, blind: torch.Tensor) -> torch.Tensor:
    """The classifier as if it had never learned the `blind` classes: their logits drop to each
    photo's lowest, so they never enter ConSE's top classes and tell the heads nothing."""
    out = logits.float().clone()
    out[:, blind] = out.min(dim=1, keepdim=True).values
    return out


def score(sim: torch.Tensor, gt: torch.Tensor, direction: str) -> float:
    """R@1 of an (images × texts) similarity in the set's direction."""
    if direction == "i2t-multi":
        return _caption_hit(sim, gt)
    if direction == "t2i-within":
        return within_recall(sim, gt)
    return _recall_at(sim.T if direction == "t2i" else sim, gt, 1)


RAMP_GRID = {
    "w": [0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5],
    "lo": [0.0, 0.05, 0.1, 0.2],
    "hi": [0.9, 0.95, 0.99],
    "from": [0.5, 0.6, 0.7],
    "to": [0.85, 0.9, 0.95, 1.0],
}


def ramp_scores(scorer: Scorer, heads, rule: str = "worst") -> tuple[list[tuple[dict, dict[str, float]]], dict]:
    """Every RAMP_GRID point → its scores, mean and worst margin over `conse` (the text weight as
    TextSide computes it), best first by `rule` (lite_validation.rank_key); and conse's scores."""
    import itertools

    sims = {
        key: (ci @ ct.T, hi @ ht.T, scorer.best_prompt(key, ct), gt, direction)
        for key, (ci, hi, ct, ht, _, gt, direction) in scorer.halves(heads).items()
    }
    baseline = {key: score(sc, gt, direction) for key, (sc, _, _, gt, direction) in sims.items()}  # w = 1
    out = []
    for w, lo, hi_, m0, m1 in itertools.product(*RAMP_GRID.values()):
        r = {}
        for key, (sc, sh, best, gt, direction) in sims.items():
            wt = lo + (hi_ - lo) * ((best - m0) / (m1 - m0)).clamp(0, 1)
            r[key] = score((w * wt).sqrt() * sc + ((1 - w) * (1 - wt)).sqrt() * sh, gt, direction)
        r = with_summary(r, baseline, scorer.sizes())
        out.append(({"w": w, "lo": lo, "hi": hi_, "from": m0, "to": m1}, r))
    sizes = scorer.sizes()
    return sorted(out, key=lambda x: rank_key(x[1], baseline, rule, sizes)), baseline


def with_summary(r: dict[str, float], baseline: dict[str, float], sizes: dict | None = None) -> dict[str, float]:
    """`r` + its mean and worst margin over the baseline (lite_validation.worst_margin)."""
    return {**r, "mean": float(np.mean([r[k] for k in baseline])), "worst": worst_margin(r, baseline, sizes)}


def adaptive(scorer: Scorer, heads, lo: float, hi: float, power: float = 1.0) -> dict[str, float]:
    """The same sets with a per-image fusion weight w = lo + (hi − lo)·p_max^power (p_max: the
    classifier's confidence), text side fixed at ½/½: does trusting ConSE more on images the
    classifier is sure of help? (Checked, not shipped: see docs/benchmarks.md.)"""
    out = {}
    for key, (ci, hi_, ct, ht, logits, gt, direction) in scorer.halves(heads).items():
        w = (lo + (hi - lo) * torch.softmax(logits.float(), 1).max(1).values ** power)[:, None]
        img = torch.cat([w.sqrt() * ci, (1 - w).sqrt() * hi_], 1)
        txt = torch.cat([0.5**0.5 * ct, 0.5**0.5 * ht], 1)
        out[key] = score(img @ txt.T, gt, direction)
    out["mean"] = float(np.mean(list(out.values())))
    return out


def add_pseudo_captions(files: dict, s: dict, threshold: float) -> int:
    """Distillation, as an experiment: every Flickr8k training photo (validation photos excluded)
    also gets "a photo of a {class}." for the ImageNet classifier's top-1 class when its probability
    is ≥ `threshold` — named only among classes the recipe may train on (never a validation or
    breadth class). Returns the number of captions added."""
    from cliplab.models.specs import lite_dir

    caps = pd.read_csv(files["captions"])
    photos = sorted({p for p in caps["path"] if "flickr8k" in p})
    f, _ = image_features(load_checkpoint(lite_dir()).image_tower, photos, "center", progress=False)
    allowed = ~breadth_mask(len(s["val_classes"])) & ~s["val_classes"]
    logits = torch.from_numpy(f["logits"]).float()
    logits[:, torch.from_numpy(~allowed)] = float("-inf")  # the argmax may only name allowed classes
    prob = torch.softmax(torch.from_numpy(f["logits"]).float(), dim=1)
    top = logits.argmax(dim=1)
    names = list(s["imagenet_all"]["name"])
    rows = [
        (p, f"a photo of a {names[int(c)]}.", "train")
        for p, c, pr in zip(photos, top, prob[torch.arange(len(photos)), top])
        if float(pr) >= threshold
    ]
    pd.concat([caps, pd.DataFrame(rows, columns=["path", "caption", "split"])]).to_csv(files["captions"], index=False)
    return len(rows)


def validation_model(shared: Path, s: dict, seed: int = 0, tweak=None):
    """The recipe's heads trained with the validation photos and classes held out; `tweak(cfg,
    files)` may change the config or the prepared files first (the experiments' options)."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        files = prepare(shared, tmp, exclude_images=set(s["val_images"]), exclude_classes=s["val_classes"])
        cfg = lite_config(files, seed=seed)
        if tweak:
            tweak(cfg, files)
        res = train(cfg, tmp / "run", progress=False)
        return load_checkpoint(res.out_dir)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-fer", action="store_true", help="Train without FER's supervised part.")
    ap.add_argument("--no-augment", action="store_true", help="Train on the plain view only (a quick look).")
    ap.add_argument("--epochs", type=int, help="Override the recipe's epochs.")
    ap.add_argument("--augment", help="Extra training views, comma-separated (experiment: sketch, gray).")
    ap.add_argument("--image-tower", help="Another image tower (experiment: efficientnet-lite1 / -lite2).")
    ap.add_argument(
        "--hard-negatives", metavar="SHARE", help="This part of the captions batched by subject (experiment: 0.5, 1)."
    )
    ap.add_argument("--pseudo", type=float, help="Add classifier pseudo-captions at this confidence (experiment).")
    ap.add_argument("--adaptive", action="store_true", help="Also score per-image (confidence) fusion weights.")
    ap.add_argument(
        "--rule",
        choices=["worst", "mean"],
        default="worst",
        help="worst: the best worst margin over conse on every set (issue 24); mean: the five sets' mean (before).",
    )
    ap.add_argument("--top-t", default="10", help="ConSE top-T values to score, comma-separated (the recipe: 10).")
    args = ap.parse_args()
    shared = require_shared()
    s = splits(shared)

    def tweak(cfg, files) -> None:
        if args.pseudo is not None:
            print(f"pseudo-captions added: {add_pseudo_captions(files, s, args.pseudo)}")
        if args.no_fer:
            caps = pd.read_csv(files["captions"])
            caps[~caps["path"].str.contains("fer2013-dev")].to_csv(files["captions"], index=False)
        if args.no_augment:
            cfg.augment = []
        if args.augment:
            cfg.augment = [*cfg.augment, *args.augment.split(",")]
        if args.epochs:
            cfg.epochs = args.epochs
        if args.image_tower:
            cfg.image_tower = args.image_tower
        if args.hard_negatives:
            cfg.hard_negatives, cfg.hard_share = "subject", float(args.hard_negatives)

    enc = validation_model(shared, s, args.seed, tweak)
    scorer = Scorer(enc, s, extra=None if args.rule == "mean" else extra_sets(s))
    ramps, baseline = ramp_scores(scorer, enc.heads, args.rule)
    top_ts = [int(t) for t in args.top_t.split(",")]
    for top_t in top_ts:
        c = scorer.curves(enc.heads, top_t)
        sizes = scorer.sizes()
        rows = [with_summary({k: c[k][i] for k in baseline}, baseline, sizes) for i in range(len(WEIGHTS))]
        c["worst"] = [r["worst"] for r in rows]
        best = min(range(len(WEIGHTS)), key=lambda i: rank_key(rows[i], baseline, args.rule, sizes))
        print(f"\nConSE part averages its top {top_t} classes (heads.py conse_top_t):\n")
        print("| w (ConSE share) | " + " | ".join(k for k in c) + " |\n|---|" + "---|" * len(c))
        for i, w in enumerate(WEIGHTS):
            mark = f" ← best ({args.rule})" if i == best else ""
            print(f"| {w:.2f}{mark} | " + " | ".join(f"{100 * c[k][i]:.1f}" for k in c) + " |")
    keys = list(ramps[0][1])
    print(
        "\nconse (w = 1), the baseline of the worst margin: "
        + ", ".join(f"{k} {100 * v:.1f}" for k, v in baseline.items())
    )
    print(
        f"\nText-dependent ConSE share (images keep w; texts ramp lo → hi), the 10 best ({args.rule}) of",
        len(ramps),
        ":\n",
    )
    print("| w | lo | hi | from | to | " + " | ".join(keys) + " |\n|---|---|---|---|---|" + "---|" * len(keys))
    for p, r in ramps[:10]:
        print(
            "| "
            + " | ".join(f"{v:g}" for v in p.values())
            + " | "
            + " | ".join(f"{100 * r[k]:.1f}" for k in keys)
            + " |"
        )
    if args.adaptive:
        grid = [(lo, hi, pw) for pw in (0.5, 1.0, 2.0) for lo in (0.2, 0.3, 0.4, 0.5) for hi in (0.6, 0.8, 0.9, 0.95)]
        rows = [(g, adaptive(scorer, enc.heads, *g)) for g in grid]
        keys = list(rows[0][1])
        print("\nPer-image fusion weight w = lo + (hi − lo)·p_max^power:\n")
        print("| lo | hi | power | " + " | ".join(keys) + " |\n|---|---|---|" + "---|" * len(keys))
        for (lo, hi, pw), r in rows:
            print(f"| {lo} | {hi} | {pw} | " + " | ".join(f"{100 * r[k]:.1f}" for k in keys) + " |")
    print(
        f"\nSeed {args.seed}{', no FER part' if args.no_fer else ''}"
        f"{', no augmented views' if args.no_augment else ''}{f', {args.epochs} epochs' if args.epochs else ''}. "
        f"Machine: {machine()}."
    )


if __name__ == "__main__":
    main()
