"""The `mqeval` command line. Thin: parsing, printing and launching; the work lives in mqeval.evaluation.orchestrator.

Nothing at module level imports torch, so `mqeval --help` and `mqeval ls` start fast. Every failure ends in one
`Error: ...` line on stderr and a non-zero exit code, never a traceback (mqeval.cli_errors).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional

import typer

from mqeval.errors import UnknownNameError, UserError


class _App(typer.Typer):
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from mqeval.cli_errors import call_cli

        call_cli(super().__call__, *args, **kwargs)


app = _App(
    name="mqeval",
    help="Build, train and benchmark MetaQuery-style unified multimodal models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# ---------------------------------------------------------------- options shared by run / generate / score
MODEL = typer.Option(..., "--model", "-m", help="Model card name (see `mqeval ls models`) or a card .yaml file.")
LIMIT = typer.Option(None, "--limit", help="Only the first N samples of the benchmark's global order.")
OUT = typer.Option(None, "--out", help="Run folder (default: runs/<benchmark>/<model>/).")
NUM_PROCESSES = typer.Option(1, "--num-processes", help="Generate in K processes (re-launches through torchrun).")
BATCH_SIZE = typer.Option(None, "--batch-size", help="Images per forward pass (images may differ by float rounding); "
                          "default: 16 on CPU, from the resolution and memory on CUDA (docs/speed.md).")
PRECISION = typer.Option("auto", "--precision", help="auto (fp32 on CPU, bf16 autocast on CUDA), fp32, bf16 or fp16.")
COMPILE = typer.Option(False, "--compile", help="torch.compile the denoiser (the first batch compiles).")
CHECKPOINT = typer.Option(None, "--checkpoint", help="Checkpoint folder to use instead of the card's.")
DEVICE = typer.Option("cpu", "--device", help="cpu or cuda.")
DATA_DIR = typer.Option(None, "--data-dir", help="Local copy of the benchmark's data files.")
SEED = typer.Option(None, "--seed", help="Override the protocol's global seed (recorded as a deviation).")
STEPS = typer.Option(None, "--num-inference-steps", help="Override the number of sampling steps (a deviation).")
GUIDANCE = typer.Option(None, "--guidance-scale", help="Override the guidance scale (a deviation).")
OVERWRITE = typer.Option(False, "--overwrite", help="Delete the run folder's images and generate all again.")
NO_PROGRESS = typer.Option(False, "--no-progress", help="No progress bar.")
BACKEND = typer.Option(None, "--backend", help="Scorer backend (detector / VQA), where the benchmark has several.")
JUDGE_URL = typer.Option(None, "--judge-base-url", help="OpenAI-compatible endpoint of the judge model.")
JUDGE_MODEL = typer.Option(None, "--judge-model", help="Judge model name at that endpoint.")
WEIGHTS = typer.Option(None, "--weights-path", help="Local scorer weights (detector, Inception, ...).")
STRICT = typer.Option(False, "--strict", help="Refuse to record a result with missing or unusable images or "
                      "unanswered judge requests (by default they are scored as the official script does, "
                      "counted and the result marked incomplete).")
HTTP_KEY = typer.Option(False, "--judge-allow-http-key", help="Send the judge API key over plain http to another "
                        "machine (by default it goes only over https or to this machine).")
DETECTOR_WEIGHTS = typer.Option(None, "--detector-weights",
                                help="GenEval's hf-mask2former weights: official (default, converted mmdet) or hf.")


def _is_main_process() -> bool:
    return os.environ.get("RANK", "0") == "0"


def _overrides(seed: Optional[int], steps: Optional[int], guidance: Optional[float]):
    from mqeval.generation.settings import SettingOverrides

    return SettingOverrides(seed=seed, num_inference_steps=steps, guidance_scale=guidance)


def _score_options(device: str, backend, judge_base_url, judge_model, weights_path, data_dir, batch_size: int,
                   allow_http_key: bool = False, resolution: Optional[int] = None,
                   detector_weights: Optional[str] = None):
    from mqeval.contract.scoring import ScoreOptions
    from mqeval.paths import cache_dir

    return ScoreOptions(
        cache_dir=cache_dir(), device=device, backend=backend, judge_base_url=judge_base_url,
        judge_model=judge_model, weights_path=weights_path, data_dir=str(data_dir) if data_dir else None,
        batch_size=batch_size, judge_allow_http_key=allow_http_key, resolution=resolution,
        detector_weights=detector_weights,
    )


def _generate_args(benchmark: str, model: str, run_dir: Path, limit, num_processes: int, batch_size: int,
                   checkpoint, device: str, data_dir, seed, steps, guidance, overwrite: bool,
                   no_progress: bool, acceleration) -> list[str]:
    """The `mqeval generate ...` arguments that reproduce these settings (what a re-launch runs in each process)."""
    args = ["generate", benchmark, "--model", model, "--out", str(run_dir), "--num-processes", str(num_processes),
            "--batch-size", str(batch_size), "--device", device, "--precision", acceleration.precision]
    if acceleration.compile:
        args.append("--compile")
    for flag, value in (("--limit", limit), ("--checkpoint", checkpoint), ("--data-dir", data_dir),
                        ("--seed", seed), ("--num-inference-steps", steps), ("--guidance-scale", guidance)):
        if value is not None:
            args += [flag, str(value)]
    if overwrite:
        args.append("--overwrite")
    if no_progress:
        args.append("--no-progress")
    return args


def _generate(plan, run_dir: Path, generate_args: list[str], num_processes: int, device: str, batch_size: int,
              overwrite: bool, progress: bool, acceleration, lock_token: Optional[str], score_options=None) -> None:
    from mqeval.generation.distributed import check_device, in_distributed_launch, relaunch
    from mqeval.generation.lock import LOCK_TOKEN_ENV
    from mqeval.generation.manifest import check_manifest

    if num_processes < 1:
        raise UserError(f"--num-processes must be at least 1, got {num_processes}")
    if num_processes > 1 and not in_distributed_launch():
        # Catch user errors here, where they print as one line, rather than in every worker.
        check_device(device)
        if not overwrite:
            check_manifest(run_dir, plan.fingerprint(batch_size))
        # Workers write under this process's lock; it has printed the warnings already.
        relaunch([*generate_args, "--no-warnings"], num_processes,
                 extra_env={**_single_process_threads(), **({LOCK_TOKEN_ENV: lock_token} if lock_token else {})})
        return
    from mqeval.evaluation.orchestrator import generate_images

    report = generate_images(plan, run_dir, device=device, batch_size=batch_size, overwrite=overwrite,
                             progress=progress, acceleration=acceleration, score_options=score_options)
    if report.rank == 0:
        typer.echo(f"{report.num_images} images in {report.images_dir} ({report.num_pending} generated, "
                   f"{report.num_images - report.num_pending} already there) in {report.seconds:.1f} s", err=True)


def _single_process_threads() -> dict[str, str]:
    """Every worker computes with the thread count one process would use (unless the user set one): CPU kernels
    may round differently with another count, and the images must not depend on the number of processes."""
    if "OMP_NUM_THREADS" in os.environ:
        return {}
    import torch

    return {"OMP_NUM_THREADS": str(torch.get_num_threads())}


def _acceleration(precision: str, compile_: bool):
    from mqeval.generation.acceleration import Acceleration

    return Acceleration(precision=precision, compile=compile_)


def _batch_size(batch_size: Optional[int], device: str, plan) -> int:
    from mqeval.generation.batch_size import default_batch_size

    return batch_size if batch_size is not None else default_batch_size(device, plan.settings.resolution)


def _plan(benchmark, model, limit, data_dir, checkpoint, seed, steps, guidance, show_warnings: bool = True):
    from mqeval.evaluation.orchestrator import plan_run, warn

    plan = plan_run(benchmark, model, limit=limit, data_dir=data_dir, checkpoint=checkpoint,
                    overrides=_overrides(seed, steps, guidance))
    if show_warnings and _is_main_process():
        for message in plan.warnings():
            warn(message)
    return plan


def _print_table(record, results_path: Path) -> None:
    """The metrics; with `*` after every value of an incomplete result (a footnote says why)."""
    title = f"{record.benchmark.name} | {record.model.card or 'unknown model'} | {record.benchmark.num_samples} samples"
    width = max([len("metric")] + [len(k) for k in record.metrics])
    mark = "*" if record.incomplete else ""
    lines = [title, f"{'metric':<{width}}  {'value':>10}{' ' if mark else ''}  better"]
    for key, value in record.metrics.items():
        lines.append(f"{key:<{width}}  {value:>10.4f}{mark}  {'higher' if record.higher_is_better[key] else 'lower'}")
    if record.incomplete:
        lines.append(f"* INCOMPLETE: {'; '.join(record.incomplete)}")
    typer.echo("\n".join(lines))
    typer.echo(f"results: {results_path}", err=True)


def _write_sample_grid(run_dir: Path) -> None:
    """grid.png in the run folder: prompts spread over the benchmark's tasks, with their images and verdicts."""
    from mqeval.reports.figures import sample_grid
    from mqeval.results.run import read_run

    grid = sample_grid(read_run(run_dir), Path(run_dir) / "grid.png")
    if grid is not None:
        typer.echo(f"image grid: {grid}", err=True)


