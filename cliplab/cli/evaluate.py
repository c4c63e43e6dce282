"""`cliplab eval …`: zeroshot, retrieval, probe, instance. Parse options, call cliplab.eval, print.

Several --model flags → one comparison table (rows = models); --json prints the whole result on
stdout; --out DIR writes results.json, table.md, table.csv and the task's plots.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, List, Optional

import typer

from cliplab.cli.app import (
    DeviceOpt,
    JsonOpt,
    ModelsOpt,
    PrecisionOpt,
    RuntimeOpt,
    app,
    check_out,
    err,
    guarded,
    load_model,
    out,
    print_json,
    runtime_info,
    runtime_text,
    table,
)
from cliplab.cli.vocabulary import Vocabulary, pooling_option

eval_app = typer.Typer(
    cls=Vocabulary, no_args_is_help=True, help="Benchmarks: zero-shot, retrieval, linear probe, instance retrieval."
)
app.add_typer(eval_app, name="eval")

OutOpt = typer.Option(None, "--out", "-o", help="Folder for results.json, table.md/.csv and plots.")
BatchOpt = typer.Option(None, "--batch-size", min=1, help="Images per model call (default: per model).")
LabelledArg = typer.Argument(..., metavar="DATA", help="labels.csv (path,label[,split]) or an ImageFolder.")
LabelColOpt = typer.Option(None, "--label-column", help="Label column of the labels table (default: label).")
PathColOpt = typer.Option(None, "--path-column", help="Image path column (default: path/image/file…).")


def _run(
    task: str,
    dataset: str,
    models: Optional[List[str]],
    evaluate: Callable,
    as_json: bool,
    out_dir: Optional[Path],
    extra: dict | None = None,
    check: Callable | None = None,
    rt: tuple = ("auto", "fp32", "auto"),
) -> None:
    """Validate the data (`check`), load every model, evaluate each, print / write one table."""
    from cliplab.eval.common import split_off_arrays
    from cliplab.eval.report import comparison_table, write_report

    check_out(out_dir)  # an unusable --out fails now, not after every model has run
    if check is not None:
        check()  # a bad file or column fails in a second, not after loading models
    specs = list(dict.fromkeys(models or ["lite"]))
    encoders = {s: load_model(s, *rt) for s in specs}  # fail on a bad spec before any long run
    results, arrays = {}, {}
    for spec, enc in encoders.items():
        if not as_json:
            err.print(f"{task}: evaluating {spec} …")
        results[spec], arrays[spec] = split_off_arrays(evaluate(enc, not as_json))
        _report_failures(spec, results[spec]["failed"])
    payload = {
        "task": task,
        "dataset": dataset,
        **(extra or {}),
        "runtime": {s: runtime_info(e) for s, e in encoders.items()},
        "results": results,
    }
    if out_dir is not None:
        written = write_report(out_dir, payload, arrays)
        err.print(f"wrote {len(written)} files to {out_dir}")
    if as_json:
        print_json(payload)
    else:
        cols, rows = comparison_table(task, results)
        if len(cols) > 8:  # wide tables (retrieval) read better with one column per model
            cols, rows = (
                ["metric", *[r[0] for r in rows]],
                [[c, *[r[i] for r in rows]] for i, c in enumerate(cols) if i],
            )
        ran = "; ".join(f"{s}: {runtime_text(e)}" for s, e in encoders.items())
        out.print(table(f"{task} on {dataset} ({ran})", cols, rows))


def _report_failures(spec: str, failed: list) -> None:
    for f in failed[:10]:
        err.print(f"  {spec}: skipped {f['path']}: {f['reason']}", markup=False)
    if len(failed) > 10:
        err.print(f"  {spec}: … and {len(failed) - 10} more (listed in the JSON)")


def _dataset(path) -> str:
    from cliplab.eval.common import dataset_name

    return dataset_name(path)


@eval_app.command("zeroshot")
@guarded
def zeroshot_cmd(
    data: Path = LabelledArg,
    models: Optional[List[str]] = ModelsOpt,
    runtime: str = RuntimeOpt,
    precision: str = PrecisionOpt,
    device: str = DeviceOpt,
    templates: Optional[str] = typer.Option(
        None, "--templates", "-t", help="single (default: 'a photo of a {}.'), clip80, none, or a file."
    ),
    classnames: Optional[Path] = typer.Option(
        None, "--classnames", help="Prompt names: CSV label,name; JSON {label: name}; or a list."
    ),
    label_column: Optional[str] = LabelColOpt,
    path_column: Optional[str] = PathColOpt,
    batch_size: Optional[int] = BatchOpt,
    out_dir: Optional[Path] = OutOpt,
    as_json: bool = JsonOpt,
):
    """Zero-shot top-1/top-5/mean per-class recall of each model on a labelled image set."""
    from cliplab.eval import evaluate_zeroshot
    from cliplab.eval.zeroshot import check_zeroshot_data
    from cliplab.zeroshot import load_templates

    tmpl = load_templates(templates)  # a bad template spec fails before any model loads
    _run(
        "zeroshot",
        _dataset(data),
        models,
        lambda enc, progress: evaluate_zeroshot(
            enc,
            str(data),
            templates=tmpl,
            classnames=str(classnames) if classnames else None,
            label_column=label_column,
            path_column=path_column,
            batch_size=batch_size,
            progress=progress,
        ),
        as_json,
        out_dir,
        {"templates": templates or "single"},
        rt=(runtime, precision, device),
        check=lambda: check_zeroshot_data(str(data), label_column, path_column),
    )


@eval_app.command("retrieval")
@guarded
def retrieval_cmd(
    pairs: Path = typer.Argument(..., metavar="PAIRS", help="Captions file (CSV/JSONL: path, caption[, split])."),
    split: Optional[str] = typer.Option(None, "--split", help="Only rows with this split (e.g. test)."),
    models: Optional[List[str]] = ModelsOpt,
    runtime: str = RuntimeOpt,
    precision: str = PrecisionOpt,
    device: str = DeviceOpt,
    caption_column: Optional[str] = typer.Option(None, "--caption-column", help="Default: caption/text/…"),
    path_column: Optional[str] = PathColOpt,
    max_images: Optional[int] = typer.Option(
        None, "--max-images", min=1, help="Only the first N images (and their captions)."
    ),
    batch_size: Optional[int] = BatchOpt,
    out_dir: Optional[Path] = OutOpt,
    as_json: bool = JsonOpt,
):
    """Text→image and image→text R@1/5/10, mAP and median rank of each model."""
    from cliplab.eval import evaluate_retrieval
    from cliplab.eval.retrieval import read_captions

    _run(
        "retrieval",
        _dataset(pairs),
        models,
        lambda enc, progress: evaluate_retrieval(
            enc,
            str(pairs),
            split=split,
            caption_column=caption_column,
            path_column=path_column,
            max_images=max_images,
            batch_size=batch_size,
            progress=progress,
        ),
        as_json,
        out_dir,
        {"split": split or "all"},
        rt=(runtime, precision, device),
        check=lambda: read_captions(str(pairs), split, caption_column, path_column, max_images),
    )


@eval_app.command("probe")
@guarded
def probe_cmd(
    data: Path = LabelledArg,
    shots: str = typer.Option("1,5,16,all", "--shots", help="Images per class for training, e.g. 1,5,16,all."),
    models: Optional[List[str]] = ModelsOpt,
    runtime: str = RuntimeOpt,
    precision: str = PrecisionOpt,
    device: str = DeviceOpt,
    draws: int = typer.Option(5, "--draws", min=1, help="Random k-shot draws averaged per k."),
    seed: int = typer.Option(0, "--seed"),
    test_size: float = typer.Option(
        0.5, "--test-size", min=0.01, max=0.99, help="Test fraction when there is no split column."
    ),
    c: float = typer.Option(10.0, "--C", min=1e-9, help="Inverse L2 penalty of the logistic regression (> 0)."),
    label_column: Optional[str] = LabelColOpt,
    path_column: Optional[str] = PathColOpt,
    batch_size: Optional[int] = BatchOpt,
    out_dir: Optional[Path] = OutOpt,
    as_json: bool = JsonOpt,
):
    """k-shot linear-probe (logistic regression) accuracy on frozen image embeddings."""
    from cliplab.eval import evaluate_probe
    from cliplab.eval.common import read_labelled
    from cliplab.eval.probe import parse_shots

    shot_list = parse_shots(shots)
    _run(
        "probe",
        _dataset(data),
        models,
        lambda enc, progress: evaluate_probe(
            enc,
            str(data),
            shots=shot_list,
            draws=draws,
            seed=seed,
            test_size=test_size,
            C=c,
            label_column=label_column,
            path_column=path_column,
            batch_size=batch_size,
            progress=progress,
        ),
        as_json,
        out_dir,
        {"shots": shot_list, "draws": draws, "seed": seed},
        rt=(runtime, precision, device),
        check=lambda: read_labelled(str(data), label_column, path_column),
    )


@eval_app.command("instance")
@guarded
def instance_cmd(
    images: Optional[Path] = typer.Argument(
        None, metavar="DATA", help="Image folder (with a Revisited --gt), or a labelled set: labels.csv / ImageFolder."
    ),
    gt: Optional[Path] = typer.Option(None, "--gt", help="Revisited Oxford/Paris gnd (.json/.pkl) or labels.csv."),
    models: Optional[List[str]] = ModelsOpt,
    runtime: str = RuntimeOpt,
    precision: str = PrecisionOpt,
    device: str = DeviceOpt,
    pooling: str = typer.Option(
        "none",
        "--pooling",
        help="none (model embedding) or gap (avg too)/mac/gem/rmac over the EfficientNet feature map.",
    ),
    protocols: Optional[List[str]] = typer.Option(None, "--protocol", help="easy/medium/hard (repeat; default all)."),
    no_crop: bool = typer.Option(False, "--no-crop", help="Do not crop queries to their bounding boxes."),
    whiten: bool = typer.Option(False, "--whiten", help="PCA-whiten descriptors (learned on the database)."),
    pca_dim: Optional[int] = typer.Option(None, "--pca", min=1, help="Reduce descriptors to this many PCA dimensions."),
    batch_size: Optional[int] = BatchOpt,
    out_dir: Optional[Path] = OutOpt,
    as_json: bool = JsonOpt,
):
    """Instance retrieval mAP (Revisited Oxford/Paris protocols, or same-label retrieval)."""
    from cliplab.errors import CliplabError
    from cliplab.eval import evaluate_instance
    from cliplab.eval.instance import PROTOCOLS, check_ground_truth

    if gt is None and images is None:
        raise CliplabError("give --gt GROUND_TRUTH (and the image folder DATA), or DATA: a labels.csv / class folders")
    pooling = pooling_option(pooling, none_ok=True)  # before any model loads
    source = gt if gt is not None else images
    if pooling.lower() != "none" and runtime == "auto":
        runtime = "torch"  # pooled feature maps come from inside the torch tower
    protos = protocols or list(PROTOCOLS)
    _run(
        "instance",
        _dataset(source),
        models,
        lambda enc, progress: evaluate_instance(
            enc,
            str(source),
            images=str(images) if gt and images else None,
            pooling=pooling,
            protocols=protos,
            crop_queries=not no_crop,
            whiten=whiten,
            pca_dim=pca_dim,
            batch_size=batch_size,
            progress=progress,
        ),
        as_json,
        out_dir,
        {"pooling": pooling},
        rt=(runtime, precision, device),
        check=lambda: check_ground_truth(str(source), str(images) if gt and images else None, protos),
    )
