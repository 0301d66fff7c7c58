"""The resolved plan, as the process the user started hands it to its K generation workers: one JSON file in the
run folder, written once. Workers rebuild the card, benchmark, samples and settings from it; they do not look up
the card or hash the checkpoint again, and they cannot resolve anything differently from the launcher."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from mqeval.benchmarks.base import BenchmarkSpec
from mqeval.benchmarks.catalog import plugin_of
from mqeval.contract.samples import Sample
from mqeval.dataclass_io import from_dict, to_dict
from mqeval.errors import DataIntegrityError
from mqeval.evaluation.plan import RunPlan
from mqeval.fileio import write_json
from mqeval.generation.acceleration import Acceleration
from mqeval.generation.settings import GenerationSettings, SettingOverrides
from mqeval.model.card import ModelCard
from mqeval.run_folder import PLAN_NAME



@dataclass(frozen=True)
class GenerationJob:
    """How this run's images are made, besides what makes them (the plan)."""

    run_dir: Path
    device: str = "cpu"
    batch_size: int = 1
    overwrite: bool = False
    progress: bool = True
    acceleration: Acceleration = Acceleration()


def write_worker_plan(plan: RunPlan, job: GenerationJob) -> Path:
    path = Path(job.run_dir) / PLAN_NAME
    write_json(path, {
        "card": to_dict(plan.card),
        "benchmark": to_dict(plan.benchmark.spec),
        "samples": [to_dict(s) for s in plan.samples],
        "num_available": plan.num_available,
        "limit": plan.limit,
        "settings": to_dict(plan.settings),
        "checkpoint": str(plan.checkpoint) if plan.checkpoint else None,
        "checkpoint_sha256": plan.checkpoint_sha256,
        "overrides": to_dict(plan.overrides),
        "job": to_dict(job),
    })
    return path


def read_worker_plan(path: Path) -> tuple[RunPlan, GenerationJob]:
    try:
        data: dict[str, Any] = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DataIntegrityError(f"the worker plan {path} cannot be read ({exc}); start the run again") from None
    where = str(path)
    checkpoint: Optional[str] = data["checkpoint"]
    plan = RunPlan(
        card=from_dict(ModelCard, data["card"], f"{where} card"),
        benchmark=plugin_of(from_dict(BenchmarkSpec, data["benchmark"], f"{where} benchmark")),
        samples=[from_dict(Sample, s, f"{where} samples") for s in data["samples"]],
        num_available=int(data["num_available"]),
        limit=data["limit"],
        settings=from_dict(GenerationSettings, data["settings"], f"{where} settings"),
        checkpoint=Path(checkpoint) if checkpoint else None,
        checkpoint_sha256=data["checkpoint_sha256"],
        overrides=from_dict(SettingOverrides, data["overrides"], f"{where} overrides"),
    )
    return plan, from_dict(GenerationJob, data["job"], f"{where} job")
