"""The image-benchmark evaluator: plan -> generate (here, or in K worker processes) -> score -> record.

`run` generates then scores; `generate` stops after the images; `score` scores any folder in the official layout.
`run` and `score` record through the same path (mqeval.evaluation.scoring). Heavy imports (torch, the model) happen
only when an image is missing.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Optional

from mqeval.contract.scoring import ScoreOptions
from mqeval.errors import DataIntegrityError, UserError
from mqeval.evaluation.kinds import Evaluator
from mqeval.evaluation.plan import RunPlan, plan_run, protocol_warnings, select_samples, warn
from mqeval.evaluation.request import EvaluationRequest
from mqeval.evaluation.scoring import ScoringTarget, score_and_record
from mqeval.evaluation.worker_plan import GenerationJob, write_worker_plan
from mqeval.generation.distributed import is_main_process
from mqeval.generation.lock import run_lock
from mqeval.generation.sharded_writer import GenerationReport, images_dir_of
from mqeval.paths import default_run_dir
from mqeval.results.record import RunOrigin, SampleSelection, model_record
from mqeval.results.schema import RunRecord


class ImageEvaluator(Evaluator):
    def run(self, request: EvaluationRequest) -> Optional[tuple[RunRecord, Path]]:
        plan, job = _prepare(request)
        options = request.scoring.options(request.device, request.data_dir, plan.settings.resolution)
        with run_lock(job.run_dir, enabled=is_main_process()) as lock_token:
            if lock_token is not None:
                _preflight(plan, job, options)
            _generate(plan, job, request.num_processes, options)
            if not is_main_process():
                return None
            target = ScoringTarget(
                run_dir=job.run_dir, images_dir=images_dir_of(job.run_dir), benchmark=plan.benchmark,
                selection=SampleSelection(plan.samples, plan.num_available, plan.limit),
                origin=RunOrigin(
                    model=model_record(plan.card, plan.checkpoint, plan.checkpoint_sha256), settings=plan.settings,
                    batch_size=job.batch_size, warnings=tuple(plan.warnings()),
                    num_processes=max(request.num_processes, int(os.environ.get("WORLD_SIZE", "1"))),
                    precision=job.acceleration.resolved(request.device)),
            )
            return score_and_record(target, options, request.scoring.strict)

    def generate(self, request: EvaluationRequest) -> None:
        plan, job = _prepare(request)
        with run_lock(job.run_dir, enabled=is_main_process()) as lock_token:
            if lock_token is not None:
                _preflight(plan, job, None)  # no scorer checks
            _generate(plan, job, request.num_processes, None)

    def score(self, request: EvaluationRequest, images: Path) -> tuple[RunRecord, Path]:
        """Score a run folder or any folder in the official layout (mqeval.origin says what may label it)."""
        from mqeval.benchmarks.catalog import load_benchmark
        from mqeval.origin import images_origin

        bench = load_benchmark(request.benchmark)
        samples, total = select_samples(bench, request.limit, request.data_dir)
        origin = images_origin(Path(images), bench, samples, request.model)
        warnings = origin.warnings + protocol_warnings(origin.card, bench, samples, total, request.limit,
                                                       origin.settings)
        for message in warnings:
            warn(message)
        resolution = origin.settings.resolution if origin.settings else None
        options = request.scoring.options(request.device, request.data_dir, resolution)
        run_dir = request.out or origin.run_dir
        with run_lock(run_dir):
            target = ScoringTarget(
                run_dir=run_dir, images_dir=origin.images_dir, benchmark=bench,
                selection=SampleSelection(samples, total, request.limit),
                origin=RunOrigin(model=model_record(origin.card, None, origin.checkpoint_sha256),
                                 settings=origin.settings, batch_size=origin.batch_size, warnings=tuple(warnings)),
            )
            return score_and_record(target, options, request.scoring.strict)


def _prepare(request: EvaluationRequest) -> tuple[RunPlan, GenerationJob]:
    from mqeval.generation.batch_size import default_batch_size

    if request.model is None:
        raise UserError("--model is required")
    plan = plan_run(request.benchmark, request.model, limit=request.limit,
                    data_dir=request.data_dir, checkpoint=request.checkpoint,
                    overrides=request.overrides)
    if is_main_process():
        for message in plan.warnings():
            warn(message)
    batch_size = request.batch_size
    if batch_size is None:
        batch_size = default_batch_size(request.device, plan.settings.resolution)
    run_dir = request.out or default_run_dir(request.benchmark, plan.card.name)
    return plan, GenerationJob(run_dir=Path(run_dir), device=request.device, batch_size=batch_size,
                               overwrite=request.overwrite, progress=request.progress,
                               acceleration=request.acceleration)


def _preflight(plan: RunPlan, job: GenerationJob, options: Optional[ScoreOptions]) -> None:
    from mqeval.preflight import preflight

    preflight(plan, job.run_dir, job.batch_size, options)


def _generate(plan: RunPlan, job: GenerationJob, num_processes: int, options: Optional[ScoreOptions]) -> None:
    from mqeval.generation.distributed import check_device, in_distributed_launch, relaunch
    from mqeval.generation.manifest import check_manifest

    if num_processes < 1:
        raise UserError(f"--num-processes must be at least 1, got {num_processes}")
    if num_processes > 1 and not in_distributed_launch():
        # User errors are caught here, where they print once, rather than in every worker.
        check_device(job.device)
        if not job.overwrite:
            check_manifest(job.run_dir, plan.fingerprint(job.batch_size))
        plan_path = write_worker_plan(plan, job)
        try:
            relaunch(["-m", "mqeval.evaluation.worker", str(plan_path)], num_processes,
                     extra_env=single_process_threads())
        finally:
            plan_path.unlink(missing_ok=True)
        return
    report = generate_images(plan, job, options)
    if report.rank == 0:
        print(report.describe(), file=sys.stderr)


def single_process_threads() -> dict[str, str]:
    """Every worker computes with the thread count one process would use (unless the user set one): CPU kernels
    may round differently with another count, and the images must not depend on the number of processes."""
    if "OMP_NUM_THREADS" in os.environ:
        return {}
    import torch

    return {"OMP_NUM_THREADS": str(torch.get_num_threads())}


def generate_images(plan: RunPlan, job: GenerationJob, score_options: Optional[ScoreOptions] = None
                    ) -> GenerationReport:
    """Write this process's share of the run's images, loading the model on its device only if an image is
    missing. With `score_options` (a `run`), each finished image is handed to the benchmark's prescorer meanwhile."""
    from mqeval.generation.distributed import ProcessGroup
    from mqeval.generation.sharded_writer import LazyPipeline, generate

    group = ProcessGroup(job.device)

    def load():
        from mqeval.model.kinds import load_text_to_image

        if not (job.progress and sys.stderr.isatty()):
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # its weight-loading bar would fill logs
        try:
            return job.acceleration.apply(load_text_to_image(plan.card, plan.checkpoint, group.device))
        except UserError:
            raise
        except Exception as exc:  # damaged weights or config raise whatever json / safetensors / torch raise
            weights = f" from {plan.checkpoint}" if plan.checkpoint else ""
            raise DataIntegrityError(f"model '{plan.card.name}' cannot be loaded{weights} ({type(exc).__name__}: "
                                     f"{str(exc)[:300]}); a file of it is damaged or of another model") from None

    return generate(
        plan.benchmark, plan.samples, LazyPipeline(load), plan.settings, job.run_dir, batch_size=job.batch_size,
        group=group, progress=job.progress, fingerprint=plan.fingerprint(job.batch_size), overwrite=job.overwrite,
        acceleration=job.acceleration,
        on_image=plan.benchmark.prescorer(score_options) if score_options else None,
    )
