"""How the shipped `duplicates` rule behaves as groups a user sees (issue 26 §3): on the generated set
of duplicates_bench.py (N shared photos × 6: the original and five copies), two halves by source
photo, `lite`'s cosine proposes candidates (≥ 0.627) and GeM of EfficientNet-Lite0 confirms them at
several thresholds. Per threshold and half: distinct pairs confirmed (false edges), copies that land
in their original's group (by kind), and pair precision / recall over the groups (two images in one
group are a predicted pair, so one false edge can merge two photos' groups).

    python benchmarks/duplicates_groups.py [--sources 100]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, require_shared  # noqa: E402
from duplicates_bench import generated_set  # noqa: E402

from cliplab.models import load_encoder  # noqa: E402
from cliplab.models.backends.pretrained import efficientnet  # noqa: E402
from cliplab.models.features.feature_maps import cnn_feature_map  # noqa: E402
from cliplab.models.features.pooling import gem  # noqa: E402

CANDIDATE = 0.627  # lite's calibrated candidate threshold (cliplab/models/weights/lite/duplicates.json)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sources", type=int, default=100)
    a = ap.parse_args()
    images, source, kinds = generated_set(require_shared(), a.sources)
    kinds = np.array(kinds)
    e = load_encoder("lite").encode_images(images)
    net = efficientnet("lite0")
    g = np.concatenate(
        [
            gem(cnn_feature_map(net.net, np.stack([net.preprocess(i) for i in images[s : s + 16]]), "head")).numpy()
            for s in range(0, len(images), 16)
        ]
    )
    g /= np.linalg.norm(g, axis=1, keepdims=True)
    cos, geo = e @ e.T, g @ g.T
    same = source[:, None] == source[None, :]
    print(f"# duplicates as groups, lite + GeM, {a.sources} photos x 6 ({machine()})\n")
    print("| GeM ≥ | half | false edges | copies in their original's group | pair precision | pair recall |")
    print("|---|---|---|---|---|---|")
    for t in (0.68, 0.72, 0.75, 0.78, 0.82):
        for half in (0, 1):
            idx = np.flatnonzero(source % 2 == half)
            sm = same[np.ix_(idx, idx)]
            edge = (cos[np.ix_(idx, idx)] >= CANDIDATE) & (geo[np.ix_(idx, idx)] >= t)
            np.fill_diagonal(edge, False)
            _, lab = connected_components(coo_matrix(edge), directed=False)
            src, k = source[idx], kinds[idx]
            orig = {int(src[i]): lab[i] for i in range(len(idx)) if k[i] == "original"}
            joined = {
                kind: np.mean([lab[i] == orig[int(src[i])] for i in range(len(idx)) if k[i] == kind])
                for kind in sorted(set(k) - {"original"})
            }
            copies = np.mean([lab[i] == orig[int(src[i])] for i in range(len(idx)) if k[i] != "original"])
            pred = lab[:, None] == lab[None, :]
            iu = np.triu_indices(len(idx), 1)
            tp = int((pred & sm)[iu].sum())
            prec, rec = tp / max(int(pred[iu].sum()), 1), tp / max(int(sm[iu].sum()), 1)
            kinds_txt = ", ".join(f"{kind} {v:.2f}" for kind, v in joined.items())
            false = int((edge & ~sm).sum() // 2)
            print(f"| {t} | {half} | {false} | {copies:.3f} ({kinds_txt}) | {prec:.3f} | {rec:.3f} |")


if __name__ == "__main__":
    main()
