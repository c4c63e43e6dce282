"""The training loop: symmetric InfoNCE, AdamW, warmup + cosine, accumulation, early stopping, resume.

Every epoch writes, each file atomically: `train_state.pt` (the last weights + optimizer, scheduler,
RNG, history: everything `--resume` needs to continue bit-for-bit), `metrics.jsonl`, `metrics.png`,
and, when validation improves, the best weights as the loadable checkpoint (`model.safetensors` +
`cliplab.json`). The data order of epoch e is drawn from (seed, e), so it needs no saved state.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from cliplab.data.atomic import atomic_write_json
from cliplab.models.trained.checkpoint import build_encoder, build_towers, read_config, save_checkpoint
from cliplab.pipeline import configure_threads
from cliplab.progress import progress_bar
from cliplab.train.config import TrainConfig, TrainError
from cliplab.train.data import load_pairs
from cliplab.train.inputs import ImageInputs, TextInputs
from cliplab.train.loss import clip_loss
from cliplab.train.negatives import batch_groups
from cliplab.train.state import STATE_FILE, load_state, save_state, write_metrics
from cliplab.train.validate import evaluate


@dataclass
class TrainResult:
    out_dir: Path
    epoch: int  # epochs completed so far (over all resumes)
    best_epoch: int
    best: dict  # the metrics row of the best epoch (what the checkpoint holds)
    history: list[dict]  # one row per epoch, epoch 0 = before training
    data: dict  # train / validation counts and skipped rows
    finished: bool  # all epochs run, or stopped early
    stopped_early: bool
    seconds: float  # training time over all runs (feature extraction excluded)
    setup_seconds: float  # this run's data reading + feature extraction
    model: object = None  # the in-memory TrainedEncoder after the last epoch (the folder keeps the best)


def _param_groups(model, cfg: TrainConfig) -> list[dict]:
    decay, no_decay = [], []
    for name, p in model.heads.named_parameters():
        if name == "log_scale":
            p.requires_grad_(cfg.learn_scale)
            if not cfg.learn_scale:
                continue
        (decay if p.ndim >= 2 else no_decay).append(p)
    groups = [
        {"params": decay, "weight_decay": cfg.weight_decay, "lr": cfg.lr},
        {"params": no_decay, "weight_decay": 0.0, "lr": cfg.lr},
    ]
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


def _epoch_batches(
    pairs: np.ndarray, groups: np.ndarray | None, size: int, rng: np.random.Generator
) -> list[np.ndarray]:
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


@dataclass
class _Run:
    """Everything one training call works with (built by `_prepare`)."""

    cfg: TrainConfig
    out: Path
    data: object
    image_in: ImageInputs
    text_in: TextInputs
    train_pairs: np.ndarray
    val_pairs: np.ndarray
    val_images: list
    summary: dict
    model: object
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LambdaLR
    groups: np.ndarray | None
    # progress (restored on resume)
    epoch: int = 0
    seconds: float = 0.0
    history: list = None
    best_epoch: int = 0  # 0: no trained epoch saved yet (epoch 0 is the untrained baseline)
    best_score: float = -math.inf
    bad: int = 0
    stopped: bool = False

    def record(self) -> dict:
        return {
            "training": {
                "config": self.cfg.to_dict(),
                "data": self.summary,
                "best_epoch": self.best_epoch,
                "best": self.history[self.best_epoch] if self.history else {},
                "epochs_run": self.epoch,
            }
        }

    def state(self) -> dict:
        return {
            "config": self.cfg.to_dict(),
            "epoch": self.epoch,
            "model": self.model.state_dict(),
            "optimizer": self.opt.state_dict(),
            "scheduler": self.sched.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "history": self.history,
            "seconds": self.seconds,
            "best_epoch": self.best_epoch,
            "best_score": self.best_score,
            "bad_epochs": self.bad,
            "stopped": self.stopped,
            "val_images": self.val_images,
        }


def _config_for(
    cfg: TrainConfig | None, out: Path, resume: bool, epochs: int | None
) -> tuple[TrainConfig, dict | None]:
    """The run's configuration (a resumed run's own, saved one) and its saved state, checked."""
    state = None
    if resume:
        state = load_state(out)
        cfg = TrainConfig.from_dict(state["config"])
        done = int(state["epoch"])
        if epochs is not None and epochs < done:
            raise TrainError(
                f"--epochs {epochs}: {out} has already run {done} epochs; give at least {done} (more extends the run)"
            )
    elif cfg is None:
        raise TrainError("no training configuration given")
    elif (out / STATE_FILE).exists():
        raise TrainError(f"{out} already holds a training run: pass --resume to continue it, or another --out")
    else:  # stored absolute, so `--resume` works from any folder
        cfg.pairs = [str(Path(p).expanduser().resolve()) for p in cfg.pairs]
        cfg.labels = [str(Path(p).expanduser().resolve()) for p in cfg.labels]
    if epochs is not None:
        if epochs < 1:
            raise TrainError(f"--epochs {epochs}: must be at least 1")
        cfg.epochs = int(epochs)
    return cfg.validate(), state


def _prepare(cfg: TrainConfig, out: Path, state: dict | None, progress: bool) -> _Run:
    """Read the data, extract (cached) features, build model, optimizer and schedule."""
    data, val_mask = load_pairs(cfg)
    towers = build_towers(
        {"spec": cfg.image_tower, "train_last": cfg.image_train_last},
        {"spec": cfg.text_tower, "train_last": cfg.text_train_last},
        seed=cfg.seed,
    )
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
        raise TrainError(
            f"cannot resume {out}: the training data changed since the run started (different validation images)"
        )

    model_cfg = cfg.model_config(towers[0].feature_dims, towers[1].dim)
    model = build_encoder(model_cfg, name=str(out), seed=cfg.seed, towers=towers)
    opt = torch.optim.AdamW(_param_groups(model, cfg), betas=(0.9, 0.98), eps=1e-6)
    groups = batch_groups(
        data.pair_caption, data.pair_text, data.texts, cfg.batch_by_source, cfg.hard_negatives, cfg.hard_share, cfg.seed
    )
    n_batches = len(_epoch_batches(train_pairs, groups, cfg.batch_size, np.random.default_rng(0)))
    if n_batches < 1:
        raise TrainError(f"{len(train_pairs)} training pairs make no batch of at least two")
    steps_per_epoch = math.ceil(n_batches / cfg.accum)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _schedule(cfg.epochs * steps_per_epoch, cfg.warmup))
    return _Run(
        cfg,
        out,
        data,
        image_in,
        text_in,
        train_pairs,
        val_pairs,
        val_images,
        summary,
        model,
        opt,
        sched,
        groups,
        history=[],
    )


def _restore(run: _Run, state: dict) -> None:
    run.model.load_state_dict(state["model"])
    run.opt.load_state_dict(state["optimizer"])
    run.sched.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["torch_rng"])
    run.epoch, run.seconds, run.history = int(state["epoch"]), float(state["seconds"]), list(state["history"])
    run.best_epoch, run.best_score = int(state["best_epoch"]), float(state["best_score"])
    run.bad, run.stopped = int(state["bad_epochs"]), bool(state["stopped"])
    if run.best_epoch == 0:  # a run saved before any trained epoch was kept: nothing to beat
        run.best_score = -math.inf
    if run.cfg.epochs > int(state["config"]["epochs"]):
        run.stopped, run.bad = False, 0  # more epochs asked for: an early stop no longer holds
        # The schedule was built for the new total: continue its cosine from the current step.
        for g, base, fn in zip(run.opt.param_groups, run.sched.base_lrs, run.sched.lr_lambdas):
            g["lr"] = base * fn(run.sched.last_epoch)


def _train_epoch(run: _Run, progress: bool) -> dict:
    """One epoch over the training pairs, then validation; returns its metrics row."""
    cfg, data, model = run.cfg, run.data, run.model
    t0 = time.perf_counter()
    rng = np.random.default_rng([cfg.seed, run.epoch])
    batches = _epoch_batches(run.train_pairs, run.groups, cfg.batch_size, rng)
    views = rng.integers(0, len(run.image_in.views), size=len(data.pair_image))  # a view per pair
    model.heads.train()
    total, count = 0.0, 0
    with progress_bar(len(batches), f"epoch {run.epoch}/{cfg.epochs}", enabled=progress) as advance:
        for b, pairs in enumerate(batches):
            img_ids = torch.from_numpy(data.pair_image[pairs])
            txt_ids = torch.from_numpy(data.pair_text[pairs])
            ie = model.heads.encode_image(run.image_in.batch(data.pair_image[pairs], views[pairs]))
            te = model.heads.encode_text(run.text_in.batch(data.pair_text[pairs]))
            loss = clip_loss(ie, te, model.heads.scale(), img_ids, txt_ids)
            (loss / cfg.accum).backward()
            if (b + 1) % cfg.accum == 0 or b == len(batches) - 1:
                run.opt.step()
                run.opt.zero_grad(set_to_none=True)
                run.sched.step()
            total += float(loss.detach()) * len(pairs)
            count += len(pairs)
            advance(1)
    model.heads.eval()
    run.seconds += time.perf_counter() - t0
    return {
        "epoch": run.epoch,
        "train_loss": total / max(1, count),
        "lr": run.opt.param_groups[0]["lr"],
        **evaluate(model, run.image_in, run.text_in, data, run.val_pairs, cfg.batch_size),
        "seconds": round(time.perf_counter() - t0, 3),
    }


def train(
    cfg: TrainConfig | None,
    out_dir: str | Path,
    resume: bool = False,
    epochs: int | None = None,
    stop_after: int | None = None,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> TrainResult:
    """Train (or, with `resume`, continue) a dual encoder into the checkpoint folder `out_dir`.

    `epochs` overrides the configured count (on resume: extends the run; fewer than already run is
    an error). `stop_after` ends this call after that many epochs; a later `resume` continues as if
    never interrupted. The checkpoint holds the best *trained* epoch: epoch 0 (the untrained model)
    is measured as a baseline but never saved as the model.
    """
    log = log or (lambda s: None)
    out = Path(out_dir).expanduser()
    t_setup = time.perf_counter()
    cfg, state = _config_for(cfg, out, resume, epochs)
    if stop_after is not None and stop_after < 1:
        raise TrainError(f"--stop-after {stop_after}: must be at least 1")
    configure_threads()
    run = _prepare(cfg, out, state, progress)
    setup_seconds = time.perf_counter() - t_setup
    out.mkdir(parents=True, exist_ok=True)

    if state is None:
        torch.manual_seed(cfg.seed)
        row = {"epoch": 0, **evaluate(run.model, run.image_in, run.text_in, run.data, run.val_pairs, cfg.batch_size)}
        run.history.append(row)
        write_metrics(out, run.history)
        log(_line(row) + "  (untrained baseline)")
    else:
        _restore(run, state)
        log(f"resuming {out} after epoch {run.epoch}/{cfg.epochs}")

    run_epochs = 0
    while run.epoch < cfg.epochs and not run.stopped and (stop_after is None or run_epochs < stop_after):
        run.epoch += 1
        row = _train_epoch(run, progress)
        run.history.append(row)
        score = row.get("score", 0.0)
        if score > run.best_score or not len(run.val_pairs):
            run.best_epoch, run.best_score, run.bad = run.epoch, score, 0
            save_checkpoint(run.model, out, run.record())
        else:
            run.bad += 1
            run.stopped = 0 < cfg.patience <= run.bad
        run_epochs += 1
        log(_line(row) + ("  [best]" if run.best_epoch == run.epoch else "") + ("  early stop" if run.stopped else ""))
        save_state(out, run.state())
        write_metrics(out, run.history)
    if state is not None and run_epochs == 0:
        write_metrics(out, run.history)
    if run_epochs and run.best_epoch != run.epoch and (out / "cliplab.json").is_file():  # how far training got
        cfg_json = read_config(out)
        cfg_json["training"]["epochs_run"] = run.epoch
        atomic_write_json(out / "cliplab.json", cfg_json)
    finished = run.stopped or run.epoch >= cfg.epochs
    run.model.refresh_scale()
    return TrainResult(
        out,
        run.epoch,
        run.best_epoch,
        run.history[run.best_epoch],
        run.history,
        run.summary,
        finished,
        run.stopped,
        run.seconds,
        setup_seconds,
        run.model,
    )


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
