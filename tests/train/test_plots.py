"""Training curves: three panels with a validation split, the loss alone without one."""

from __future__ import annotations

from PIL import Image

from cliplab.train.plots import plot_metrics


def test_plot_without_validation_is_the_loss_alone(tmp_path):
    base = [{"epoch": 0}, {"epoch": 1, "train_loss": 3.0}, {"epoch": 2, "train_loss": 2.0}]
    validated = [{**h, "t2i_R@1": 0.1 * h["epoch"], "i2t_R@1": 0.1, "val_loss": 3.5} for h in base]
    a = plot_metrics(base, tmp_path / "a.png")
    b = plot_metrics(validated, tmp_path / "b.png")
    wa, wb = Image.open(a).size[0], Image.open(b).size[0]
    assert wa < wb / 2  # one panel instead of three empty-or-not recall panels
