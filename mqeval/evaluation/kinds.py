"""Evaluator kinds: how a benchmark is run end to end, chosen by its spec's `evaluator` field.

- `images` (mqeval.evaluation.images): plan, generate the images (in K processes if asked), score the folder;
- `understanding` (mqeval.evaluation.understanding): lmms-eval asks the model's MLLM the suite's questions.
Both record a run folder (results.json + samples.jsonl) that reports read the same way.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Optional

from mqeval.benchmarks.catalog import load_spec
from mqeval.evaluation.request import EvaluationRequest
from mqeval.registry import Registry
from mqeval.results.schema import RunRecord


class Evaluator(ABC):
    @abstractmethod
    def run(self, request: EvaluationRequest) -> Optional[tuple[RunRecord, Path]]:
        """Evaluate and record; the record and its path (None on the non-main processes of a user's launch)."""


EVALUATORS: Registry[type[Evaluator]] = Registry("evaluator")
EVALUATORS.register("images", "mqeval.evaluation.images:ImageEvaluator")
EVALUATORS.register("understanding", "mqeval.evaluation.understanding:UnderstandingEvaluator")


def evaluator_for(benchmark: str) -> Evaluator:
    return EVALUATORS.get(load_spec(benchmark).evaluator)()
