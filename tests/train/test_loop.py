"""Training on a small real subset (60 Flickr8k train images, frozen towers, cached features)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from cliplab.models import load_encoder
from cliplab.models.trained.checkpoint import TrainedEncoder
from cliplab.train import TrainError, train
from cliplab.train.state import METRICS_FILE, PLOT_FILE, STATE_FILE

pytestmark = pytest.mark.slow


def test_short_run_learns(small_config, tmp_path):
    res = train(small_config(epochs=5), tmp_path / "run", progress=False)
    h = res.history
    assert [r["epoch"] for r in h] == list(range(6))
    assert h[-1]["train_loss"] < h[1]["train_loss"]  # training loss goes down
    assert min(r["val_loss"] for r in h[1:]) < h[0]["val_loss"]  # and so does validation loss
    assert res.best["t2i_R@5"] > h[0]["t2i_R@5"]  # validation recall beats epoch 0
    assert res.data["validation"]["images"] == 15 and res.data["train"]["images"] == 45

    out = res.out_dir
    for name in ("cliplab.json", "model.safetensors", METRICS_FILE, PLOT_FILE, STATE_FILE):
        assert (out / name).is_file(), name
    rows = [json.loads(line) for line in (out / METRICS_FILE).read_text().splitlines()]
    assert len(rows) == 6 and {"t2i_R@1", "i2t_R@10", "val_loss", "logit_scale"} <= set(rows[-1])
    assert (out / PLOT_FILE).read_bytes()[:4] == b"\x89PNG"
    assert not list(out.glob("*.tmp"))  # atomic writes leave no debris

    enc = load_encoder(str(out))
    assert isinstance(enc, TrainedEncoder) and enc.dim == 64
    cfg = json.loads((out / "cliplab.json").read_text())
    assert cfg["training"]["best_epoch"] == res.best_epoch
    assert enc.logit_scale == pytest.approx(cfg["logit_scale"]) and enc.logit_scale > 1


def _weights(out):
    return torch.load(out / STATE_FILE, weights_only=True)["model"]


def test_resume_continues_bit_for_bit(small_config, tmp_path):
    cfg = dict(epochs=4, dropout=0.2, augment=["flip"])  # dropout + views: RNG state must survive
    straight = train(small_config(**cfg), tmp_path / "a", progress=False)
    half = train(small_config(**cfg), tmp_path / "b", stop_after=2, progress=False)
    assert half.epoch == 2 and not half.finished
    resumed = train(None, tmp_path / "b", resume=True, progress=False)
    assert resumed.epoch == 4 and resumed.finished
    a, b = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k  # bit for bit, not just close
    for ra, rb in zip(straight.history, resumed.history):
        for k in ("train_loss", "val_loss", "t2i_R@5"):
            assert ra.get(k) == pytest.approx(rb.get(k), abs=1e-6)


def test_resume_extends_and_refuses_overwrite(small_config, tmp_path):
    train(small_config(epochs=2), tmp_path / "run", progress=False)
    with pytest.raises(TrainError, match="--resume"):
        train(small_config(epochs=2), tmp_path / "run", progress=False)
    more = train(None, tmp_path / "run", resume=True, epochs=3, progress=False)
    assert more.epoch == 3 and len(more.history) == 4
    with pytest.raises(TrainError, match="no train_state"):
        train(None, tmp_path / "nothing-here", resume=True, progress=False)


def test_early_stopping_keeps_best(small_config, tmp_path):
    res = train(small_config(epochs=30, patience=1, lr=0.05), tmp_path / "run", progress=False)
    assert res.stopped_early and res.epoch < 30
    scores = [r["score"] for r in res.history]
    assert res.best_epoch == 1 + int(np.argmax(scores[1:]))  # the best *trained* epoch (0 is the baseline)


def test_bad_rows_are_skipped_and_counted(small_config, flickr_pairs, tmp_path):
    import pandas as pd

    df = pd.read_csv(flickr_pairs)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg")
    bad = pd.DataFrame(
        {
            "path": [str(tmp_path / "missing.jpg")] * 2 + [df["path"][0]] * 2 + [str(broken)],
            "caption": ["a dog", "a cat", "", "   ", "a broken photo"],
        }
    )
    csv = tmp_path / "pairs.csv"
    pd.concat([df, bad]).to_csv(csv, index=False)
    res = train(small_config(pairs=[str(csv)], epochs=1), tmp_path / "run", progress=False)
    assert res.data["skipped"] == {"missing image": 2, "empty caption": 2, "unreadable image": 1}
    assert res.data["train"]["pairs"] + res.data["validation"]["pairs"] == len(df)


def test_validation_split_is_by_image(small_config):
    from cliplab.train.data import load_pairs

    data, val = load_pairs(small_config().validate())
    val_imgs = set(np.flatnonzero(val))
    train_pairs = [i for i in range(data.n_pairs) if data.pair_image[i] not in val_imgs]
    val_pairs = [i for i in range(data.n_pairs) if data.pair_image[i] in val_imgs]
    assert len(val_imgs) == 15 and len(val_pairs) == 75 and len(train_pairs) == 225
    assert not {data.pair_image[i] for i in train_pairs} & {data.pair_image[i] for i in val_pairs}


def test_labelled_images_become_prompt_pairs(imagenet_labels, small_config):
    csv = imagenet_labels(12)
    cfg = small_config(
        pairs=[],
        labels=[str(csv)],
        label_column="name",
        epochs=1,
        label_templates=["a photo of a {}.", "a drawing of a {}."],
    )
    from cliplab.train.data import load_pairs

    data, val = load_pairs(cfg.validate())
    assert data.n_pairs == 24 and len(data.images) == 12 and val.sum() == 3  # validated on labelled images
    assert "a drawing of a goldfish." in data.texts


def test_gradient_accumulation_counts_optimizer_steps(small_config, tmp_path):
    # 225 training pairs in batches of 32: 7 batches (a last batch of one has no negatives and is
    # dropped), so 3 optimizer steps per epoch with accum=3.
    res = train(small_config(epochs=2, batch_size=32, accum=3), tmp_path / "run", progress=False)
    state = torch.load(tmp_path / "run" / STATE_FILE, weights_only=True)
    assert state["scheduler"]["last_epoch"] == 2 * 3
    assert np.isfinite(res.history[-1]["train_loss"])


def test_epoch_batches_by_source_never_mix():
    from cliplab.train.loop import _epoch_batches

    pairs = np.arange(1000)
    groups = (np.arange(1000) % 3 == 0).astype(np.int64)  # 334 "captions" among 666 "prompts"
    counts, interleaved = set(), []
    for seed in range(3):
        batches = _epoch_batches(pairs, groups, 64, np.random.default_rng(seed))
        counts.add(len(batches))
        for b in batches:
            assert len(set(groups[b])) == 1, "a batch mixes sources"
        assert sorted(np.concatenate(batches)) == list(range(1000))  # every pair once per epoch
        seq = [int(groups[b[0]]) for b in batches]
        interleaved.append(seq != sorted(seq) and seq != sorted(seq, reverse=True))
    assert any(interleaved)  # the sources' batches are shuffled together, not run one after the other
    assert counts == {6 + 11}  # ceil(334/64) + ceil(666/64): the schedule can count steps in advance
    plain = _epoch_batches(pairs, None, 64, np.random.default_rng(0))
    assert len(plain) == 16 and any(len(set(groups[b])) == 2 for b in plain)


def test_batch_by_source_trains_and_resumes(imagenet_labels, small_config, tmp_path):
    csv = imagenet_labels(40)
    cfg = dict(labels=[str(csv)], label_column="name", batch_by_source=True, epochs=2, batch_size=32)
    a = train(small_config(**cfg), tmp_path / "a", progress=False)
    assert np.isfinite(a.history[-1]["train_loss"]) and a.data["train"]["pairs"] == 225 + 40
    train(small_config(**cfg), tmp_path / "b", stop_after=1, progress=False)
    train(None, tmp_path / "b", resume=True, progress=False)
    wa, wb = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    cfg_json = json.loads((tmp_path / "a" / "cliplab.json").read_text())
    assert cfg_json["training"]["config"]["batch_by_source"] is True