# ---------------------------------------------------------------- commands
@app.command("ls")
def ls(what: str = typer.Argument(..., help="models or benchmarks")) -> None:
    """List model cards or benchmarks (name and one-line description)."""
    if what == "models":
        rows = _model_rows()
    elif what == "benchmarks":
        rows = _benchmark_rows()
    else:
        raise UnknownNameError("listing", what, ["models", "benchmarks"])
    width = max((len(name) for name, _ in rows), default=0)
    for name, text in rows:
        typer.echo(f"{name:<{width}}  {text}")


def _one_line(text: str, limit: int = 110) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _model_rows() -> list[tuple[str, str]]:
    from mqeval.zoo import card_names, load_card

    rows = []
    for name in card_names():
        try:
            card = load_card(name)
            prefix = "[random weights] " if card.checkpoint.random_init else ""
            rows.append((name, _one_line(prefix + card.description)))
        except UserError as exc:
            rows.append((name, f"(invalid card: {_one_line(str(exc), 90)})"))
    return rows


def _benchmark_rows() -> list[tuple[str, str]]:
    from mqeval.benchmarks.catalog import load_spec, spec_paths

    specs, rows = {}, []
    for name in spec_paths():
        try:
            specs[name] = load_spec(name)
        except UserError as exc:
            rows.append((name, f"(invalid spec: {_one_line(str(exc), 90)})"))
    bases = sorted(n for n, s in specs.items() if not s.variant_of or s.variant_of not in specs)
    for name in bases:
        rows.append((name, _one_line(specs[name].description)))
        for variant in sorted(n for n, s in specs.items() if s.variant_of == name):
            rows.append((f"  {variant}", _one_line(f"(variant of {name}) {specs[variant].description}")))
    return rows


