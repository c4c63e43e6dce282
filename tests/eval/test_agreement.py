"""Agreement between two rankings: overlap@k and rank correlation over the union (hand-checked)."""

from __future__ import annotations

import pytest

from cliplab.errors import EvalError
from cliplab.eval.agreement import agreement, overlap_at_k, rank_correlation, union_ranks


def test_identical_lists_agree_fully():
    a = ["x", "y", "z", "w"]
    assert overlap_at_k(a, list(a)) == 1.0
    corr = rank_correlation(a, list(a))
    assert corr == {"spearman": pytest.approx(1.0), "kendall": pytest.approx(1.0), "union": 4}


def test_disjoint_lists_share_nothing_and_correlate_negatively():
    a, b = ["a", "b", "c"], ["x", "y", "z"]
    assert overlap_at_k(a, b) == 0.0
    union, ra, rb = union_ranks(a, b, 3)
    assert union == ["a", "b", "c", "x", "y", "z"]
    assert ra == [1, 2, 3, 4, 4, 4] and rb == [4, 4, 4, 1, 2, 3]  # a missing item ranks k + 1
    corr = rank_correlation(a, b)
    assert corr["spearman"] < 0 and corr["kendall"] < 0 and corr["union"] == 6


def test_one_swap_is_known():
    a, b = ["x", "y", "z"], ["y", "x", "z"]
    corr = rank_correlation(a, b)
    # ρ = 1 − 6·Σd² / (n(n² − 1)) = 1 − 6·2 / 24; τ = (concordant − discordant) / pairs = (2 − 1) / 3
    assert corr["spearman"] == pytest.approx(0.5) and corr["kendall"] == pytest.approx(1 / 3)
    assert overlap_at_k(a, b) == 1.0


def test_overlap_counts_against_the_asked_k():
    assert overlap_at_k(["a", "b"], ["b", "c"], k=4) == 0.25  # 1 shared of the 4 asked for
    assert overlap_at_k(["a", "b", "c"], ["c", "b", "a"], k=2) == 0.5  # only the top 2 count
    assert overlap_at_k([], []) is None


def test_undefined_correlation_is_none():
    assert rank_correlation(["a"], ["a"]) == {"spearman": None, "kendall": None, "union": 1}
    assert rank_correlation([], [])["union"] == 0


def test_agreement_keys_pairs_in_order():
    got = agreement({"lite": ["a", "b", "c"], "conse": ["b", "a", "c"], "pre": ["x", "y", "z"]}, k=3)
    assert list(got["overlap"]) == ["lite|conse", "lite|pre", "conse|pre"]
    assert got["overlap"]["lite|conse"] == 1.0 and got["overlap"]["lite|pre"] == 0.0
    assert got["spearman"]["lite|conse"] == 0.5 and got["kendall"]["lite|conse"] == 0.3333
    assert got["union"] == 6 and got["mean_overlap"] == 0.3333


def test_one_model_has_no_pairs():
    got = agreement({"lite": ["a", "b"]})
    assert got == {"union": 2, "overlap": {}, "spearman": {}, "kendall": {}, "mean_overlap": None}


def test_a_ranking_with_a_repeat_is_refused():
    with pytest.raises(EvalError, match="twice"):
        overlap_at_k(["a", "a"], ["a"])
