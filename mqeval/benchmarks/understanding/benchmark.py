"""The plug-in side of an lmms-eval suite: which task, which metric, on which scale.

An understanding suite (spec `evaluator: understanding`) has no samples and no images: lmms-eval reads its own data
and asks the model directly; `evaluate.evaluate_understanding` runs it and returns a ScoreResult like any scorer's.
Metrics are stored on the paper's scale (MME perception: sum of subtask scores; the others: percent).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from mqeval.benchmarks.base import SpecPlugin
from mqeval.errors import ConfigError


@dataclass(frozen=True)
class LmmsEvalOptions:
    task: str  # lmms-eval task name
    source_metric: str  # metric name in lmms-eval's results (without the ",<filter>" suffix)
    metric: str  # mqeval's metric key
    scale: float = 1.0  # lmms-eval value x scale = the paper's scale
    needs_judge: bool = False  # the task calls an OpenAI-compatible judge (OPENAI_API_KEY, MODEL_VERSION)


def extract_metric(options: LmmsEvalOptions, results: dict[str, Any]) -> float:
    """Our metric from `simple_evaluate`'s output ({"results": {task: {"<metric>,<filter>": value}}})."""
    task_results = results.get("results", {}).get(options.task)
    if task_results is None:
        raise ConfigError(f"lmms-eval returned no results for task '{options.task}'")
    for key, value in task_results.items():
        if key.split(",")[0] == options.source_metric and isinstance(value, (int, float)):
            return float(value) * options.scale
    raise ConfigError(f"lmms-eval results of '{options.task}' hold no metric '{options.source_metric}': "
                      f"{sorted(task_results)}")


class LmmsEvalSuite(SpecPlugin):
    Options = LmmsEvalOptions
    evaluator: ClassVar[str] = "understanding"
    aggregatable: ClassVar[bool] = False  # lmms-eval's aggregations (e.g. MME's acc+) need every record

    def metrics(self, results: dict[str, Any]) -> dict[str, float]:
        return {self.options.metric: extract_metric(self.options, results)}
