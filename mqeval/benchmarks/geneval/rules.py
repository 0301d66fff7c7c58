"""GenEval's correctness rules over detections, independent of the detector that produced them.

Follows djghosh13/geneval @ af4902f (`evaluation/evaluate_images.py`, `evaluation/summary_scores.py`):
- keep detections with score strictly above 0.3 (0.9 when the prompt's tag is "counting"), at most 16 per class,
  highest score first, no NMS; in float32 and in the official tie order (see select_detections);
- include clauses (AND): the top-`count` detections of the class must exist; with a colour, at least `count` of them
  must be classified as that colour; with a position, each of them must hold the relation to every object that
  satisfied the referenced include clause (a referenced clause that failed makes the position clause fail);
- exclude clauses (OR): `count` or more kept detections of the class fail the image;
- score: per task, the mean correctness over images; overall, the unweighted mean of the task means.

The same code judges the analytic shapes detector and a learned COCO detector; only the detections and the colour
classifier differ.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Optional, Sequence

import numpy as np

from mqeval.benchmarks.geneval.argsort import official_order
from mqeval.contract.detection import Detection

TASKS = ("single_object", "two_object", "counting", "colors", "position", "color_attr")
RELATIONS = ("left of", "right of", "above", "below")


@dataclass(frozen=True)
class GenEvalThresholds:
    score: float = 0.3
    counting_score: float = 0.9
    max_objects: int = 16
    position_margin: float = 0.1
    # True: GenEval's scores are mmdet's float32 rows, ordered by numpy 1.23's argsort (official). False: a detector
    # with float64 scores of its own (the shapes benchmark's analytic one) keeps them: float64 comparison, best
    # first, ties in the detector's order (the rules its recorded scores were made with).
    float32_scores: bool = True


@dataclass(frozen=True)
class ImageJudgement:
    correct: bool
    reason: str  # empty when correct; one line per failed clause otherwise
    failed_clause: Optional[dict[str, Any]]  # the first clause that failed (a copy of the metadata clause)
    failure_kind: Optional[str] = None  # "missing" | "color" | "position" | "excluded" for failed_clause


# A colour classifier gets the image (None when the caller has no image), the detections kept for one include
# clause (best first) and that clause's class name; it returns one colour name per detection. GenEval's is CLIP
# zero-shot on the masked crop; the shapes benchmark reads the colour its analytic detector measured.
ColorClassifier = Callable[[Any, Sequence[Detection], str], list[str]]


def colors_from_detections(image: Any, detections: Sequence[Detection], classname: str) -> list[str]:
    """The default classifier: the colour each detection already carries."""
    missing = [d for d in detections if d.color is None]
    if missing:
        raise ValueError(
            f"{len(missing)} '{classname}' detection(s) carry no colour; pass a color_classifier to evaluate_image"
        )
    return [d.color for d in detections]  # type: ignore[misc]


def select_detections(
    detections: Iterable[Detection], tag: str, thresholds: GenEvalThresholds = GenEvalThresholds()
) -> dict[str, list[Detection]]:
    """Per class: detections above the task's score threshold, best first, at most `max_objects`.

    As the official code: scores and threshold compared in float32 (mmdet's arrays are float32 and numpy casts the
    Python threshold to the array's type, so float32(0.3) itself is not above 0.3); each class's detections, in the
    detector's order, ordered by `np.argsort(scores)[::-1]` under numpy 1.23 (argsort.py: later detection first
    among ties), then thresholded, then cut. With `thresholds.float32_scores` False: float64 scores, best first,
    ties in the detector's order.
    """
    cutoff = thresholds.counting_score if tag == "counting" else thresholds.score
    by_class: dict[str, list[Detection]] = {}
    for det in detections:
        by_class.setdefault(det.label, []).append(det)
    kept: dict[str, list[Detection]] = {}
    for label, dets in by_class.items():
        if thresholds.float32_scores:
            scores, cut = [np.float32(d.score) for d in dets], np.float32(cutoff)
            ranked = official_order(scores)
        else:
            scores, cut = [float(d.score) for d in dets], float(cutoff)
            ranked = sorted(range(len(dets)), key=lambda i: -scores[i])
        order = [i for i in ranked if scores[i] > cut][: thresholds.max_objects]
        if order:
            kept[label] = [dets[i] for i in order]
    return kept


def relative_position(
    box_a: Sequence[float], box_b: Sequence[float], margin: float = GenEvalThresholds.position_margin
) -> set[str]:
    """Relations of box A relative to box B (GenEval's rule: centre offset shrunk by margin x summed sizes).

    Every step in float32, rounded where the official numpy code rounds (its boxes are mmdet's float32 rows and the
    Python margin becomes float32): centres (x0 + x1) / 2, sizes |x1 - x0|, offset, shrink, and the norm
    sqrt(ox^2 + oy^2) of the unshrunk offset. The norm is a BLAS dot product officially; a BLAS that fuses the
    second multiply-add could differ in the last bit, which only matters when dx or dy is within an ulp of 0.5.
    """
    f32 = np.float32
    ax0, ay0, ax1, ay1 = (f32(v) for v in box_a[:4])
    bx0, by0, bx1, by1 = (f32(v) for v in box_b[:4])
    two, m = f32(2), f32(margin)
    offset = ((ax0 + ax1) / two - (bx0 + bx1) / two, (ay0 + ay1) / two - (by0 + by1) / two)
    sizes = (abs(ax1 - ax0) + abs(bx1 - bx0), abs(ay1 - ay0) + abs(by1 - by0))
    shrunk = [max(abs(o) - m * s, f32(0)) * np.sign(o) for o, s in zip(offset, sizes)]
    if all(abs(v) < f32(1e-3) for v in shrunk):
        return set()
    norm = np.sqrt(offset[0] * offset[0] + offset[1] * offset[1])
    dx, dy = shrunk[0] / norm, shrunk[1] / norm
    relations = set()
    if dx < -0.5:
        relations.add("left of")
    if dx > 0.5:
        relations.add("right of")
    if dy < -0.5:
        relations.add("above")
    if dy > 0.5:
        relations.add("below")
    return relations


def evaluate_image(
    metadata: dict[str, Any],
    detections: Sequence[Detection],
    *,
    color_classifier: Optional[ColorClassifier] = None,
    thresholds: GenEvalThresholds = GenEvalThresholds(),
    image: Any = None,
) -> ImageJudgement:
    """Judge one image against one GenEval metadata line. `image` is only handed to the colour classifier."""
    classify = color_classifier or colors_from_detections
    kept = select_detections(detections, metadata["tag"], thresholds)
    reasons: list[str] = []
    first_failure: Optional[tuple[dict[str, Any], str]] = None
    groups: list[Optional[list[Detection]]] = []  # per include clause: its objects if it was satisfied

    def fail(clause: dict[str, Any], kind: str, why: str) -> None:
        nonlocal first_failure
        reasons.append(why)
        if first_failure is None:
            first_failure = (dict(clause), kind)

    for clause in metadata.get("include", []):
        name, count = clause["class"], int(clause["count"])
        found = kept.get(name, [])[:count]
        ok = True
        if len(found) < count:
            ok = False
            fail(clause, "missing", f"expected at least {count} {name}, found {len(found)}")
        else:
            if "color" in clause:
                colors = list(classify(image, found, name))
                hits = colors.count(clause["color"])
                if hits < count:
                    ok = False
                    seen = ", ".join(f"{colors.count(c)} {c}" for c in sorted(set(colors)))
                    fail(clause, "color", f"expected {count} {clause['color']} {name}, found {hits} ({seen})")
            if ok and "position" in clause:
                relation, target = clause["position"]
                targets = groups[target] if target < len(groups) else None
                if targets is None:
                    ok = False
                    fail(clause, "position", f"no satisfied target for {name} to be {relation}")
                else:
                    for obj in found:
                        bad = next(
                            (
                                rels
                                for t in targets
                                if relation
                                not in (rels := relative_position(obj.box, t.box, thresholds.position_margin))
                            ),
                            None,
                        )
                        if bad is not None:
                            ok = False
                            actual = " and ".join(sorted(bad)) or "no clear relation to"
                            fail(clause, "position", f"expected {name} {relation} target, found {actual} target")
                            break
        groups.append(found if ok else None)

    for clause in metadata.get("exclude", []):
        name, count = clause["class"], int(clause["count"])
        have = len(kept.get(name, []))
        if have >= count:
            fail(clause, "excluded", f"expected fewer than {count} {name}, found {have}")

    if first_failure is None:
        return ImageJudgement(True, "", None, None)
    return ImageJudgement(False, "\n".join(reasons), first_failure[0], first_failure[1])


def aggregate_geneval(records: Iterable[dict[str, Any]]) -> dict[str, float]:
    """Per-task mean correctness over image records ({'tag', 'correct'}), and their unweighted mean 'overall'.

    Tasks come out in GenEval's order, unknown tags after them in order of appearance; tasks without images are
    absent (the official summary averages over the tags it sees).
    """
    totals: dict[str, list[int]] = {}
    for rec in records:
        bucket = totals.setdefault(str(rec["tag"]), [0, 0])
        bucket[0] += int(bool(rec["correct"]))
        bucket[1] += 1
    order = [t for t in TASKS if t in totals] + [t for t in totals if t not in TASKS]
    metrics = {tag: totals[tag][0] / totals[tag][1] for tag in order}
    if metrics:
        metrics["overall"] = sum(metrics.values()) / len(metrics)
    return metrics