@app.command("run")
def run(
    benchmark: str = typer.Argument(..., help="Benchmark name (see `mqeval ls benchmarks`)."),
    model: str = MODEL, limit: Optional[int] = LIMIT, out: Optional[Path] = OUT,
    num_processes: int = NUM_PROCESSES, batch_size: Optional[int] = BATCH_SIZE,
    checkpoint: Optional[Path] = CHECKPOINT,
    device: str = DEVICE, data_dir: Optional[Path] = DATA_DIR, seed: Optional[int] = SEED,
    num_inference_steps: Optional[int] = STEPS, guidance_scale: Optional[float] = GUIDANCE,
    overwrite: bool = OVERWRITE, no_progress: bool = NO_PROGRESS, precision: str = PRECISION,
    compile_: bool = COMPILE, backend: Optional[str] = BACKEND,
    judge_base_url: Optional[str] = JUDGE_URL, judge_model: Optional[str] = JUDGE_MODEL,
    weights_path: Optional[str] = WEIGHTS, strict: bool = STRICT, judge_allow_http_key: bool = HTTP_KEY,
    detector_weights: Optional[str] = DETECTOR_WEIGHTS,
) -> None:
    """Generate a benchmark's images, score them and write results.json + samples.jsonl; print the scores."""
    from mqeval.benchmarks.catalog import load_spec
    from mqeval.generation.lock import run_lock
    from mqeval.generation.sharded_writer import images_dir_of
    from mqeval.paths import default_run_dir
    from mqeval.preflight import preflight
    from mqeval.results.record import model_record, record_run
    from mqeval.evaluation.orchestrator import check_scored, score_images

    if load_spec(benchmark).plugin == "lmms-eval":  # understanding suites score the MLLM, not generated images
        from mqeval.benchmarks.understanding.evaluate import run_understanding

        record, path = run_understanding(benchmark, model, checkpoint=checkpoint, limit=limit, device=device,
                                         batch_size=batch_size or 4, run_dir=out)
        _print_table(record, path)
        return
    acceleration = _acceleration(precision, compile_)
    plan = _plan(benchmark, model, limit, data_dir, checkpoint, seed, num_inference_steps, guidance_scale)
    run_dir = out or default_run_dir(benchmark, plan.card.name)
    batch_size = _batch_size(batch_size, device, plan)
    args = _generate_args(benchmark, model, run_dir, limit, num_processes, batch_size, checkpoint, device, data_dir,
                          seed, num_inference_steps, guidance_scale, overwrite, no_progress, acceleration)
    options = _score_options(device, backend, judge_base_url, judge_model, weights_path, data_dir, 16,
                             judge_allow_http_key, plan.settings.resolution, detector_weights)
    with run_lock(run_dir, enabled=_is_main_process()) as lock_token:
        if lock_token is not None:
            preflight(plan, run_dir, batch_size, options)
        _generate(plan, run_dir, args, num_processes, device, batch_size, overwrite, not no_progress, acceleration,
                  lock_token, options)
        if not _is_main_process():
            return
        images_dir = images_dir_of(run_dir)
        result = score_images(plan.benchmark, plan.samples, images_dir, options, strict=strict)
        record, path = record_run(
            run_dir, plan.benchmark, plan.samples, plan.num_available, plan.limit, result, images_dir,
            model=model_record(plan.card, plan.checkpoint), settings=plan.settings, batch_size=batch_size,
            precision=acceleration.resolved(device),
            device=device, num_processes=max(num_processes, int(os.environ.get("WORLD_SIZE", "1"))),
            warnings=plan.warnings(),
        )
        _write_sample_grid(run_dir)
    _print_table(record, path)
    check_scored(record, path)


