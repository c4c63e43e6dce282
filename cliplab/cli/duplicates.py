"""`cliplab duplicates`: groups of near-duplicate images of a collection, by the model's own rule
(cliplab/index/verify.py). Parse arguments, call cliplab.index, print."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from cliplab.cli.app import DeviceOpt, JsonOpt, PrecisionOpt, RuntimeOpt, app, err, fail, guarded, out, print_json
from cliplab.cli.index import GlobOpt, IndexOpt, ModelOpt, NoUpdateOpt, YesOpt, _implicit, _open, _update
from cliplab.cli.index_view import not_indexed
from cliplab.cli.output import FormatOpt, output_mode, print_groups


@app.command("duplicates")
@guarded
def duplicates_cmd(
    folder: Optional[Path] = typer.Argument(
        None, help="Image folder (default: the current one, or with --index the index's own folder)."
    ),
    threshold: Optional[float] = typer.Option(
        None,
        "--threshold",
        min=-1.0,
        max=1.0,
        help="The model's cosine that makes two images duplicates, alone (unless --verify). Default: the model's "
        "calibrated candidates, confirmed (see --verify); 0.95 for a model without calibration.",
    ),
    verify: Optional[bool] = typer.Option(
        None,
        "--verify/--no-verify",
        help="Confirm each candidate pair by an instance-level descriptor (GeM of EfficientNet-Lite0's last "
        "feature map). Default: on for models with calibrated thresholds (lite), off for others "
        "and with an explicit --threshold.",
    ),
    verify_threshold: Optional[float] = typer.Option(
        None,
        "--verify-threshold",
        min=-1.0,
        max=1.0,
        help="GeM cosine that confirms a pair (implies --verify; default: the model's calibrated one, else 0.78).",
    ),
    glob: Optional[str] = GlobOpt,
    index: Optional[Path] = IndexOpt,
    model: Optional[str] = ModelOpt,
    runtime: str = RuntimeOpt,
    precision: str = PrecisionOpt,
    device: str = DeviceOpt,
    no_update: bool = NoUpdateOpt,
    yes: bool = YesOpt,
    out_format: Optional[str] = FormatOpt,
    as_json: bool = JsonOpt,
):
    """Groups of near-duplicate images (indexing new/changed files first)."""
    from cliplab.index.verify import duplicate_rule

    mode = output_mode(out_format, as_json)
    if verify is False and verify_threshold is not None:
        fail("--verify-threshold confirms pairs: drop --no-verify")
    verify = verify_threshold if verify_threshold is not None else verify
    if no_update and not_indexed(folder, index, model) is not None:
        fail(f"{not_indexed(folder, index, model)} is not indexed: drop --no-update (or run `cliplab index`)")
    col = _open(folder, index, model, False, rt=(runtime, precision, device))
    with col:
        if not no_update:
            _update(col, progress=True, quiet=as_json, must=False, before=_implicit(col, yes, as_json))
        rule = duplicate_rule(col.model, threshold, verify)
        if rule.note and not as_json:
            err.print(rule.note, markup=False)
        groups = col.duplicates(threshold, glob=glob, verify=verify, progress=not as_json)
        if as_json:
            print_json({**col.describe(), **rule.as_dict(), "groups": [g.as_dict() for g in groups]})
            return
        (out if mode == "table" else err).print(f"duplicates: {rule.describe()}", markup=False)
        print_groups(mode, groups, rule.threshold)
