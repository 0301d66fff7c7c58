"""One benchmark run: resolve (card, benchmark, samples, settings) -> generate images -> score -> record.

The CLI is a thin layer over these functions. Heavy imports (torch, the model) happen only in `generate_images`.
Images go to <run>/images in the benchmark's layout; results.json + samples.jsonl to <run>/.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from mqeval.benchmarks.base import Benchmark
from mqeval.benchmarks.catalog import load_benchmark
from mqeval.dataclass_io import to_dict
from mqeval.contract.samples import Sample
from mqeval.contract.scoring import ScoreOptions, ScoreResult
from mqeval.errors import ConfigError, DataIntegrityError, UserError
from mqeval.fileio import checkpoint_sha256
from mqeval.generation.settings import GenerationSettings, SettingOverrides, deviations, resolve_settings
from mqeval.model.kinds import kind_of, resolve_checkpoint
from mqeval.results.record import incomplete_reasons
from mqeval.results.schema import (
    RunRecord,
)
from mqeval.zoo import ModelCard, resolve_card


@dataclass(frozen=True)
class RunPlan:
    """Everything that determines a run's images, resolved before any model is loaded."""

    card: ModelCard
    benchmark: Benchmark
    samples: list[Sample]
    num_available: int  # samples in the benchmark before --limit
    limit: Optional[int]
    settings: GenerationSettings
    checkpoint: Optional[Path]  # MetaQuery: None for random-init cards; other kinds: the weights folder, if any
    overrides: SettingOverrides

    def fingerprint(self, batch_size: Optional[int] = None) -> dict[str, Any]:
        """What the images depend on; stored in generation.json so that a resume never mixes configurations.
        The batch size is part of it: batched kernels may round differently, and results record it."""
        extra = {"batch_size": batch_size} if batch_size is not None else {}
        return {**extra,
            "benchmark": {"name": self.benchmark.name, "version": self.benchmark.spec.version,
                          "data_sha256": self.benchmark.data_hashes()},
            "model": {**kind_of(self.card).fingerprint(self.card, self.checkpoint),
                      "checkpoint_sha256": checkpoint_sha256(self.checkpoint)},
            "settings": to_dict(self.settings),
        }

    def warnings(self) -> list[str]:
        out = []
        if self.card.checkpoint.random_init:
            out.append(f"model '{self.card.name}' has random weights (random_init card): its scores are meaningless")
        if self.limit is not None and len(self.samples) < self.num_available:
            out.append(f"--limit {self.limit}: {len(self.samples)} of {self.num_available} samples; "
                       "not comparable with full-benchmark numbers")
        if self.overrides.describe():
            out.append(f"sampling settings differ from the benchmark protocol: {', '.join(self.overrides.describe())}")
        return out + deviations(self.card, self.settings, self.samples, self.benchmark.name,
                                self.benchmark.spec.variant_of)


def select_samples(benchmark: Benchmark, limit: Optional[int], data_dir: Optional[str]) -> tuple[list[Sample], int]:
    if limit is not None and limit < 1:
        raise ConfigError(f"--limit must be at least 1, got {limit}")
    samples = benchmark.samples(Path(data_dir) if data_dir else None)
    return (samples[:limit] if limit is not None else samples), len(samples)


def plan_run(
    benchmark_name: str,
    model_name: str,
    *,
    limit: Optional[int] = None,
    data_dir: Optional[str] = None,
    checkpoint: Optional[Path] = None,
    overrides: SettingOverrides = SettingOverrides(),
) -> RunPlan:
    card = resolve_card(model_name)
    ckpt = resolve_checkpoint(card, checkpoint)
    benchmark = load_benchmark(benchmark_name)
    samples, total = select_samples(benchmark, limit, data_dir)
    settings = resolve_settings(card, benchmark.generation, overrides, benchmark.name, benchmark.spec.variant_of)
    return RunPlan(card, benchmark, samples, total, limit, settings, ckpt, overrides)


def generate_images(
    plan: RunPlan, run_dir: Path, *, device: str = "cpu", batch_size: int = 1, overwrite: bool = False,
    progress: bool = True, acceleration: Optional[Any] = None, score_options: Optional[ScoreOptions] = None,
):
    """Write the run's images, loading the model on this process's device only if an image is missing. With
    `score_options` (a `run`), each finished image is handed to the benchmark's prescorer meanwhile."""
    from mqeval.generation.acceleration import Acceleration
    from mqeval.generation.distributed import ProcessGroup
    from mqeval.generation.sharded_writer import LazyPipeline, generate

    acceleration = acceleration or Acceleration()

    group = ProcessGroup(device)

    def load():
        from mqeval.model.kinds import load_text_to_image

        if not (progress and sys.stderr.isatty()):
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # its weight-loading bar would fill logs
        try:
            return acceleration.apply(load_text_to_image(plan.card, plan.checkpoint, group.device))
        except UserError:
            raise
        except Exception as exc:  # damaged weights or config raise whatever json / safetensors / torch raise
            weights = f" from {plan.checkpoint}" if plan.checkpoint else ""
            raise DataIntegrityError(f"model '{plan.card.name}' cannot be loaded{weights} ({type(exc).__name__}: "
                                     f"{str(exc)[:300]}); a file of it is damaged or of another model") from None

    return generate(
        plan.benchmark, plan.samples, LazyPipeline(load), plan.settings, run_dir, batch_size=batch_size, group=group,
        progress=progress, fingerprint=plan.fingerprint(batch_size), overwrite=overwrite, acceleration=acceleration,
        on_image=plan.benchmark.prescorer(score_options) if score_options else None,
    )


def score_images(
    benchmark: Benchmark, samples: list[Sample], images_dir: Path, options: ScoreOptions, strict: bool = False
) -> ScoreResult:
    """Score a folder. Missing or unusable images are scored as the benchmark's official script scores them and
    counted (the result is then marked incomplete); with `strict`, any of them is an error instead."""
    if not Path(images_dir).is_dir():
        raise DataIntegrityError(f"the images folder {images_dir} is missing (or not a folder)")
    scored = [path for s in samples for path in benchmark.scored_paths(images_dir, s)]
    missing = [str(path) for path in scored if not path.is_file()]
    if strict and missing:
        raise DataIntegrityError(
            f"--strict: {len(missing)} image(s) of {benchmark.name} are missing under {images_dir}, e.g. "
            f"{missing[0]}; generate them first (`mqeval generate`) or pass the folder that holds the official layout"
        )
    if scored and len(missing) == len(scored):
        raise DataIntegrityError(
            f"all {len(missing)} images of {benchmark.name} are missing under {images_dir} (e.g. {missing[0]}); "
            "generate them first (`mqeval generate`) or pass the folder that holds the official layout"
        )
    result = benchmark.score(images_dir, samples, options)
    for message in result.warnings:
        warn(message)
    reasons = incomplete_reasons(result) if strict else []
    if reasons:
        raise DataIntegrityError(f"--strict: the result is incomplete ({'; '.join(reasons)}); nothing was recorded")
    return result


def check_scored(record: RunRecord, path: Path) -> None:
    """A run that scored nothing at all is an error (after its counts were recorded), never a quiet exit 0."""
    import math

    values = [v for k, v in record.metrics.items() if not k.startswith(("num_", "judge_")) and math.isfinite(v)]
    if record.incomplete and not values:
        raise DataIntegrityError(f"nothing could be scored ({'; '.join(record.incomplete)}); counts in {path}")


def warn(message: str) -> None:
    print(f"WARNING: {message}", file=sys.stderr)
