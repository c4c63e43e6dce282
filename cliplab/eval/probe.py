"""Linear probe: logistic regression on frozen image embeddings, k shots per class.

Split: a `split` column (train/test) in the labels table is used as is; otherwise a seeded,
stratified 50/50 split of the images (`test_size`, `seed`). k-shot training sets draw k images per
class from the train split (every image of a class with fewer than k), `draws` times with seeds
seed, seed+1, …; the accuracy is the mean over draws (`std` their spread). "all" = the whole
train split, fitted once. The test split is always evaluated in full.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from cliplab.errors import DataError
from cliplab.eval.common import dataset_name, embed_paths, read_labelled, resolve_encoder
from cliplab.models import Encoder

# Fixed, not tuned per dataset: of 0.1/1/10/100, 10 was best for 5, 16 and all shots on a CIFAR-10-dev
# subset (conse); unit-norm embeddings need a weak penalty.
DEFAULT_C = 10.0


def parse_shots(shots: str | Sequence) -> list[str]:
    """'1,5,16,all' or [1, 5, "all"] → ['1', '5', 'all'] (validated, order kept)."""
    items = shots.split(",") if isinstance(shots, str) else list(shots)
    out = []
    for s in (str(x).strip().lower() for x in items):
        if not s:
            continue
        if s != "all" and not (s.isdigit() and int(s) > 0):
            raise DataError(f"shots: {s!r} is neither a positive integer nor 'all'")
        out.append(s)
    if not out:
        raise DataError("shots: give at least one, e.g. 1,5,16,all")
    return list(dict.fromkeys(out))


def train_test_indices(
    labels: np.ndarray, split=None, test_size: float = 0.5, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, str]:
    """(train indices, test indices, how the split was made)."""
    if split is not None:
        split = np.asarray([str(s).strip().lower() for s in split])
        train, test = np.flatnonzero(split == "train"), np.flatnonzero(split == "test")
        if not len(train) or not len(test):
            raise DataError(f"split column needs 'train' and 'test' rows (found: {', '.join(sorted(set(split)))})")
        return train, test, "split column"
    from sklearn.model_selection import train_test_split

    _, counts = np.unique(labels, return_counts=True)
    if counts.min() < 2:
        raise DataError("a stratified split needs at least 2 images per class (add a split column instead)")
    idx = np.arange(len(labels))
    try:
        train, test = train_test_split(idx, test_size=test_size, stratify=labels, random_state=seed)
    except ValueError as e:
        raise DataError(f"cannot split the data: {e}") from None
    return np.sort(train), np.sort(test), f"stratified {1 - test_size:.0%}/{test_size:.0%}, seed {seed}"


def sample_shots(labels: np.ndarray, pool: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k indices per class from `pool` (all of a class with fewer than k)."""
    picked = []
    for c in np.unique(labels[pool]):
        members = pool[labels[pool] == c]
        picked.append(rng.choice(members, size=min(k, len(members)), replace=False))
    return np.sort(np.concatenate(picked))


def fit_and_score(x_train, y_train, x_test, y_test, C: float = DEFAULT_C, seed: int = 0) -> float:
    from sklearn.linear_model import LogisticRegression

    if len(np.unique(y_train)) < 2:
        raise DataError("a probe needs at least two classes in the training set")
    clf = LogisticRegression(C=C, max_iter=2000, random_state=seed)
    clf.fit(x_train, y_train)
    return float((clf.predict(x_test) == y_test).mean())


def probe_accuracies(
    vectors: np.ndarray,
    labels: np.ndarray,
    train: np.ndarray,
    test: np.ndarray,
    shots: Sequence[str],
    draws: int = 5,
    seed: int = 0,
    C: float = DEFAULT_C,
) -> dict:
    """{shot: (mean accuracy, std over draws)} for embeddings already computed."""
    out = {}
    for s in shots:
        if s == "all":
            acc = [fit_and_score(vectors[train], labels[train], vectors[test], labels[test], C, seed)]
        else:
            acc = []
            for d in range(draws):
                tr = sample_shots(labels, train, int(s), np.random.default_rng(seed + d))
                acc.append(fit_and_score(vectors[tr], labels[tr], vectors[test], labels[test], C, seed))
        out[s] = (float(np.mean(acc)), float(np.std(acc)))
    return out


def evaluate_probe(
    encoder: Encoder | str,
    data,
    shots: str | Sequence = ("1", "5", "16", "all"),
    draws: int = 5,
    seed: int = 0,
    test_size: float = 0.5,
    C: float = DEFAULT_C,
    label_column: str | None = None,
    path_column: str | None = None,
    batch_size: int | None = None,
    progress: bool = False,
) -> dict:
    """k-shot linear-probe accuracy of one model's image embeddings on a labelled image set.

    Returns {"accuracy": {"1": …, "all": …}, "std": {…}, n_train, n_test, n_classes, split, …}.
    Images that cannot be read are dropped before the split and listed under `failed`.
    """
    enc = resolve_encoder(encoder)
    shots = parse_shots(shots)
    df = read_labelled(data, label_column, path_column)
    split = df["split"] if "split" in df.columns else None
    vectors, ok, failed = embed_paths(enc, df["path"].tolist(), batch_size, progress)
    labels = df["label"].to_numpy()[ok]
    train, test, how = train_test_indices(labels, None if split is None else split.to_numpy()[ok], test_size, seed)
    res = probe_accuracies(vectors, labels, train, test, shots, draws, seed, C)
    return {
        "accuracy": {s: a for s, (a, _) in res.items()},
        "std": {s: sd for s, (_, sd) in res.items()},
        "n_train": int(len(train)),
        "n_test": int(len(test)),
        "n_classes": int(len(np.unique(labels))),
        "split": how,
        "draws": int(draws),
        "C": float(C),
        "n_failed": len(failed),
        "dataset": dataset_name(data),
        "model": enc.describe(),
        "failed": failed,
    }