@app.command("generate")
def generate(
    benchmark: str = typer.Argument(..., help="Benchmark name (see `mqeval ls benchmarks`)."),
    model: str = MODEL, limit: Optional[int] = LIMIT, out: Optional[Path] = OUT,
    num_processes: int = NUM_PROCESSES, batch_size: Optional[int] = BATCH_SIZE,
    checkpoint: Optional[Path] = CHECKPOINT,
    device: str = DEVICE, data_dir: Optional[Path] = DATA_DIR, seed: Optional[int] = SEED,
    num_inference_steps: Optional[int] = STEPS, guidance_scale: Optional[float] = GUIDANCE,
    overwrite: bool = OVERWRITE, no_progress: bool = NO_PROGRESS, precision: str = PRECISION,
    compile_: bool = COMPILE,
    no_warnings: bool = typer.Option(False, "--no-warnings", hidden=True),
) -> None:
    """Generate a benchmark's images in its official layout (resumable; no scoring)."""
    from mqeval.generation.lock import run_lock
    from mqeval.paths import default_run_dir
    from mqeval.preflight import preflight

    acceleration = _acceleration(precision, compile_)
    plan = _plan(benchmark, model, limit, data_dir, checkpoint, seed, num_inference_steps, guidance_scale,
                 show_warnings=not no_warnings)
    run_dir = out or default_run_dir(benchmark, plan.card.name)
    batch_size = _batch_size(batch_size, device, plan)
    args = _generate_args(benchmark, model, run_dir, limit, num_processes, batch_size, checkpoint, device, data_dir,
                          seed, num_inference_steps, guidance_scale, overwrite, no_progress, acceleration)
    with run_lock(run_dir, enabled=_is_main_process()) as lock_token:
        if lock_token is not None:
            preflight(plan, run_dir, batch_size, None)  # no scorer checks
        _generate(plan, run_dir, args, num_processes, device, batch_size, overwrite, not no_progress, acceleration,
                  lock_token)


