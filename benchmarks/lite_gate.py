"""A learned ConSE share against the shipped hand ramp (issue 24: "replace the hand ramp by
something learned, if it measures better").

The ramp (heads.py "conse_fusion_ramp") sets a text's ConSE share w_t from one number, its best
cosine to a class prompt, by four hand-picked constants; images keep w = 0.3. The gate here learns
both shares instead, as logistic functions of a few features:

- per text: its best and second-best cosine to the classifier's class prompts, the mean of its
  top 5, its mean over all prompts and the gap between the first two;
- per image (`--image` on): the classifier's top probability, its top-5 mass and the entropy of
  its 1,000 probabilities.

Fit by Adam on the fused similarity's cross-entropy (each set weighted equally, the model's
logit scale), starting from the ramp's own shape. Scored by 2-fold cross-validation on
`lite_select.py`'s validation sets: each set's queries (photos for classification, captions for
retrieval) are split in halves; the gate learns on one half of every set and is scored on the
other, then the halves swap. The ramp and `conse` are scored on the same halves, so the three rows
are over the same queries. Reporting sets are never read.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/lite_gate.py [--seed N]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, require_shared  # noqa: E402
from lite_select import Scorer, splits, validation_model  # noqa: E402
from lite_validation import extra_sets  # noqa: E402

RAMP = {"w": 0.3, "lo": 0.05, "hi": 0.95, "from": 0.6, "to": 0.9}  # the shipped point
STEPS, LR = 300, 0.05


def text_features(ct: torch.Tensor, prompts: torch.Tensor) -> torch.Tensor:
    c = ct @ prompts.T
    top = c.topk(5, dim=1).values
    return torch.stack([top[:, 0], top[:, 1], top.mean(1), c.mean(1), top[:, 0] - top[:, 1]], 1)


def image_features(logits: torch.Tensor) -> torch.Tensor:
    p = torch.softmax(logits.float(), 1)
    top = p.topk(5, 1).values
    entropy = -(p * p.clamp_min(1e-12).log()).sum(1) / np.log(p.shape[1])
    return torch.stack([top[:, 0], top.sum(1), entropy], 1)


class Gate(torch.nn.Module):
    def __init__(self, per_image: bool):
        super().__init__()
        self.text, self.image, self.per_image = torch.nn.Linear(5, 1), torch.nn.Linear(3, 1), per_image
        with torch.no_grad():  # start where the ramp is: w_t ≈ sigmoid(15·(best − 0.73)), images 0.3
            self.text.weight.zero_()
            self.text.weight[0, 0] = 15.0
            self.text.bias.fill_(-11.0)
            self.image.weight.zero_()
            self.image.bias.fill_(float(np.log(RAMP["w"] / (1 - RAMP["w"]))))

    def forward(self, tf: torch.Tensor, imf: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        wt = torch.sigmoid(self.text(tf)).T
        wi = torch.sigmoid(self.image(imf)) if self.per_image else torch.full((imf.shape[0], 1), RAMP["w"])
        return wi, wt


def fused(d: dict, wi: torch.Tensor, wt: torch.Tensor) -> torch.Tensor:
    return (wi * wt).sqrt() * d["sc"] + ((1 - wi) * (1 - wt)).sqrt() * d["sh"]


def ramp(d: dict) -> torch.Tensor:
    wt = RAMP["lo"] + (RAMP["hi"] - RAMP["lo"]) * (
        (d["tf"][:, :1].T - RAMP["from"]) / (RAMP["to"] - RAMP["from"])
    ).clamp(0, 1)
    return fused(d, torch.tensor(RAMP["w"]), wt)


def query_logits(d: dict, sim: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(queries × candidates) logits and each query's positives, in the set's direction."""
    gt, direction = d["gt"], d["direction"]
    if direction == "i2t":
        return sim, F.one_hot(gt, sim.shape[1]).bool()
    if direction == "i2t-multi":  # image rows; its captions are the positives
        return sim, gt[None, :] == torch.arange(sim.shape[0])[:, None]
    if direction == "t2i":
        return sim.T, F.one_hot(gt, sim.shape[0]).bool()
    own, allowed = gt  # t2i-within: each caption ranks only the photos its mask allows
    return sim.T.masked_fill(~allowed, -1e4), F.one_hot(own, sim.shape[0]).bool()


