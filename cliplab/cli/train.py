"""`cliplab train`: contrastive training of a dual encoder into a checkpoint folder (or `--resume` one)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from cliplab.cli.app import JsonOpt, app, check_out, err, fail, guarded, out, print_json


def _csv(values: Optional[List[str]]) -> list[str]:
    """Repeatable options that also accept comma lists: --augment flip,crop == --augment flip --augment crop."""
    return [v.strip() for item in (values or []) for v in item.split(",") if v.strip()]


# What may change when a run is resumed: how far it goes, and how this invocation reports.
RESUME_OPTIONS = {"resume", "epochs", "stop_after", "as_json", "out_dir", "cache_dir"}


def _check_resume_options(ctx: typer.Context) -> None:
    """A resumed run continues with its saved data and settings; silently ignoring a new --pairs or
    --lr would train something else than the user thinks."""

    def typed(name: str) -> bool:  # compared by name: typer may bring its own copy of click's enum
        return getattr(ctx.get_parameter_source(name), "name", "") == "COMMANDLINE"

    given = [p for p in ctx.command.params if p.name not in RESUME_OPTIONS and typed(p.name)]
    if given:
        names = ", ".join(p.opts[0] for p in given)
        fail(
            f"--resume continues the run with its saved data and settings: drop {names} "
            "(only --epochs and --stop-after may change; start a new run with --out for the rest)"
        )


@app.command()
@guarded
def train(
    ctx: typer.Context,
    pairs: Optional[List[Path]] = typer.Option(
        None, "--pairs", help="Image–caption file (CSV/JSONL: path, caption [, split]). Repeatable."
    ),
    labels: Optional[List[Path]] = typer.Option(
        None, "--labels", help="Labelled images (labels.csv or ImageFolder), trained as prompt pairs. Repeatable."
    ),
    label_column: Optional[str] = typer.Option(None, "--label-column", help="labels.csv column with the class name."),
    label_template: Optional[List[str]] = typer.Option(
        None, "--label-template", help="Prompt for labelled images (default 'a photo of a {}.'). Repeatable."
    ),
    split: str = typer.Option(
        "auto",
        "--split",
        help="Pairs rows to train on: auto (= 'train' when the file has that split), all, or a split name.",
    ),
    val_split: str = typer.Option(
        "0.1", "--val-split", help="Validation: a fraction of the images, or a split name in the pairs file."
    ),
    image_tower: str = typer.Option(
        "efficientnet-lite0",
        "--image-tower",
        help="efficientnet-lite0|lite1|lite2, clip:<folder or hub id>; ':random' for random init.",
    ),
    text_tower: str = typer.Option(
        "minilm", "--text-tower", help="minilm, clip:<folder or hub id>; ':random' for random init."
    ),
    unfreeze_image: int = typer.Option(
        0,
        "--unfreeze-image",
        min=-1,
        help="Train the image tower's last N blocks (-1: all; 0: frozen, features cached).",
    ),
    unfreeze_text: int = typer.Option(
        0, "--unfreeze-text", min=-1, help="Train the text tower's last N layers (-1: all; 0: frozen)."
    ),
    head: str = typer.Option("mlp", "--head", help="Head for both sides: none, linear, mlp."),
    image_head: Optional[str] = typer.Option(None, "--image-head", help="Override --head for the image side."),
    text_head: Optional[str] = typer.Option(None, "--text-head", help="Override --head for the text side."),
    dim: int = typer.Option(256, "--dim", min=0, help="Shared embedding size (0: the text tower's size)."),
    hidden: Optional[int] = typer.Option(None, "--hidden", min=1, help="MLP width (default: max(in, out))."),
    dropout: float = typer.Option(0.1, "--dropout", min=0.0, max=0.99, help="Dropout inside MLP heads."),
    skip: bool = typer.Option(False, "--skip/--no-skip", help="MLP heads also get a linear path."),
    image_inputs: str = typer.Option(
        "pooled", "--image-inputs", help="Image features into the head: pooled, logits, conse (comma list)."
    ),
    conse_skip: bool = typer.Option(
        False, "--conse-skip/--no-conse-skip", help="Add the ConSE vector to the image output (needs --dim 0)."
    ),
    epochs: Optional[int] = typer.Option(
        None, "--epochs", min=1, help="Epochs (default 30; with --resume: extend the run to this many)."
    ),
    batch_size: int = typer.Option(256, "--batch-size", min=2),
    accum: int = typer.Option(1, "--accum", min=1, help="Gradient accumulation: optimizer step every N batches."),
    batch_by_source: bool = typer.Option(
        False,
        "--batch-by-source",
        help="Batches hold only captions or only label prompts (captions then meet harder negatives).",
    ),
    hard_negatives: Optional[str] = typer.Option(
        None,
        "--hard-negatives",
        help="subject: caption batches also share their subject (dog, man, girl…), so the heads learn places and actions.",
    ),
    hard_share: float = typer.Option(
        1.0, "--hard-share", help="With --hard-negatives: the part of the captions batched by subject (0-1]."
    ),
    lr: float = typer.Option(1e-3, "--lr", min=1e-12, help="Peak learning rate of the heads."),
    tower_lr: float = typer.Option(1e-5, "--tower-lr", min=0.0, help="Peak learning rate of unfrozen tower layers."),
    weight_decay: float = typer.Option(0.05, "--weight-decay", min=0.0),
    warmup: float = typer.Option(
        0.05, "--warmup", min=0.0, max=1.0, help="Fraction of steps for linear warmup before the cosine decay."
    ),
    patience: int = typer.Option(
        5, "--patience", min=0, help="Stop after N epochs without better validation recall (0: never)."
    ),
    seed: int = typer.Option(0, "--seed"),
    augment: Optional[List[str]] = typer.Option(
        None, "--augment", help="Cached image views: flip, crop, lowres, gray, sketch (comma list or repeat)."
    ),
    cache_dir: Optional[Path] = typer.Option(
        None, "--cache-dir", help="Feature cache (default ~/.cache/cliplab/features, or $CLIPLAB_CACHE)."
    ),
    out_dir: Optional[Path] = typer.Option(None, "--out", "-o", help="Checkpoint folder to create."),
    resume: Optional[Path] = typer.Option(
        None, "--resume", help="Continue the run in this folder exactly where it stopped."
    ),
    stop_after: Optional[int] = typer.Option(
        None, "--stop-after", min=1, help="Stop this invocation after N epochs (resume later)."
    ),
    as_json: bool = JsonOpt,
):
    """Train a dual encoder (towers + heads) with symmetric InfoNCE; the result works with --model DIR."""
    from cliplab.train import TrainConfig
    from cliplab.train import train as run_training

    if resume is not None:
        if out_dir is not None and Path(out_dir).resolve() != Path(resume).resolve():
            fail("--resume continues in its own folder; drop --out")
        _check_resume_options(ctx)
        cfg, target = None, resume
    else:
        if out_dir is None:
            fail("give --out DIR for a new run (or --resume DIR to continue one)")
        check_out(out_dir)
        cfg = TrainConfig(
            pairs=[str(p) for p in pairs or []],
            labels=[str(p) for p in labels or []],
            label_column=label_column,
            label_templates=label_template or ["a photo of a {}."],
            split=None if split == "all" else split,
            val_split=val_split,
            image_tower=image_tower,
            text_tower=text_tower,
            image_train_last=unfreeze_image,
            text_train_last=unfreeze_text,
            image_head=image_head or head,
            text_head=text_head or head,
            dim=dim or None,
            hidden=hidden,
            dropout=dropout,
            skip=skip,
            image_inputs=_csv([image_inputs]),
            conse_skip=conse_skip,
            epochs=epochs or 30,
            batch_size=batch_size,
            accum=accum,
            batch_by_source=batch_by_source,
            hard_negatives=hard_negatives,
            hard_share=hard_share,
            lr=lr,
            tower_lr=tower_lr,
            weight_decay=weight_decay,
            warmup=warmup,
            patience=patience,
            seed=seed,
            augment=_csv(augment),
            cache_dir=str(cache_dir) if cache_dir else None,
        )
        target = out_dir
    log = (lambda s: None) if as_json else (lambda s: err.print(s, markup=False, highlight=False))
    res = run_training(
        cfg,
        target,
        resume=resume is not None,
        epochs=epochs if resume is not None else None,
        stop_after=stop_after,
        progress=not as_json,
        log=log,
    )
    summary = {
        "out": str(res.out_dir),
        "epoch": res.epoch,
        "best_epoch": res.best_epoch,
        "best": res.best,
        "finished": res.finished,
        "stopped_early": res.stopped_early,
        "data": res.data,
        "train_seconds": round(res.seconds, 1),
        "setup_seconds": round(res.setup_seconds, 1),
    }
    if as_json:
        print_json(summary)
        return
    skipped = res.data.get("skipped") or {}
    if skipped:
        err.print("skipped rows: " + ", ".join(f"{n} {why}" for why, n in skipped.items()), markup=False)
    best = res.best
    recall = ""
    if "t2i_R@1" in best:
        recall = (
            f": validation text→image R@1/5/10 {100 * best['t2i_R@1']:.1f}/{100 * best['t2i_R@5']:.1f}/"
            f"{100 * best['t2i_R@10']:.1f}"
        )
    state = "finished" if res.finished else f"paused after epoch {res.epoch} (continue with --resume {res.out_dir})"
    out.print(f"{state}; best epoch {res.best_epoch}{recall}")
    out.print(f"checkpoint: {res.out_dir}  (use it with --model {res.out_dir})")
