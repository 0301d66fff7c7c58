"""WISE scoring rules (PKU-YuanGroup/WISE @ eb51174): answer parsing, per-image score, category weights.

Two protocols:
- legacy (the WISE paper and MetaQuery's Table 5; `WISE_legacy/gpt_eval.py` + `Calculate.py`): the judge gives
  Consistency, Realism and Aesthetic Quality in 0..2; WiScore = (0.7 C + 0.2 R + 0.1 A) / 2.
- verified (`vllm_eval.py` + `calculate_verified.py`, the repository's newer default): one binary Score in {0, 1}.
Categories are assigned from prompt_id ranges, which differ between the two prompt sets.
"""
from __future__ import annotations

import re
from typing import Any, Optional

CATEGORIES = ("culture", "time", "space", "biology", "physics", "chemistry")

# prompt_id ranges (inclusive) per category
ID_RANGES = {
    "legacy": {"culture": (1, 400), "time": (401, 567), "space": (568, 700),
               "biology": (701, 800), "physics": (801, 900), "chemistry": (901, 1000)},
    "verified": {"culture": (1, 400), "time": (401, 520), "space": (521, 640),
                 "biology": (641, 760), "physics": (761, 880), "chemistry": (881, 1000)},
}

WEIGHTS = {
    "legacy": {"culture": 0.4, "time": 0.167, "space": 0.133, "biology": 0.1, "physics": 0.1, "chemistry": 0.1},
    "verified": {"culture": 0.4, "time": 0.12, "space": 0.12, "biology": 0.12, "physics": 0.12, "chemistry": 0.12},
}

# The three data files (and their layout folders), in generation order.
FILE_STEMS = ("cultural_common_sense", "spatio-temporal_reasoning", "natural_science")


def category_of(prompt_id: int, protocol: str) -> Optional[str]:
    for name, (low, high) in ID_RANGES[protocol].items():
        if low <= prompt_id <= high:
            return name
    return None


LEGACY_RANGE = (0, 2)  # each of the three dimensions, as the official instructions ask for them
_LEGACY_KEYED = re.compile(r"\*{0,2}(Consistency|Realism|Aesthetic Quality)\*{0,2}\s*[:]?\s*(\d)", re.IGNORECASE)
_LEGACY_BARE = re.compile(r"(?m)^\s*([0-2])\s*$")
_VERIFIED_KEYED = re.compile(r"\*{0,2}Score\*{0,2}\s*[:]?\s*([01])\b", re.IGNORECASE)
_VERIFIED_BARE = re.compile(r"(?m)^\s*([01])\s*$")
_THINK = re.compile(r"<think>.*?</think>\s*", re.DOTALL)


def parse_legacy(text: str) -> Optional[dict[str, float]]:
    """{"consistency", "realism", "aesthetic_quality"} from a judge answer, or None if any is missing.

    Like the official parser: labelled lines first (later duplicates win); only when no label is found at all,
    three bare lines holding 0, 1 or 2 are read in order. Unlike it, a labelled digit outside 0..2 ("Consistency: 9",
    which the official regex takes and which would put a WiScore above 1) makes the answer unparseable: it is asked
    again and, if it stays so, counted as failed, never averaged.
    """
    scores: dict[str, float] = {}
    for key, value in _LEGACY_KEYED.findall(text):
        scores[key.lower().replace(" ", "_")] = float(value)
    if not scores:
        bare = _LEGACY_BARE.findall(text)
        if len(bare) >= 3:
            scores = {"consistency": float(bare[0]), "realism": float(bare[1]), "aesthetic_quality": float(bare[2])}
    needed = ("consistency", "realism", "aesthetic_quality")
    low, high = LEGACY_RANGE
    if not all(key in scores and low <= scores[key] <= high for key in needed):
        return None
    return {key: scores[key] for key in needed}


def parse_verified(text: str) -> Optional[dict[str, float]]:
    """{"score"} from a judge answer (think tags removed first), or None."""
    text = _THINK.sub("", text)
    text = re.sub(r"</think>\s*", "", text).strip()
    match = _VERIFIED_KEYED.search(text)
    if match:
        return {"score": float(match.group(1))}
    bare = _VERIFIED_BARE.findall(text)
    return {"score": float(bare[0])} if len(bare) == 1 else None


def wiscore(protocol: str, scores: dict[str, float]) -> float:
    if protocol == "legacy":
        return (0.7 * scores["consistency"] + 0.2 * scores["realism"] + 0.1 * scores["aesthetic_quality"]) / 2
    return float(scores["score"])


def aggregate(protocol: str, records: list[dict[str, Any]]) -> dict[str, float]:
    """Category means over judged images, the weighted overall (only when every category has a score), counts."""
    by_category: dict[str, list[float]] = {name: [] for name in CATEGORIES}
    counts = {"unparseable": 0, "judge_failed": 0, "missing_image": 0}
    for record in records:
        status = record.get("status", "ok")
        if status != "ok":
            key = status if status in counts else "judge_failed"
            counts[key] += 1
            continue
        category = record["category"]
        if category in by_category:
            by_category[category].append(float(record["wiscore"]))
    metrics: dict[str, float] = {}
    for name, values in by_category.items():
        if values:
            metrics[name] = sum(values) / len(values)
    if all(by_category[name] for name in CATEGORIES):
        metrics["overall"] = sum(WEIGHTS[protocol][name] * metrics[name] for name in CATEGORIES)
    metrics["num_scored"] = float(sum(len(v) for v in by_category.values()))
    metrics["num_unparseable"] = float(counts["unparseable"])
    metrics["num_judge_failed"] = float(counts["judge_failed"])
    metrics["num_missing_images"] = float(counts["missing_image"])
    return metrics
