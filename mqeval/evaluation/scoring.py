"""Score a folder of images and record the result: the one path that `run` (after generating) and `score` (on any
folder) both take."""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from mqeval.benchmarks.base import Benchmark
from mqeval.contract.samples import Sample
from mqeval.contract.scoring import ScoreOptions, ScoreResult
from mqeval.errors import DataIntegrityError
from mqeval.evaluation.plan import warn
from mqeval.results.record import RunOrigin, SampleSelection, build_run, incomplete_reasons
from mqeval.results.store import write_run
from mqeval.results.schema import RunRecord
from mqeval.run_folder import GRID_NAME


@dataclass(frozen=True)
class ScoringTarget:
    """A folder to score and what its record says about how the images were made."""

    run_dir: Path  # where results.json + samples.jsonl go
    images_dir: Path
    benchmark: Benchmark
    selection: SampleSelection
    origin: RunOrigin


def score_and_record(target: ScoringTarget, options: ScoreOptions, strict: bool) -> tuple[RunRecord, Path]:
    """Score, write results.json + samples.jsonl and the sample grid; return the record and its path."""
    result = score_images(target.benchmark, target.selection.samples, target.images_dir, options, strict=strict)
    record, rows = build_run(target.run_dir, target.benchmark, target.selection, result, target.images_dir,
                             target.origin, options.device)
    path = write_run(target.run_dir, record, rows)
    write_sample_grid(target.run_dir, rows)
    return record, path


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
    values = [v for k, v in record.metrics.items() if not k.startswith(("num_", "judge_")) and math.isfinite(v)]
    if record.incomplete and not values:
        raise DataIntegrityError(f"nothing could be scored ({'; '.join(record.incomplete)}); counts in {path}")


def write_sample_grid(run_dir: Path, rows: list[dict]) -> Optional[Path]:
    """grid.png in the run folder, from the samples.jsonl rows just written: prompts spread over the benchmark's
    tasks, with their images and verdicts."""
    from mqeval.reports.figures import sample_grid

    grid = sample_grid(rows, Path(run_dir), Path(run_dir) / GRID_NAME)
    if grid is not None:
        print(f"image grid: {grid}", file=sys.stderr)
    return grid
