"""Bootstrap CIs and paired comparisons on cases with known answers."""
from __future__ import annotations

import math

import numpy as np
import pytest

from mqeval.reports.stats import PairingError, bootstrap_ci, check_pairable, paired_bootstrap, resampling_units


def mean_score(records):
    return {"overall": sum(r["score"] for r in records) / len(records)}


def records(scores, seeds=None, prompts=None):
    return [
        {"sample_id": f"s{i}", "prompt": (prompts or {}).get(i, f"p{i}"), "seeds": [seeds[i] if seeds else i],
         "score": s}
        for i, s in enumerate(scores)
    ]


def test_identical_runs_differ_by_exactly_zero_and_neither_wins():
    rng = np.random.default_rng(3)
    a = records(rng.random(40).tolist())
    out = paired_bootstrap(a, [dict(r) for r in a], mean_score, {"overall": True}, n_resamples=300)["overall"]
    assert out.difference.point == 0.0 and out.difference.low == 0.0 and out.difference.high == 0.0
    assert out.prob_a_better == 0.5  # every draw is a tie: one half, not 0 or 1
    assert not out.significant


@pytest.mark.parametrize("higher_is_better, expected_prob", [(True, 1.0), (False, 0.0)])
def test_constant_shift_gives_exactly_the_shift(higher_is_better, expected_prob):
    rng = np.random.default_rng(5)
    base = rng.random(37).tolist()
    shift = 0.125
    a, b = records([x + shift for x in base]), records(base)
    out = paired_bootstrap(a, b, mean_score, {"overall": higher_is_better}, n_resamples=400, seed=11)["overall"]
    assert out.difference.point == shift
    assert out.difference.low == shift and out.difference.high == shift
    assert out.prob_a_better == expected_prob
    assert out.significant and out.num_samples == 37


def test_all_equal_metric_has_a_zero_width_interval():
    ci = bootstrap_ci(records([0.75] * 25), mean_score, n_resamples=200)["overall"]
    assert ci.point == ci.low == ci.high == 0.75


def test_binary_accuracy_interval_matches_the_normal_approximation():
    n, p = 400, 0.3
    scores = [1.0] * int(n * p) + [0.0] * (n - int(n * p))
    ci = bootstrap_ci(records(scores), mean_score, n_resamples=2000, seed=1)["overall"]
    half_width = 1.96 * math.sqrt(p * (1 - p) / n)  # 0.0449
    assert ci.contains(p)
    assert (ci.high - ci.low) / 2 == pytest.approx(half_width, rel=0.15)


def test_bootstrap_is_seeded():
    rng = np.random.default_rng(0)
    recs = records(rng.random(30).tolist())
    first = bootstrap_ci(recs, mean_score, n_resamples=200, seed=7)["overall"]
    again = bootstrap_ci(recs, mean_score, n_resamples=200, seed=7)["overall"]
    other = bootstrap_ci(recs, mean_score, n_resamples=200, seed=8)["overall"]
    assert (first.low, first.high) == (again.low, again.high)
    assert (first.low, first.high) != (other.low, other.high)


def test_a_clear_winner_has_high_probability_and_an_interval_excluding_zero():
    rng = np.random.default_rng(2)
    b = rng.integers(0, 2, 200).astype(float)
    a = np.where(rng.random(200) < 0.3, 1.0, b)  # A fixes ~30% of B's failures, never breaks a success
    out = paired_bootstrap(records(a.tolist()), records(b.tolist()), mean_score, {"overall": True},
                           n_resamples=500)["overall"]
    assert out.difference.low > 0 and out.prob_a_better > 0.99


def test_pairing_refuses_different_prompts_seeds_or_samples():
    a = records([1.0, 0.0, 1.0])
    with pytest.raises(PairingError, match="different samples"):
        check_pairable(a, records([1.0, 0.0]))
    with pytest.raises(PairingError, match="different seeds"):
        check_pairable(a, records([1.0, 0.0, 1.0], seeds=[0, 1, 99]))
    with pytest.raises(PairingError, match="different prompt"):
        check_pairable(a, records([1.0, 0.0, 1.0], prompts={2: "another prompt"}))
    assert check_pairable(a, list(reversed(a))) == ["s0", "s1", "s2"]  # order does not matter, ids do


def test_paired_records_are_matched_by_sample_id_not_position():
    a = records([1.0, 0.0, 1.0, 0.0])
    out = paired_bootstrap(a, list(reversed([dict(r) for r in a])), mean_score, {"overall": True}, n_resamples=100)
    assert out["overall"].difference.low == out["overall"].difference.high == 0.0


def test_records_sharing_a_pair_are_resampled_together():
    recs = [{"sample_id": f"s{i}", "pair": i // 2, "side": 1 + i % 2, "score": float(i % 2)} for i in range(10)]
    assert resampling_units(recs) == [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]

    def balanced(rs):  # every resample must hold whole pairs: as many side-1 as side-2 records
        sides = [r["side"] for r in rs]
        assert sides.count(1) == sides.count(2)
        return mean_score(rs)

    ci = bootstrap_ci(recs, balanced, n_resamples=100)["overall"]
    assert ci.low == ci.high == 0.5


def test_a_metric_missing_from_some_resamples_is_skipped_not_fatal():
    recs = records([1.0] + [0.0] * 9)

    def rare(rs):
        hits = [r for r in rs if r["score"] == 1.0]
        return {"overall": len(hits) / len(rs), **({"rare": 1.0} if hits else {})}

    ci = bootstrap_ci(recs, rare, n_resamples=300)
    assert ci["rare"].low == ci["rare"].high == 1.0 and 0 < ci["rare"].n_resamples < 300
