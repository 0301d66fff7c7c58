"""GenEval's rules on hand-computed cases (thresholds, the 16 cap, position arithmetic, colour, exclude, summary)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from mqeval.benchmarks.geneval.rules import (
    Detection,
    GenEvalThresholds,
    aggregate_geneval,
    evaluate_image,
    relative_position,
    select_detections,
)


def box_at(cx: float, cy: float, w: float = 20, h: float = 20) -> tuple[float, float, float, float]:
    return (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)


def det(label: str, score: float = 0.99, box=(0, 0, 10, 10), color: str | None = None) -> Detection:
    return Detection(label, score, tuple(float(v) for v in box), None, color)


SINGLE = {"tag": "single_object", "include": [{"class": "cup", "count": 1}], "prompt": "a photo of a cup"}
COUNT2 = {
    "tag": "counting",
    "include": [{"class": "cup", "count": 2}],
    "exclude": [{"class": "cup", "count": 3}],
    "prompt": "a photo of two cups",
}


def test_score_threshold_is_strict_and_counting_uses_0_9():
    assert not evaluate_image(SINGLE, [det("cup", 0.3)]).correct
    assert evaluate_image(SINGLE, [det("cup", 0.3001)]).correct
    # Counting prompts need two detections above 0.9: one at 0.85 does not count.
    judgement = evaluate_image(COUNT2, [det("cup", 0.95), det("cup", 0.85)])
    assert not judgement.correct and judgement.failure_kind == "missing"
    assert judgement.failed_clause == {"class": "cup", "count": 2}
    assert evaluate_image(COUNT2, [det("cup", 0.95), det("cup", 0.91)]).correct
    # ... and a third one below 0.9 is not counted by the exclude clause either.
    assert evaluate_image(COUNT2, [det("cup", 0.95), det("cup", 0.91), det("cup", 0.89)]).correct


def test_thresholds_compare_in_float32():
    # Officially mmdet's float32 scores meet a threshold numpy casts to float32: float32(0.3) is not above 0.3,
    # although as a float64 it is (0.30000001192...).
    at_03, at_09 = float(np.float32(0.3)), float(np.float32(0.9))
    assert at_03 > 0.3
    assert not evaluate_image(SINGLE, [det("cup", at_03)]).correct
    assert evaluate_image(SINGLE, [det("cup", float(np.nextafter(np.float32(0.3), np.float32(1))))]).correct
    # A float64 score that rounds to float32(0.3) is judged as the float32 mmdet would have output.
    assert not evaluate_image(SINGLE, [det("cup", 0.3000000105)]).correct
    assert not evaluate_image(COUNT2, [det("cup", 0.95), det("cup", at_09)]).correct
    assert not evaluate_image(COUNT2, [det("cup", 0.95), det("cup", 0.900000005)]).correct  # float32: 0.8999999762
    assert evaluate_image(COUNT2, [det("cup", 0.95), det("cup", float(np.nextafter(np.float32(0.9), np.float32(1))))
                                   ]).correct
    # ... and the exclude clause counts only detections above the float32 threshold.
    assert evaluate_image(COUNT2, [det("cup", 0.95), det("cup", 0.95), det("cup", at_09)]).correct


def test_tied_scores_put_the_later_detection_first():
    meta = {"tag": "colors", "include": [{"class": "cup", "count": 1, "color": "red"}], "prompt": ""}
    red_first = [det("cup", 0.8, color="red"), det("cup", 0.8, color="blue")]
    assert [d.color for d in select_detections(red_first, "colors")["cup"]] == ["blue", "red"]
    judgement = evaluate_image(meta, red_first)  # the official code colour-checks the blue (later) cup
    assert not judgement.correct and judgement.failure_kind == "color"
    assert evaluate_image(meta, red_first[::-1]).correct
    # A tie with a below-threshold detection between them keeps the same rule (order is computed before the cut).
    mixed = [det("cup", 0.8, color="red"), det("cup", 0.1, color="red"), det("cup", 0.8, color="blue")]
    assert [d.color for d in select_detections(mixed, "colors")["cup"]] == ["blue", "red"]


def test_float64_detectors_keep_their_scores_and_order():
    # The shapes benchmark's analytic detector: float64 scores, ties in the detector's order, float64 threshold.
    own = GenEvalThresholds(float32_scores=False)
    red_first = [det("cup", 0.8, color="red"), det("cup", 0.8, color="blue")]
    assert [d.color for d in select_detections(red_first, "colors", own)["cup"]] == ["red", "blue"]
    close = [det("cup", 0.8000000001, color="red"), det("cup", 0.8, color="blue")]  # one float32, two float64s
    assert [d.color for d in select_detections(close, "colors", own)["cup"]] == ["red", "blue"]
    assert [d.color for d in select_detections(close, "colors")["cup"]] == ["blue", "red"]
    assert evaluate_image(SINGLE, [det("cup", float(np.float32(0.3)))], thresholds=own).correct


def test_tie_order_uses_every_detection_of_the_class_before_the_threshold():
    # 17 detections: numpy 1.23 partitions once, and the order of the tied 0.5s depends on the low scores too.
    scores = [0.5, 0.5, 0.5, 0.75, 0.5, 0.5, 0.5, 0.5, 0.25, 0.75, 0.5, 0.25, 0.5, 0.25, 0.75, 0.75, 0.5]
    dets = [Detection("cup", s, (0.0, 0.0, 1.0, 1.0), None, str(i)) for i, s in enumerate(scores)]
    kept = select_detections(dets, "single_object")["cup"]
    # numpy 1.23.5: np.argsort(float32 scores)[::-1], then the 0.25s dropped
    assert [int(d.color) for d in kept] == [14, 3, 9, 15, 16, 6, 1, 2, 4, 5, 0, 7, 10, 12]


def official_relations(box_a, box_b, margin=0.1):
    """The official relative_position's numpy expression, on float32 boxes (a reference for the sweep below)."""
    boxes = np.array([box_a, box_b], dtype=np.float32).reshape(2, 2, 2)
    center_a, center_b = boxes.mean(axis=-2)
    dim_a, dim_b = np.abs(np.diff(boxes, axis=-2))[..., 0, :]
    offset = center_a - center_b
    shrunk = np.maximum(np.abs(offset) - np.float32(margin) * (dim_a + dim_b), 0) * np.sign(offset)
    if np.all(np.abs(shrunk) < np.float32(1e-3)):
        return set()
    dx, dy = shrunk / np.sqrt(offset[0] * offset[0] + offset[1] * offset[1])
    return {name for name, hit in (("left of", dx < -0.5), ("right of", dx > 0.5), ("above", dy < -0.5),
                                   ("below", dy > 0.5)) if hit}


