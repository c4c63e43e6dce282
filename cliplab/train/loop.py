"""The training loop: symmetric InfoNCE, AdamW, warmup + cosine, accumulation, early stopping, resume.

Every epoch writes, each file atomically: `train_state.pt` (the last weights + optimizer, scheduler,
RNG, history: everything `--resume` needs to continue bit-for-bit), `metrics.jsonl`, `metrics.png`,
and, when validation improves, the best weights as the loadable checkpoint (`model.safetensors` +
`cliplab.json`). The data order of epoch e is drawn from (seed, e), so it needs no saved state.
"""
from __future__ import annotations

import io
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from cliplab.models.checkpoint import atomic_write_bytes, build_encoder, build_towers, save_checkpoint
from cliplab.pipeline import configure_threads
from cliplab.progress import progress_bar
from cliplab.train.config import TrainConfig, TrainError
from cliplab.train.data import load_pairs
from cliplab.train.inputs import ImageInputs, TextInputs
from cliplab.train.loss import clip_loss
from cliplab.train.validate import evaluate

STATE_FILE = "train_state.pt"
METRICS_FILE = "metrics.jsonl"
PLOT_FILE = "metrics.png"


@dataclass
class TrainResult:
    out_dir: Path
    epoch: int                 # epochs completed so far (over all resumes)
    best_epoch: int
    best: dict                 # the metrics row of the best epoch (what the checkpoint holds)
    history: list[dict]        # one row per epoch, epoch 0 = before training
    data: dict                 # train / validation counts and skipped rows
    finished: bool             # all epochs run, or stopped early
    stopped_early: bool
    seconds: float             # training time over all runs (feature extraction excluded)
    setup_seconds: float       # this run's data reading + feature extraction
    model: object = None       # the in-memory TrainedEncoder after the last epoch (the folder keeps the best)


def _param_groups(model, cfg: TrainConfig) -> list[dict]:
    decay, no_decay = [], []
    for name, p in model.heads.named_parameters():
        if name == "log_scale":
            p.requires_grad_(cfg.learn_scale)
            if not cfg.learn_scale:
                continue
        (decay if p.ndim >= 2 else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay, "lr": cfg.lr},
              {"params": no_decay, "weight_decay": 0.0, "lr": cfg.lr}]
    seen, tower = set(), []
    for t in (model.image_tower, model.text_tower):
        for p in t.parameters():
            if id(p) not in seen:
                seen.add(id(p))
                tower.append(p)
    if tower:
        groups.append({"params": tower, "weight_decay": cfg.weight_decay, "lr": cfg.tower_lr})
    return [g for g in groups if g["params"]]


def _schedule(total_steps: int, warmup: float) -> Callable[[int], float]:
    warm = max(1, int(round(warmup * total_steps))) if warmup > 0 else 0

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        progress = (step - warm) / max(1, total_steps - warm)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return factor


def _batches(n: int, size: int) -> list[slice]:
    out = [slice(i, min(n, i + size)) for i in range(0, n, size)]
    if len(out) > 1 and out[-1].stop - out[-1].start < 2:  # a batch of one has no negatives
        out.pop()
    return out


def _epoch_batches(pairs: np.ndarray, groups: np.ndarray | None, size: int,
                   rng: np.random.Generator) -> list[np.ndarray]:
    """One epoch's batches of pair indices: a shuffle, cut into batches; with `groups` (a group per
    pair) each batch stays inside one group and the batches of all groups are shuffled together.
    Same batch count every epoch, so the LR schedule can be laid out in advance."""
    order = rng.permutation(pairs)
    if groups is None:
        return [order[sl] for sl in _batches(len(order), size)]
    out = []
    for g in np.unique(groups[pairs]):
        part = order[groups[order] == g]
        out.extend(part[sl] for sl in _batches(len(part), size))
    return [out[i] for i in rng.permutation(len(out))]


def _save_state(out: Path, state: dict) -> None:
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(out / STATE_FILE, buf.getvalue())


def _write_metrics(out: Path, history: list[dict]) -> None:
    from cliplab.train.plots import plot_metrics

    atomic_write_bytes(out / METRICS_FILE, "".join(json.dumps(h) + "\n" for h in history).encode())
    plot_metrics(history, out / PLOT_FILE)


