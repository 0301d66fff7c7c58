"""CommonsenseT2I pair scoring (zeyofu/Commonsense-T2I @ 07f2fdb, evaluate.py), as a pure function.

Each pair has prompts P1, P2 and descriptions D1, D2; each prompt has 4 images; the judge answers, per image and
per description, 1 (fits) or 0. An image "supports" D1 on (1, 0), D2 on (0, 1), a random one of the two on (1, 1)
(the official script draws from Python's `random` seeded 42 once, in pair order, P1's images then P2's), none
otherwise. A pair scores the fraction of the 4 index-paired images (P1 image j, P2 image j) where the P1 image
supports D1 and the P2 image supports D2; the benchmark score is 100 x the mean over pairs.
An answer the official script cannot read as an integer counts as -1 (supports nothing).
"""
from __future__ import annotations

import random
from collections import defaultdict
from typing import Any, Optional

TIE_SEED = 42
UNREADABLE = -1


def parse_answer(text: Optional[str]) -> int:
    """The official reading: int(answer.strip()), -1 when that fails (or the request failed)."""
    if text is None:
        return UNREADABLE
    try:
        return int(text.strip())
    except ValueError:
        return UNREADABLE


def supported_description(fits1: int, fits2: int, rng: random.Random) -> int:
    if fits1 == 1 and fits2 == 0:
        return 1
    if fits1 == 0 and fits2 == 1:
        return 2
    if fits1 == 1 and fits2 == 1:
        return rng.choice([1, 2])
    return 0


def pair_score(answers1: list[list[int]], answers2: list[list[int]], rng: random.Random) -> float:
    """answersK[j] = [fits D1, fits D2] for image j of prompt K. Draws from `rng` in the official order."""
    support1 = [supported_description(a, b, rng) for a, b in answers1]
    support2 = [supported_description(a, b, rng) for a, b in answers2]
    n = len(support1)
    return sum(1 for j in range(n) if support1[j] == 1 and support2[j] == 2) / n


def pair_up(records: list[dict[str, Any]]) -> tuple[list[tuple[dict, dict]], int]:
    """Pairs of (side-1 record, side-2 record) in order of first appearance; the k-th side-1 record of a pair id
    goes with its k-th side-2 record (so resampled records pair up too). Returns pairs and the unmatched count."""
    sides: dict[Any, dict[int, list[dict]]] = defaultdict(lambda: {1: [], 2: []})
    order: list[Any] = []
    for record in records:
        pair = record["pair"]
        if pair not in sides:
            order.append(pair)
        sides[pair][int(record["side"])].append(record)
    pairs, unmatched = [], 0
    for pair in order:
        first, second = sides[pair][1], sides[pair][2]
        pairs.extend(zip(first, second))
        unmatched += abs(len(first) - len(second))
    return pairs, unmatched


def aggregate(records: list[dict[str, Any]]) -> dict[str, float]:
    rng = random.Random(TIE_SEED)
    pairs, unmatched = pair_up(records)
    scores = [pair_score(r1["answers"], r2["answers"], rng) for r1, r2 in pairs]
    answers = [value for r in records for image in r["answers"] for value in image]
    metrics = {
        "score": 100.0 * sum(scores) / len(scores) if scores else float("nan"),
        "num_pairs": float(len(scores)),
        "num_incomplete_pairs": float(unmatched),
        "num_unreadable_answers": float(sum(1 for v in answers if v not in (0, 1))),
        "num_both_fit": float(sum(1 for r in records for a, b in r["answers"] if a == 1 and b == 1)),
    }
    return metrics