@app.command("score")
def score(
    benchmark: str = typer.Argument(..., help="Benchmark name (see `mqeval ls benchmarks`)."),
    images: Path = typer.Option(..., "--images", help="A run folder, or a folder in the benchmark's official layout."),
    out: Optional[Path] = typer.Option(None, "--out", help="Where results go (default: the run folder; for a folder "
                                       "mqeval did not generate, runs/<benchmark>/scored-<folder>-<hash>)."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Card that made the images, if not recorded."),
    limit: Optional[int] = LIMIT, device: str = DEVICE, data_dir: Optional[Path] = DATA_DIR,
    batch_size: int = typer.Option(16, "--batch-size", help="Scorer batch size."),
    backend: Optional[str] = BACKEND, judge_base_url: Optional[str] = JUDGE_URL,
    judge_model: Optional[str] = JUDGE_MODEL, weights_path: Optional[str] = WEIGHTS, strict: bool = STRICT,
    judge_allow_http_key: bool = HTTP_KEY,
    detector_weights: Optional[str] = DETECTOR_WEIGHTS,
) -> None:
    """Score existing images; writes results.json + samples.jsonl and prints the scores."""
    from mqeval.benchmarks.catalog import load_benchmark
    from mqeval.generation.lock import run_lock
    from mqeval.origin import images_origin
    from mqeval.results.record import model_record, record_run
    from mqeval.evaluation.orchestrator import check_scored, score_images, select_samples, warn

    bench = load_benchmark(benchmark)
    samples, total = select_samples(bench, limit, str(data_dir) if data_dir else None)
    origin = images_origin(Path(images), bench, samples, model)
    warnings = list(origin.warnings)
    if limit is not None and len(samples) < total:
        warnings.append(f"--limit {limit}: {len(samples)} of {total} samples; "
                        "not comparable with full-benchmark numbers")
    if origin.card is not None and origin.settings is not None:
        from mqeval.generation.settings import deviations

        warnings += deviations(origin.card, origin.settings, samples, bench.name, bench.spec.variant_of)
    for message in warnings:
        warn(message)
    options = _score_options(device, backend, judge_base_url, judge_model, weights_path, data_dir, batch_size,
                             judge_allow_http_key, origin.settings.resolution if origin.settings else None,
                             detector_weights)
    with run_lock(out or origin.run_dir):
        result = score_images(bench, samples, origin.images_dir, options, strict=strict)
        record, path = record_run(
            out or origin.run_dir, bench, samples, total, limit, result, origin.images_dir,
            model=model_record(origin.card, None, origin.checkpoint_sha256), settings=origin.settings,
            batch_size=origin.batch_size, device=device, num_processes=1, warnings=warnings,
        )
    _print_table(record, path)
    check_scored(record, path)


def _register_area_commands() -> None:
    from mqeval.reports.commands import register as register_reports
    from mqeval.scorers.commands import register as register_scorers
    from mqeval.train.commands import register as register_train

    register_train(app)
    register_reports(app)
    register_scorers(app)


_register_area_commands()

if __name__ == "__main__":
    app()