def test_position_arithmetic_is_float32():
    # |offset| = 0.2 x summed widths puts dx at 0.5 to within rounding: float32 and float64 disagree here.
    assert relative_position((100.4, 0.0, 120.4, 10.0), (0.0, 0.0, 152.0, 10.0)) == set()  # float64: right of
    assert relative_position((34.599999999999994, 0.0, 194.6, 10.0), (0.0, 0.0, 118.0, 10.0)) == {"right of"}
    # an exact boundary: offset 2, widths 5 + 5 -> dx = (2 - 1) / 2 = 0.5, not above 0.5
    assert relative_position((3.5, 0.0, 8.5, 5.0), (1.5, 0.0, 6.5, 5.0)) == set()
    assert relative_position((3.5, 0.0, 8.5, 5.0), (1.5, 0.0, 6.5, 5.0), margin=0.0999) == {"right of"}
    # a sweep of near-boundary boxes against the official expression
    rng = np.random.default_rng(0)
    for _ in range(2000):
        wa, wb = (float(v) for v in rng.integers(2, 200, 2))
        ox = (0.2 + float(rng.integers(-2, 3)) * 1e-7) * (wa + wb)
        a, b = (wb / 2 + ox - wa / 2, 0.0, wb / 2 + ox + wa / 2, 10.0), (0.0, 0.0, wb, 10.0)
        assert relative_position(a, b) == official_relations(a, b), (a, b)


def test_exclude_fails_at_count():
    judgement = evaluate_image(COUNT2, [det("cup", 0.95)] * 3)
    assert not judgement.correct
    assert judgement.failure_kind == "excluded" and judgement.failed_clause == {"class": "cup", "count": 3}
    assert "fewer than 3 cup, found 3" in judgement.reason


def test_at_most_16_objects_per_class_are_kept():
    many = [det("cup", 0.5 + i / 100) for i in range(20)]
    kept = select_detections(many, "single_object")["cup"]
    assert len(kept) == 16 and kept[0].score == pytest.approx(0.69) and kept[-1].score == pytest.approx(0.54)
    meta = {"tag": "counting", "include": [{"class": "cup", "count": 1}], "exclude": [{"class": "cup", "count": 17}]}
    assert evaluate_image(meta, [det("cup", 0.95)] * 20).correct  # 20 found, 16 kept: 16 < 17
    meta["exclude"][0]["count"] = 16
    assert not evaluate_image(meta, [det("cup", 0.95)] * 20).correct
    assert evaluate_image(meta, [det("cup", 0.95)] * 20, thresholds=GenEvalThresholds(max_objects=15)).correct


