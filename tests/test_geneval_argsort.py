"""GenEval's tie order: numpy 1.23's argsort reproduced, checked against orders recorded from numpy 1.23.5."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from mqeval.benchmarks.geneval import argsort as geneval_argsort
from mqeval.benchmarks.geneval.argsort import legacy_argsort, official_order

RECORDED = Path(__file__).parent / "data" / "geneval" / "numpy123_argsort.json"


def test_matches_orders_recorded_from_numpy_1_23(monkeypatch):
    data = json.loads(RECORDED.read_text())
    assert data["numpy"].startswith("1.23.")
    heapsorts = []
    original = geneval_argsort._heapsort
    monkeypatch.setattr(geneval_argsort, "_heapsort", lambda *a: (heapsorts.append(1), original(*a)))
    for case in data["cases"]:
        scores = np.asarray(case["scores"], dtype=np.float32)
        assert legacy_argsort(scores.tolist()) == case["argsort"], len(scores)
    assert heapsorts, "the recorded adversarial case should reach the heapsort fallback"


def test_ties_put_the_later_detection_first_up_to_16():
    assert official_order([0.5, 0.5]) == [1, 0]
    assert official_order([0.7, 0.5, 0.7, 0.5, 0.7]) == [4, 2, 0, 3, 1]
    assert official_order([0.5] * 16) == list(range(15, -1, -1))


def test_ties_beyond_16_follow_the_partitions_not_a_stable_sort():
    scores = [1.0, 1.0, 1.0, 2.0, 1.0, 1.0, 1.0, 1.0, 0.0, 2.0, 1.0, 0.0, 1.0, 0.0, 2.0, 2.0, 1.0]
    # numpy 1.23.5's np.argsort of this float32 array (17 elements: one partition step before insertion sort)
    assert legacy_argsort(scores) == [8, 13, 11, 12, 10, 7, 0, 5, 4, 2, 1, 6, 16, 15, 9, 3, 14]
    assert legacy_argsort(scores) != sorted(range(17), key=lambda i: scores[i])


def test_distinct_scores_sort_plainly():
    rng = np.random.default_rng(0)
    scores = rng.random(300).astype(np.float32).tolist()
    assert official_order(scores) == np.argsort(scores)[::-1].tolist()
