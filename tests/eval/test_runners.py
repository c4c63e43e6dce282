"""Task runners on tiny synthetic data with a colour 'model' (no weights, a few seconds)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from cliplab.errors import CliplabError, DataError
from cliplab.eval import evaluate_instance, evaluate_probe, evaluate_retrieval, evaluate_zeroshot
from cliplab.eval.probe import parse_shots, sample_shots, train_test_indices
from cliplab.eval.zeroshot import load_classnames
from tests.eval.conftest import write_colour_images


def test_zeroshot_perfect_on_colours(colour_encoder, colour_data):
    r = evaluate_zeroshot(colour_encoder, colour_data)
    assert (r["top1"], r["top5"], r["mean_per_class_recall"], r["n"], r["n_failed"]) == (1.0, 1.0, 1.0, 12, 0)
    assert r["per_class_accuracy"] == {"blue": 1.0, "green": 1.0, "red": 1.0}
    assert r["arrays"]["confusion_matrix"].tolist() == [[4, 0, 0], [0, 4, 0], [0, 0, 4]]
    assert r["model"]["model"] == "colour" and r["templates"] == 1


def test_zeroshot_reports_missing_files_and_evaluates_the_rest(colour_encoder, colour_data, tmp_path):
    df = pd.read_csv(colour_data)
    bad = pd.DataFrame({"path": [str(tmp_path / "gone.jpg"), str(tmp_path / "gone2.jpg")], "label": ["red", "blue"]})
    pd.concat([df, bad]).to_csv(tmp_path / "with_missing.csv", index=False)
    r = evaluate_zeroshot(colour_encoder, tmp_path / "with_missing.csv")
    assert r["n"] == 12 and r["n_failed"] == 2 and r["top1"] == 1.0
    assert {f["path"] for f in r["failed"]} == set(bad["path"]) and r["failed"][0]["reason"] == "file not found"


def test_zeroshot_errors(colour_encoder, colour_data, tmp_path):
    pd.DataFrame({"path": [str(tmp_path / "x.jpg"), str(tmp_path / "y.jpg")], "label": ["red", "blue"]}).to_csv(
        tmp_path / "none.csv", index=False
    )
    with pytest.raises(DataError, match="none of the 2 images"):
        evaluate_zeroshot(colour_encoder, tmp_path / "none.csv")
    pd.DataFrame({"path": [str(tmp_path / "x.jpg")], "label": ["red"]}).to_csv(tmp_path / "one.csv", index=False)
    with pytest.raises(DataError, match="at least two classes"):  # one class: every guess right, not a score
        evaluate_zeroshot(colour_encoder, tmp_path / "one.csv")
    with pytest.raises(DataError, match="no column 'kind'"):
        evaluate_zeroshot(colour_encoder, colour_data, label_column="kind")
    (tmp_path / "empty.csv").write_text("path,label\n")
    with pytest.raises(DataError, match="no rows"):
        evaluate_zeroshot(colour_encoder, tmp_path / "empty.csv")


def test_classnames_formats(tmp_path):
    labels = ["b", "g", "r"]
    assert load_classnames(None, labels) == labels
    assert load_classnames({"b": "blue", "g": "green", "r": "red"}, labels) == ["blue", "green", "red"]
    (tmp_path / "m.csv").write_text("label,name\nr,red\ng,green\nb,blue\n")
    assert load_classnames(str(tmp_path / "m.csv"), labels) == ["blue", "green", "red"]
    # imagenet-samples style: the key is the label column in use (wnid), the prompt name is `name`
    (tmp_path / "i.csv").write_text("path,wnid,label,name\nx.jpg,b,bl,blue\ny.jpg,g,gr,green\nz.jpg,r,rd,red\n")
    assert load_classnames(str(tmp_path / "i.csv"), labels, label_column="wnid") == ["blue", "green", "red"]
    (tmp_path / "o.json").write_text(json.dumps({"classnames": ["blue", "green", "red"], "templates": []}))
    assert load_classnames(str(tmp_path / "o.json"), labels) == ["blue", "green", "red"]
    (tmp_path / "m.json").write_text(json.dumps({"r": "red", "g": "green", "b": "blue"}))
    assert load_classnames(str(tmp_path / "m.json"), labels) == ["blue", "green", "red"]
    (tmp_path / "n.txt").write_text("blue\ngreen\nred\n")
    assert load_classnames(str(tmp_path / "n.txt"), labels) == ["blue", "green", "red"]
    with pytest.raises(DataError, match="no name for label"):
        load_classnames({"b": "blue"}, labels)
    with pytest.raises(DataError, match="2 names for 3 classes"):
        load_classnames(["blue", "green"], labels)


def test_zeroshot_with_classnames_and_dataframe(colour_encoder, tmp_path):
    df = write_colour_images(tmp_path / "img", per_class=2)
    df["label"] = df["label"].str[0]  # r / g / b: the prompt names must come from the mapping
    r = evaluate_zeroshot(
        colour_encoder,
        df,
        classnames={"r": "red", "g": "green", "b": "blue"},
        templates=["a {} object", "something {}"],
    )
    assert r["top1"] == 1.0 and r["templates"] == 2 and set(r["per_class_accuracy"]) == {"r", "g", "b"}
    assert r["arrays"]["names"] == ["blue", "green", "red"]


def _pairs(tmp_path):
    folder = tmp_path / "pairs"
    df = write_colour_images(folder, per_class=1, jitter=0)
    rows = [(p, f"a {lab} square", "test") for p, lab in zip(df.path, df.label)]
    rows += [(p, f"something {lab}", "test") for p, lab in zip(df.path, df.label)]
    rows += [(str(folder / "missing.jpg"), "a red square", "test"), (str(folder / "missing.jpg"), "red", "test")]
    rows += [(df.path[0], "train caption", "train")]
    csv = tmp_path / "captions.csv"
    pd.DataFrame(rows, columns=["path", "caption", "split"]).to_csv(csv, index=False)
    return csv


def test_retrieval_drops_failed_images_and_their_captions(colour_encoder, tmp_path):
    r = evaluate_retrieval(colour_encoder, _pairs(tmp_path), split="test")
    assert (r["n_images"], r["n_texts"], r["n_failed"]) == (3, 6, 1)
    assert r["text_to_image"]["R@1"] == 1.0 and r["image_to_text"]["R@1"] == 1.0
    assert r["image_to_text"]["recall@1"] == 0.5 and r["image_to_text"]["mAP"] == 1.0
    assert r["arrays"]["first_rank"]["text_to_image"].tolist() == [1] * 6
    with pytest.raises(DataError, match="no rows with split"):
        evaluate_retrieval(colour_encoder, _pairs(tmp_path), split="val")
    assert evaluate_retrieval(colour_encoder, _pairs(tmp_path), split="test", max_images=2)["n_images"] == 2


def test_probe_split_and_shots(colour_encoder, colour_data, tmp_path):
    r = evaluate_probe(colour_encoder, colour_data, shots="1,all", draws=3)
    assert r["accuracy"] == {"1": 1.0, "all": 1.0} and r["split"].startswith("stratified 50%/50%")
    assert (r["n_train"], r["n_test"], r["n_classes"], r["draws"]) == (6, 6, 3, 3)
    df = pd.read_csv(colour_data)
    df["split"] = ["train", "test", "test", "test"] * 3
    df.to_csv(tmp_path / "split.csv", index=False)
    r = evaluate_probe(colour_encoder, tmp_path / "split.csv", shots=[2, "all"])
    assert (r["n_train"], r["n_test"], r["split"]) == (3, 9, "split column")
    assert r["accuracy"]["2"] == 1.0  # one image per class: 2-shot takes all there is


def test_probe_helpers():
    assert parse_shots("1, 5,16,ALL,5") == ["1", "5", "16", "all"]
    for bad in ("0", "x", ""):
        with pytest.raises(DataError):
            parse_shots(bad)
    y = np.array(list("aaaabbbbcc"))
    train, test, _ = train_test_indices(y, seed=3)
    assert len(train) == len(test) == 5 and set(y[train]) == set(y[test]) == {"a", "b", "c"}
    assert (train_test_indices(y, seed=3)[0] == train).all()
    picked = sample_shots(y, np.arange(10), 3, np.random.default_rng(0))
    assert sorted(y[picked].tolist()) == list("aaabbbcc")
    with pytest.raises(DataError, match="at least 2 images per class"):
        train_test_indices(np.array(list("aab")))


def _revisited(tmp_path):
    """db: 4 red, 4 green, 4 blue JPEGs named without extension in the gt; 1 query: red | blue halves."""
    folder = tmp_path / "jpg"
    df = write_colour_images(folder, per_class=4, jitter=10)
    names = []
    for p in df.path:
        jpg = p.replace(".png", ".jpg")
        Image.open(p).save(jpg)
        names.append(jpg.rsplit("/", 1)[1][:-4])
    q = Image.new("RGB", (20, 10), (220, 20, 20))
    q.paste((20, 20, 220), (10, 0, 20, 10))
    q.save(folder / "query.jpg")
    # red = db 0-3, green = 4-7, blue = 8-11
    gnd = [{"easy": [0, 1, 2], "hard": [3, 8], "junk": [4], "bbx": [0, 0, 10, 10]}]
    gt = tmp_path / "gnd_toy.json"
    gt.write_text(json.dumps({"imlist": names, "qimlist": ["query"], "gnd": gnd}))
    return gt


def test_instance_revisited_protocols_and_query_crop(colour_encoder, tmp_path):
    gt = _revisited(tmp_path)
    r = evaluate_instance(colour_encoder, gt)  # images found in the jpg/ folder beside the gt file
    p = r["protocols"]
    assert p["easy"]["mAP"] == 1.0 and p["easy"]["n_queries"] == 1
    # medium: positives 0-3 (red) and 8 (blue); blue ranks after the 4 green → 4 + ... < 1
    assert p["medium"]["mAP"] < 1.0 and p["medium"]["R@1"] == 1.0
    # hard: positives 3 (red, ranks first once easy red ones are ignored) and 8 (blue)
    assert p["hard"]["median_rank"] == 1.0 and p["hard"]["mAP"] < 1.0
    assert (r["n_queries"], r["n_db"]) == (1, 12)
    uncropped = evaluate_instance(colour_encoder, gt, crop_queries=False, protocols=["easy"])
    assert uncropped["protocols"]["easy"]["mAP"] < 1.0  # the purple whole image mixes red and blue
    # the official gnd files are pickles of the same dict
    import pickle

    pkl = tmp_path / "gnd_toy.pkl"
    pkl.write_bytes(pickle.dumps(json.loads(gt.read_text())))
    assert evaluate_instance(colour_encoder, pkl, images=tmp_path / "jpg")["protocols"] == p


def test_instance_labels_form_and_failures(colour_encoder, colour_data, tmp_path):
    r = evaluate_instance(colour_encoder, colour_data)
    assert list(r["protocols"]) == ["labels"] and r["protocols"]["labels"]["mAP"] == 1.0
    assert r["n_queries"] == 12
    df = pd.read_csv(colour_data)
    df.loc[0, "path"] = str(tmp_path / "missing.png")
    df.to_csv(tmp_path / "m.csv", index=False)
    r = evaluate_instance(colour_encoder, tmp_path / "m.csv", whiten=False, pca_dim=2)
    assert (r["n_queries"], r["n_db"], r["n_failed"]) == (11, 11, 1)
    with pytest.raises(CliplabError, match="EfficientNet"):
        evaluate_instance(colour_encoder, colour_data, pooling="gem")
    with pytest.raises(DataError, match="protocols"):
        evaluate_instance(colour_encoder, colour_data, protocols=["extreme"])


def test_instance_ground_truth_errors(colour_encoder, tmp_path):
    gt = tmp_path / "bad.json"
    gt.write_text(json.dumps({"imlist": ["a"], "qimlist": ["q"], "gnd": [{"easy": [3]}]}))
    with pytest.raises(DataError, match="out of range"):
        evaluate_instance(colour_encoder, gt)
    gt.write_text(json.dumps({"images": []}))
    with pytest.raises(DataError, match="imlist, qimlist and gnd"):
        evaluate_instance(colour_encoder, gt)


def test_instance_protocol_whose_positives_cannot_be_read(colour_encoder, tmp_path):
    """Positives listed but unreadable count as none: the error names the protocol and the others."""
    from cliplab.errors import EvalError

    gt = _revisited(tmp_path)
    names = json.loads(gt.read_text())["imlist"]
    for i in (3, 8):  # the two "hard" positives
        (tmp_path / "jpg" / f"{names[i]}.jpg").write_bytes(b"")
    with pytest.raises(EvalError, match=r"protocol 'hard'.*--protocol easy or --protocol medium"):
        evaluate_instance(colour_encoder, gt)
    assert evaluate_instance(colour_encoder, gt, protocols=["easy"])["protocols"]["easy"]["mAP"] == 1.0
