"""DPG-Bench scoring rules (TencentQQGYLab/ELLA @ 3c228f1, dpg_bench/compute_dpg_bench.py), as pure functions.

Questions: `dpg_bench.csv`, one row per proposition (item_id, proposition_id, dependency "0" or "1,3",
tuple "entity - whole (cat)", question_natural_language). A tile's answer counts 1 only when it is exactly "yes".
Gating: walking the questions in file order, a question scores 0 when any of its parents (ids other than 0) has
score 0 at that point; the walk updates scores in place, so a parent gated earlier in the walk gates its children.
Tile score = mean over questions; item score = mean over tiles; DPG score = 100 x mean over items.

`official=True` reproduces the reference script's quirks:
- the first CSV data row is skipped (so item partiprompts97 loses proposition 1, and every question that depends
  on it raises in the reference script: that image then fails and is left out of the mean);
- rows of an item that reappears after another item replace (not extend) its questions;
- a failing image is left out of the mean (the denominator shrinks);
- L1/L2 category scores use the ungated answers of the last tile only.
`official=False` (the corrected variant) reads every row, ignores parents that do not exist, scores a failing or
missing image as 0, and computes categories from the gated scores of all tiles.
"""
from __future__ import annotations

import csv
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from mqeval.errors import DataIntegrityError

CSV_COLUMNS = ("item_id", "proposition_id", "dependency", "tuple", "question_natural_language")


@dataclass
class ItemQuestions:
    qids: list[int] = field(default_factory=list)  # file order (the gating walk order)
    questions: dict[int, str] = field(default_factory=dict)
    tuples: dict[int, str] = field(default_factory=dict)
    parents: dict[int, list[int]] = field(default_factory=dict)

    def add(self, qid: int, question: str, tuple_text: str, parents: list[int]) -> None:
        if qid not in self.questions:
            self.qids.append(qid)
        self.questions[qid], self.tuples[qid], self.parents[qid] = question, tuple_text, parents


def read_questions(path: Path, official: bool = True) -> dict[str, ItemQuestions]:
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if rows and not all(column in rows[0] for column in CSV_COLUMNS):
        raise DataIntegrityError(f"{path}: expected columns {', '.join(CSV_COLUMNS)}")
    items: dict[str, ItemQuestions] = {}
    previous = ""
    for number, row in enumerate(rows):
        if official and number == 0:
            continue
        item_id = row["item_id"]
        try:
            qid = int(row["proposition_id"])
            parents = [int(part.strip()) for part in row["dependency"].split(",")]
        except ValueError as exc:
            raise DataIntegrityError(f"{path}: data row {number + 1}: {exc}") from None
        if official and item_id != previous:
            items[item_id] = ItemQuestions()  # the reference script starts afresh whenever the id changes
        items.setdefault(item_id, ItemQuestions()).add(qid, row["question_natural_language"], row["tuple"], parents)
        previous = item_id
    return items


class MissingParentError(KeyError):
    pass


def gate(raw: dict[int, float], qids: list[int], parents: dict[int, list[int]],
         official: bool = True) -> dict[int, float]:
    """Gated scores (see the module docstring). Official: a parent missing from the item raises."""
    scores = dict(raw)
    for qid in qids:
        for parent in parents[qid]:
            if parent == 0:
                continue
            if parent not in scores:
                if official:
                    raise MissingParentError(f"question {qid} depends on proposition {parent}, which is not there")
                continue
            if scores[parent] == 0:
                scores[qid] = 0.0
                break
    return scores


def is_yes(answer: Optional[str]) -> float:
    return float(answer == "yes")


def l2_category(tuple_text: str) -> str:
    return tuple_text.split("(")[0].strip()


def l1_category(l2: str) -> str:
    return l2.split("-")[0].strip()


def metric_slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def aggregate(records: list[dict[str, Any]], official: bool = True) -> dict[str, float]:
    """Metrics from per-item records {status, l2: [..], raw: [[..] per tile], gated: [[..] per tile]}."""
    item_scores: list[float] = []
    l2_values: dict[str, list[float]] = defaultdict(list)
    counts = {"failed": 0, "missing_image": 0}
    for record in records:
        if record["status"] != "ok":
            counts["missing_image" if record["status"] == "missing_image" else "failed"] += 1
            if not official:
                item_scores.append(0.0)
            continue
        item_scores.append(mean([mean(tile) for tile in record["gated"]]))
        tiles = [record["raw"][-1]] if official else record["gated"]
        for tile in tiles:
            for l2, value in zip(record["l2"], tile):
                l2_values[l2].append(value)
    metrics = {"dpg_score": 100.0 * mean(item_scores)}
    l1_values: dict[str, list[float]] = defaultdict(list)
    for l2, values in l2_values.items():
        l1_values[l1_category(l2)].extend(values)
    for l1, values in sorted(l1_values.items()):
        metrics[f"l1_{metric_slug(l1)}"] = 100.0 * mean(values)
    for l2, values in sorted(l2_values.items()):
        metrics[f"l2_{metric_slug(l2)}"] = 100.0 * mean(values)
    metrics["num_items"] = float(len(records))
    metrics["num_scored_items"] = float(len(records) - counts["failed"] - counts["missing_image"])
    metrics["num_failed_items"] = float(counts["failed"])
    metrics["num_missing_images"] = float(counts["missing_image"])
    return metrics
