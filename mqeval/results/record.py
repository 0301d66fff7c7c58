"""A scored run written down: results.json + samples.jsonl, with everything that determines the numbers (the card
and its checkpoint hash, the benchmark's version and data, the scorer, the settings, seeds and environment)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from mqeval.dataclass_io import to_dict
from mqeval.contract.samples import Sample
from mqeval.contract.scoring import ScoreResult
from mqeval.environment import collect_environment
from mqeval.fileio import checkpoint_sha256
from mqeval.generation.jobs import sample_seeds
from mqeval.generation.settings import GenerationSettings
from mqeval.results.schema import (
    SCHEMA_VERSION,
    BenchmarkRecord,
    EnvironmentRecord,
    ModelRecord,
    RunRecord,
    ScorerRecord,
)
from mqeval.results.store import new_run_id, sample_rows, utc_now

if TYPE_CHECKING:
    from mqeval.benchmarks.base import Benchmark
    from mqeval.model.card import ModelCard


def incomplete_reasons(result: ScoreResult) -> list[str]:
    """Why a result covers less than the protocol asks: unusable images, unanswered or unparseable judge requests,
    no value."""
    reasons = list(result.incomplete)
    unanswered = int(result.metrics.get("judge_failures", 0) or 0)
    if unanswered:
        reasons.append(f"{unanswered} judge request(s) unanswered")
    unparseable = int(result.metrics.get("judge_unparseable", 0) or 0)
    if unparseable:  # outside the protocol's form or range after every retry: counted, never averaged
        reasons.append(f"{unparseable} judge answer(s) unparseable")
    empty = [k for k, v in result.metrics.items() if not math.isfinite(v)]
    if empty:
        reasons.append(f"no value for {', '.join(empty)}")
    return reasons


@dataclass(frozen=True)
class SampleSelection:
    """The samples a result covers: the first `limit` of the benchmark's `num_available`, or all of them. Empty for
    the understanding suites, whose questions lmms-eval holds."""

    samples: list[Sample] = field(default_factory=list)
    num_available: int = 0
    limit: Optional[int] = None


@dataclass(frozen=True)
class RunOrigin:
    """How a run's images (or answers) were made, as its record states it."""

    model: ModelRecord
    settings: Optional[GenerationSettings] = None  # None: images of unknown origin, or no images at all
    batch_size: Optional[int] = None
    num_processes: int = 1
    precision: Optional[str] = None
    warnings: tuple[str, ...] = ()


def build_run(run_dir: Path, benchmark: "Benchmark", selection: SampleSelection, result: ScoreResult,
              images_dir: Path, origin: RunOrigin, device: str) -> tuple[RunRecord, list[dict]]:
    """The record of a scored run and its samples.jsonl rows (image paths relative to `run_dir`)."""
    run_dir = Path(run_dir)
    spec = benchmark.spec
    samples, num_available, limit = selection.samples, selection.num_available, selection.limit
    settings, batch_size, precision = origin.settings, origin.batch_size, origin.precision
    generation = None
    if settings is not None:
        generation = {**to_dict(settings), "batch_size": batch_size}
        if precision is not None:
            generation["precision"] = precision
    record = RunRecord(
        schema_version=SCHEMA_VERSION,
        run_id=new_run_id(),
        created=utc_now(),
        benchmark=BenchmarkRecord(
            name=spec.name, version=spec.version, variant_of=spec.variant_of,
            prompt_set=getattr(benchmark.options, "prompt_set", None), data_sha256=benchmark.data_hashes(),
            num_samples=len(samples), limit=limit if limit is not None and limit < num_available else None,
        ),
        model=origin.model,
        generation=generation,
        scorer=ScorerRecord(name=result.scorer.name, version=result.scorer.version, weights=result.scorer.weights,
                            notes=tuple(result.scorer.notes)),
        metrics={k: float(v) for k, v in result.metrics.items()},
        higher_is_better=dict(result.higher_is_better),
        environment=EnvironmentRecord(**collect_environment(device, origin.num_processes)),
        warnings=tuple(origin.warnings) + tuple(result.warnings),
        incomplete=tuple(incomplete_reasons(result)),
        image_issues=dict(result.image_issues),
    )
    seeds = [sample_seeds(s, settings) if settings else [] for s in samples]
    images = [[_relative(p, run_dir) for p in benchmark.scored_paths(images_dir, s)] for s in samples]
    return record, sample_rows(samples, seeds, images, result.per_sample)


def model_record(
    card: Optional["ModelCard"], checkpoint: Optional[Path], checkpoint_sha: Optional[str] = None
) -> ModelRecord:
    """The results' `model` entry; `checkpoint_sha` when known from a manifest instead of the folder. Hub weights are
    recorded by their cache folder, snapshots/<commit>: the revision the run used."""
    if card is not None:
        from mqeval.model.kinds import kind_of

        checkpoint = kind_of(card).recorded_checkpoint(card, checkpoint)
    return ModelRecord(
        card=card.name if card else None,
        config=to_dict(card) if card else None,
        random_init=bool(card and card.checkpoint.random_init),
        checkpoint=str(checkpoint) if checkpoint else None,
        checkpoint_sha256=checkpoint_sha or checkpoint_sha256(checkpoint),
    )


def _relative(path: Path, root: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path(root).resolve()))
    except ValueError:
        return str(Path(path).resolve())