def test_relative_position_margin_arithmetic():
    # Centres 40 px apart horizontally, sizes 20 + 20: offset -40 shrinks by 0.1 * 40 = 4 -> dx = -36 / 40 = -0.9.
    assert relative_position(box_at(10, 50), box_at(50, 50)) == {"left of"}
    assert relative_position(box_at(50, 50), box_at(10, 50)) == {"right of"}
    assert relative_position(box_at(50, 10), box_at(50, 50)) == {"above"}
    assert relative_position(box_at(50, 90), box_at(50, 50)) == {"below"}
    # Offset 20 with sizes 100 + 100: the margin 0.1 * 200 = 20 eats it all -> no relation.
    assert relative_position(box_at(30, 50, 100, 100), box_at(50, 50, 100, 100)) == set()
    # Offset (-30, -40), sizes 10 + 10: shrunk (-28, -38) / 50 = (-0.56, -0.76) -> left of and above.
    assert relative_position(box_at(20, 10, 10, 10), box_at(50, 50, 10, 10)) == {"left of", "above"}
    # Offset (-20, -40): shrunk (-18, -38) / sqrt(2000) = (-0.40, -0.85) -> above only.
    dx = -18 / math.sqrt(2000)
    assert dx > -0.5
    assert relative_position(box_at(30, 10, 10, 10), box_at(50, 50, 10, 10)) == {"above"}
    # A larger margin turns the diagonal case into "above" only: (-30 + 6, -40 + 6) / 50 = (-0.48, -0.68).
    assert relative_position(box_at(20, 10, 10, 10), box_at(50, 50, 10, 10), margin=0.3) == {"above"}


POSITION = {
    "tag": "position",
    "include": [{"class": "cup", "count": 1}, {"class": "dog", "count": 1, "position": ["left of", 0]}],
    "prompt": "a photo of a dog left of a cup",
}


def test_position_clause():
    cup, dog_left, dog_right = (det("cup", box=box_at(60, 50)), det("dog", box=box_at(10, 50)),
                                det("dog", box=box_at(99, 50)))
    assert evaluate_image(POSITION, [cup, dog_left]).correct
    judgement = evaluate_image(POSITION, [cup, dog_right])
    assert not judgement.correct and judgement.failure_kind == "position"
    assert judgement.failed_clause == POSITION["include"][1]
    assert "found right of target" in judgement.reason
    # Only the most confident dog is judged: a better-scored dog on the wrong side fails the image.
    assert not evaluate_image(POSITION, [cup, det("dog", 0.99, box_at(99, 50)),
                                         det("dog", 0.5, box_at(10, 50))]).correct
    # Without a cup, the dog has no target: both clauses fail, the first failure is the missing cup.
    judgement = evaluate_image(POSITION, [dog_left])
    assert judgement.failure_kind == "missing" and judgement.failed_clause == POSITION["include"][0]
    assert "no satisfied target" in judgement.reason


def test_position_holds_against_every_target_object():
    meta = {
        "tag": "position",
        "include": [{"class": "cup", "count": 2}, {"class": "dog", "count": 1, "position": ["left of", 0]}],
        "prompt": "",
    }
    dog = det("dog", box=box_at(10, 50))
    assert evaluate_image(meta, [dog, det("cup", box=box_at(60, 50)), det("cup", box=box_at(90, 50))]).correct
    assert not evaluate_image(meta, [dog, det("cup", box=box_at(60, 50)), det("cup", box=box_at(5, 90))]).correct


def test_color_uses_top_count_detections_and_the_classifier():
    meta = {"tag": "colors", "include": [{"class": "cup", "count": 2, "color": "red"}], "prompt": ""}
    red_red = [det("cup", 0.9, color="red"), det("cup", 0.8, color="red"), det("cup", 0.7, color="blue")]
    assert evaluate_image(meta, red_red).correct
    red_blue = [det("cup", 0.9, color="red"), det("cup", 0.8, color="blue"), det("cup", 0.7, color="red")]
    judgement = evaluate_image(meta, red_blue)
    assert not judgement.correct and judgement.failure_kind == "color"
    assert "found 1 (1 blue, 1 red)" in judgement.reason

    calls = []

    def classifier(image, detections, classname):
        calls.append((image, len(detections), classname))
        return ["red"] * len(detections)

    assert evaluate_image(meta, red_blue, color_classifier=classifier, image="IMG").correct
    assert calls == [("IMG", 2, "cup")]


def test_default_classifier_needs_colours():
    meta = {"tag": "colors", "include": [{"class": "cup", "count": 1, "color": "red"}], "prompt": ""}
    with pytest.raises(ValueError, match="carry no colour"):
        evaluate_image(meta, [det("cup")])


def test_position_is_not_checked_after_a_colour_failure():
    meta = {
        "tag": "position",
        "include": [
            {"class": "cup", "count": 1},
            {"class": "dog", "count": 1, "color": "red", "position": ["left of", 0]},
        ],
        "prompt": "",
    }
    judgement = evaluate_image(meta, [det("cup", box=box_at(60, 50)), det("dog", box=box_at(99, 50), color="blue")])
    assert judgement.failure_kind == "color" and judgement.reason.count("\n") == 0


def test_aggregate_is_the_unweighted_mean_of_task_means():
    records = (
        [{"tag": "counting", "correct": c} for c in (True, False, False, False)]  # 0.25
        + [{"tag": "single_object", "correct": True}] * 2  # 1.0
        + [{"tag": "position", "correct": c} for c in (True, False)]  # 0.5
    )
    metrics = aggregate_geneval(records)
    assert list(metrics) == ["single_object", "counting", "position", "overall"]
    assert metrics["counting"] == 0.25 and metrics["position"] == 0.5
    assert metrics["overall"] == pytest.approx((0.25 + 1.0 + 0.5) / 3)
    assert aggregate_geneval([]) == {}