def loss(d: dict, sim: torch.Tensor, rows: torch.Tensor, scale: float) -> torch.Tensor:
    z, pos = query_logits(d, scale * sim)
    z, pos = z[rows], pos[rows]
    return (torch.logsumexp(z, 1) - torch.logsumexp(z.masked_fill(~pos, -1e4), 1)).mean()


def hits(d: dict, sim: torch.Tensor, rows: torch.Tensor) -> int:
    z, pos = query_logits(d, sim)
    return int(pos[rows].gather(1, z[rows].argmax(1, keepdim=True)).sum())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0, help="Training seed of the heads (and of the fold split).")
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    shared = require_shared()
    s = splits(shared)
    enc = validation_model(shared, s, args.seed)
    scorer = Scorer(enc, s, extra=extra_sets(s))
    prompts = F.normalize(scorer.class_emb.float(), dim=-1)
    scale = float(enc.heads.scale().detach())
    data = {}
    for key, (ci, hi, ct, ht, logits, gt, direction) in scorer.halves(enc.heads).items():
        known = prompts[~scorer.blind[key]] if key in scorer.blind else prompts
        tf, imf = text_features(ct, known), image_features(logits)
        data[key] = {"sc": ci @ ct.T, "sh": hi @ ht.T, "tf": tf, "imf": imf, "gt": gt, "direction": direction}
    rng = np.random.default_rng(args.seed)
    halves = {}
    for key, d in data.items():
        n = query_logits(d, d["sc"])[0].shape[0]
        half = np.zeros(n, bool)
        half[rng.permutation(n)[: n // 2]] = True
        halves[key] = torch.from_numpy(half)
    rows = {"conse": {}, "ramp (shipped)": {}, "gate at its start (ramp-shaped, untrained)": {}}
    rows |= {"gate, texts": {}, "gate, texts + images": {}}
    with torch.no_grad():
        start = Gate(False)
        for key, d in data.items():
            rows["gate at its start (ramp-shaped, untrained)"][key] = hits(
                d, fused(d, *start(d["tf"], d["imf"])), torch.ones_like(halves[key])
            )
    for per_image, name in ((False, "gate, texts"), (True, "gate, texts + images")):
        for fold in (0, 1):
            train_rows = {k: h if fold == 0 else ~h for k, h in halves.items()}
            gate = Gate(per_image)
            opt = torch.optim.Adam(gate.parameters(), lr=LR)
            for _ in range(STEPS):
                total = sum(loss(d, fused(d, *gate(d["tf"], d["imf"])), train_rows[k], scale) for k, d in data.items())
                opt.zero_grad()
                (total / len(data)).backward()
                opt.step()
            with torch.no_grad():
                for key, d in data.items():
                    test = ~train_rows[key]
                    for row, sim in (
                        (name, fused(d, *gate(d["tf"], d["imf"]))),
                        ("ramp (shipped)", ramp(d)),
                        ("conse", d["sc"]),
                    ):
                        if per_image and row != name:
                            continue  # the ramp and conse rows are counted once
                        rows[row][key] = rows[row].get(key, 0) + hits(d, sim, test)
    sizes = {k: len(h) for k, h in halves.items()}
    keys = list(data)
    print(
        "| scored on held-out halves | "
        + " | ".join(k.replace("_top1", "").replace("_R@1", "") for k in keys)
        + " | mean |"
    )
    print("|---|" + "---|" * (len(keys) + 1))
    for row, got in rows.items():
        vals = [100 * got[k] / sizes[k] for k in keys]
        print(f"| {row} | " + " | ".join(f"{v:.1f}" for v in vals) + f" | {np.mean(vals):.1f} |")
    print(f"\nSeed {args.seed}, {STEPS} Adam steps at {LR}, 2 folds. Machine: {machine()}.")


if __name__ == "__main__":
    main()