def _load_state(out: Path) -> dict:
    f = out / STATE_FILE
    if not f.is_file():
        raise TrainError(f"cannot resume {out}: no {STATE_FILE} (not a training run, or it was exported)")
    try:
        return torch.load(f, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 truncated or foreign file
        raise TrainError(f"cannot resume {out}: unreadable {STATE_FILE} ({type(e).__name__}: {e})") from None


def train(cfg: TrainConfig | None, out_dir: str | Path, resume: bool = False, epochs: int | None = None,
          stop_after: int | None = None, progress: bool = True,
          log: Callable[[str], None] | None = None) -> TrainResult:
    """Train (or, with `resume`, continue) a dual encoder into the checkpoint folder `out_dir`.

    `epochs` overrides the configured count (on resume: extends the run). `stop_after` ends this
    call after that many epochs; a later `resume` continues as if never interrupted.
    """
    log = log or (lambda s: None)
    out = Path(out_dir).expanduser()
    t_setup = time.perf_counter()
    state = None
    if resume:
        state = _load_state(out)
        cfg = TrainConfig.from_dict(state["config"])
    elif cfg is None:
        raise TrainError("no training configuration given")
    elif (out / STATE_FILE).exists():
        raise TrainError(f"{out} already holds a training run: pass --resume to continue it, or another --out")
    if epochs:
        cfg.epochs = int(epochs)
    cfg.validate()
    configure_threads()

    data, val_mask = load_pairs(cfg)
    towers = build_towers({"spec": cfg.image_tower, "train_last": cfg.image_train_last},
                          {"spec": cfg.text_tower, "train_last": cfg.text_train_last}, seed=cfg.seed)
    image_in = ImageInputs(towers[0], data.images, ["center", *cfg.augment], cfg.cache_dir, progress, cfg.workers)
    text_in = TextInputs(towers[1], data.texts, cfg.cache_dir, progress)
    ok = image_in.ok
    skipped = {k: v for k, v in data.skipped.items() if v}
    if image_in.failed:
        skipped["unreadable image"] = int(np.isin(data.pair_image, list(image_in.failed)).sum())
    train_pairs = np.flatnonzero(ok[data.pair_image] & ~val_mask[data.pair_image])
    val_pairs = np.flatnonzero(ok[data.pair_image] & val_mask[data.pair_image])
    if len(train_pairs) < 2:
        raise TrainError(f"only {len(train_pairs)} usable training pairs (skipped: {skipped or 'none'})")
    summary = {"train": data.summary(train_pairs), "validation": data.summary(val_pairs), "skipped": skipped}
    val_images = sorted({data.images[i] for i in data.pair_image[val_pairs]})
    if state is not None and state["val_images"] != val_images:
        raise TrainError(f"cannot resume {out}: the training data changed since the run started "
                         "(different validation images)")

    model_cfg = cfg.model_config(towers[0].feature_dims, towers[1].dim)
    model = build_encoder(model_cfg, name=str(out), seed=cfg.seed, towers=towers)
    groups = _param_groups(model, cfg)
    opt = torch.optim.AdamW(groups, betas=(0.9, 0.98), eps=1e-6)
    groups = data.pair_caption.astype(np.int64) if cfg.batch_by_source else None
    n_batches = len(_epoch_batches(train_pairs, groups, cfg.batch_size, np.random.default_rng(0)))
    steps_per_epoch = math.ceil(n_batches / cfg.accum)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _schedule(cfg.epochs * steps_per_epoch, cfg.warmup))
    setup_seconds = time.perf_counter() - t_setup
    out.mkdir(parents=True, exist_ok=True)

    def record() -> dict:
        return {"training": {"config": cfg.to_dict(), "data": summary, "best_epoch": best_epoch,
                             "best": history[best_epoch] if history else {}, "epochs_run": epoch}}

    if state is None:
        torch.manual_seed(cfg.seed)
        epoch, seconds, history, best_epoch, best_score, bad, stopped = 0, 0.0, [], 0, -1.0, 0, False
        row = {"epoch": 0, **evaluate(model, image_in, text_in, data, val_pairs, cfg.batch_size)}
        history.append(row)
        best_score = row.get("score", 0.0)
        save_checkpoint(model, out, record())
        _write_metrics(out, history)
        log(_line(row))
    else:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])
        epoch, seconds, history = int(state["epoch"]), float(state["seconds"]), list(state["history"])
        best_epoch, best_score, bad = int(state["best_epoch"]), float(state["best_score"]), int(state["bad_epochs"])
        stopped = bool(state["stopped"])
        if cfg.epochs > int(state["config"]["epochs"]):
            stopped, bad = False, 0  # more epochs asked for: an early stop no longer holds
            # The schedule was built for the new total: continue its cosine from the current step.
            for g, base, fn in zip(opt.param_groups, sched.base_lrs, sched.lr_lambdas):
                g["lr"] = base * fn(sched.last_epoch)
        log(f"resuming {out} after epoch {epoch}/{cfg.epochs}")

    run_epochs = 0
    while epoch < cfg.epochs and not stopped and (stop_after is None or run_epochs < stop_after):
        t0 = time.perf_counter()
        epoch += 1
        rng = np.random.default_rng([cfg.seed, epoch])
        batches = _epoch_batches(train_pairs, groups, cfg.batch_size, rng)
        views = rng.integers(0, len(image_in.views), size=len(data.pair_image))  # a view per pair
        model.heads.train()
        total, count = 0.0, 0
        with progress_bar(len(batches), f"epoch {epoch}/{cfg.epochs}", enabled=progress) as advance:
            for b, pairs in enumerate(batches):
                img_ids = torch.from_numpy(data.pair_image[pairs])
                txt_ids = torch.from_numpy(data.pair_text[pairs])
                ie = model.heads.encode_image(image_in.batch(data.pair_image[pairs], views[pairs]))
                te = model.heads.encode_text(text_in.batch(data.pair_text[pairs]))
                loss = clip_loss(ie, te, model.heads.scale(), img_ids, txt_ids)
                (loss / cfg.accum).backward()
                if (b + 1) % cfg.accum == 0 or b == len(batches) - 1:
                    opt.step()
                    opt.zero_grad(set_to_none=True)
                    sched.step()
                total += float(loss.detach()) * len(pairs)
                count += len(pairs)
                advance(1)
        model.heads.eval()
        seconds += time.perf_counter() - t0
        row = {"epoch": epoch, "train_loss": total / max(1, count), "lr": opt.param_groups[0]["lr"],
               **evaluate(model, image_in, text_in, data, val_pairs, cfg.batch_size),
               "seconds": round(time.perf_counter() - t0, 3)}
        history.append(row)
        if row.get("score", 0.0) > best_score or not len(val_pairs):
            best_epoch, best_score, bad = epoch, row.get("score", 0.0), 0
            save_checkpoint(model, out, record())
        else:
            bad += 1
            stopped = 0 < cfg.patience <= bad
        run_epochs += 1
        log(_line(row) + ("  [best]" if best_epoch == epoch else "") + ("  early stop" if stopped else ""))
        _save_state(out, {"config": cfg.to_dict(), "epoch": epoch, "model": model.state_dict(),
                          "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                          "torch_rng": torch.get_rng_state(), "history": history, "seconds": seconds,
                          "best_epoch": best_epoch, "best_score": best_score, "bad_epochs": bad,
                          "stopped": stopped, "val_images": val_images})
        _write_metrics(out, history)
    if state is not None and run_epochs == 0:
        _write_metrics(out, history)
    if run_epochs:  # the config's record of how far training got
        from cliplab.models.checkpoint import read_config

        cfg_json = read_config(out)
        cfg_json["training"]["epochs_run"] = epoch
        from cliplab.models.checkpoint import atomic_write_json

        atomic_write_json(out / "cliplab.json", cfg_json)
    finished = stopped or epoch >= cfg.epochs
    model.refresh_scale()
    return TrainResult(out, epoch, best_epoch, history[best_epoch], history, summary, finished, stopped,
                       seconds, setup_seconds, model)


def _line(row: dict) -> str:
    parts = [f"epoch {row['epoch']:>3}"]
    if row.get("train_loss") is not None:
        parts.append(f"loss {row['train_loss']:.4f}")
    if row.get("val_loss") is not None:
        parts.append(f"val_loss {row['val_loss']:.4f}")
    for d in ("t2i", "i2t"):
        if f"{d}_R@1" in row:
            parts.append(f"{d} R@1/5/10 " + "/".join(f"{100 * row[f'{d}_R@{k}']:.1f}" for k in (1, 5, 10)))
    if "logit_scale" in row:
        parts.append(f"scale {row['logit_scale']:.1f}")
    return "  ".join(parts)
