"""The `mqeval` command line. Thin: parsing, printing and launching; the work lives in mqeval.runner.

Nothing at module level imports torch, so `mqeval --help` and `mqeval ls` start fast. A UserError anywhere becomes a
one-line message on stderr and exit code 2, without a traceback.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional

import typer

from mqeval.errors import UnknownNameError, UserError


class _App(typer.Typer):
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except UserError as exc:
            typer.echo(f"Error: {exc}", err=True)
            raise SystemExit(2) from None


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
BATCH_SIZE = typer.Option(4, "--batch-size", help="Images per forward pass (images may differ by float rounding).")
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
DETECTOR_WEIGHTS = typer.Option(None, "--detector-weights",
                                help="GenEval's hf-mask2former weights: official (default, converted mmdet) or hf.")


def _is_main_process() -> bool:
    return os.environ.get("RANK", "0") == "0"


def _overrides(seed: Optional[int], steps: Optional[int], guidance: Optional[float]):
    from mqeval.generation.settings import SettingOverrides

    return SettingOverrides(seed=seed, num_inference_steps=steps, guidance_scale=guidance)


def _score_options(device: str, backend, judge_base_url, judge_model, weights_path, data_dir, batch_size: int,
                   detector_weights: Optional[str] = None):
    from mqeval.benchmarks.base import ScoreOptions
    from mqeval.paths import cache_dir

    return ScoreOptions(
        cache_dir=cache_dir(), device=device, backend=backend, judge_base_url=judge_base_url,
        judge_model=judge_model, weights_path=weights_path, data_dir=str(data_dir) if data_dir else None,
        batch_size=batch_size, detector_weights=detector_weights,
    )


def _generate_args(benchmark: str, model: str, run_dir: Path, limit, num_processes: int, batch_size: int,
                   checkpoint, device: str, data_dir, seed, steps, guidance, overwrite: bool,
                   no_progress: bool) -> list[str]:
    """The `mqeval generate ...` arguments that reproduce these settings (what a re-launch runs in each process)."""
    args = ["generate", benchmark, "--model", model, "--out", str(run_dir), "--num-processes", str(num_processes),
            "--batch-size", str(batch_size), "--device", device]
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
              overwrite: bool, progress: bool) -> None:
    from mqeval.generation.distributed import check_device, in_distributed_launch, relaunch
    from mqeval.generation.manifest import check_manifest

    if num_processes < 1:
        raise UserError(f"--num-processes must be at least 1, got {num_processes}")
    if num_processes > 1 and not in_distributed_launch():
        # Catch user errors here, where they print as one line, rather than in every worker.
        check_device(device)
        if not overwrite:
            check_manifest(run_dir, plan.fingerprint())
        relaunch([*generate_args, "--no-warnings"], num_processes)  # this process has printed them already
        return
    from mqeval.runner import generate_images

    report = generate_images(plan, run_dir, device=device, batch_size=batch_size, overwrite=overwrite,
                             progress=progress)
    if report.rank == 0:
        typer.echo(f"{report.num_images} images in {report.images_dir} ({report.num_pending} generated, "
                   f"{report.num_images - report.num_pending} already there) in {report.seconds:.1f} s", err=True)


def _plan(benchmark, model, limit, data_dir, checkpoint, seed, steps, guidance, show_warnings: bool = True):
    from mqeval.runner import plan_run, warn

    plan = plan_run(benchmark, model, limit=limit, data_dir=data_dir, checkpoint=checkpoint,
                    overrides=_overrides(seed, steps, guidance))
    if show_warnings and _is_main_process():
        for message in plan.warnings():
            warn(message)
    return plan


def _print_table(record, results_path: Path) -> None:
    title = f"{record.benchmark.name} | {record.model.card or 'unknown model'} | {record.benchmark.num_samples} samples"
    width = max([len("metric")] + [len(k) for k in record.metrics])
    lines = [title, f"{'metric':<{width}}  {'value':>10}  better"]
    for key, value in record.metrics.items():
        lines.append(f"{key:<{width}}  {value:>10.4f}  {'higher' if record.higher_is_better[key] else 'lower'}")
    typer.echo("\n".join(lines))
    typer.echo(f"results: {results_path}", err=True)


def _write_sample_grid(run_dir: Path) -> None:
    """grid.png in the run folder: prompts spread over the benchmark's tasks, with their images and verdicts."""
    from mqeval.reports.figures import sample_grid
    from mqeval.reports.runs import read_run

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
    from mqeval.benchmarks.registry import load_spec, spec_paths

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
    num_processes: int = NUM_PROCESSES, batch_size: int = BATCH_SIZE, checkpoint: Optional[Path] = CHECKPOINT,
    device: str = DEVICE, data_dir: Optional[Path] = DATA_DIR, seed: Optional[int] = SEED,
    num_inference_steps: Optional[int] = STEPS, guidance_scale: Optional[float] = GUIDANCE,
    overwrite: bool = OVERWRITE, no_progress: bool = NO_PROGRESS, backend: Optional[str] = BACKEND,
    judge_base_url: Optional[str] = JUDGE_URL, judge_model: Optional[str] = JUDGE_MODEL,
    weights_path: Optional[str] = WEIGHTS, detector_weights: Optional[str] = DETECTOR_WEIGHTS,
) -> None:
    """Generate a benchmark's images, score them and write results.json + samples.jsonl; print the scores."""
    from mqeval.benchmarks.registry import load_spec
    from mqeval.runner import default_run_dir, model_record, record_run, score_images
    from mqeval.generation.runner import images_dir_of

    if load_spec(benchmark).plugin == "lmms-eval":  # understanding suites score the MLLM, not generated images
        from mqeval.benchmarks.understanding.evaluate import run_understanding

        record, path = run_understanding(benchmark, model, checkpoint=checkpoint, limit=limit, device=device,
                                         batch_size=batch_size, run_dir=out)
        _print_table(record, path)
        return
    plan = _plan(benchmark, model, limit, data_dir, checkpoint, seed, num_inference_steps, guidance_scale)
    run_dir = out or default_run_dir(benchmark, plan.card.name)
    args = _generate_args(benchmark, model, run_dir, limit, num_processes, batch_size, checkpoint, device, data_dir,
                          seed, num_inference_steps, guidance_scale, overwrite, no_progress)
    _generate(plan, run_dir, args, num_processes, device, batch_size, overwrite, not no_progress)
    if not _is_main_process():
        return
    images_dir = images_dir_of(run_dir)
    options = _score_options(device, backend, judge_base_url, judge_model, weights_path, data_dir, 16,
                             detector_weights)
    result = score_images(plan.benchmark, plan.samples, images_dir, options)
    record, path = record_run(
        run_dir, plan.benchmark, plan.samples, plan.num_available, plan.limit, result, images_dir,
        model=model_record(plan.card, plan.checkpoint), settings=plan.settings, batch_size=batch_size,
        device=device, num_processes=max(num_processes, int(os.environ.get("WORLD_SIZE", "1"))),
        warnings=plan.warnings(),
    )
    _print_table(record, path)
    _write_sample_grid(run_dir)


@app.command("generate")
def generate(
    benchmark: str = typer.Argument(..., help="Benchmark name (see `mqeval ls benchmarks`)."),
    model: str = MODEL, limit: Optional[int] = LIMIT, out: Optional[Path] = OUT,
    num_processes: int = NUM_PROCESSES, batch_size: int = BATCH_SIZE, checkpoint: Optional[Path] = CHECKPOINT,
    device: str = DEVICE, data_dir: Optional[Path] = DATA_DIR, seed: Optional[int] = SEED,
    num_inference_steps: Optional[int] = STEPS, guidance_scale: Optional[float] = GUIDANCE,
    overwrite: bool = OVERWRITE, no_progress: bool = NO_PROGRESS,
    no_warnings: bool = typer.Option(False, "--no-warnings", hidden=True),
) -> None:
    """Generate a benchmark's images in its official layout (resumable; no scoring)."""
    from mqeval.runner import default_run_dir

    plan = _plan(benchmark, model, limit, data_dir, checkpoint, seed, num_inference_steps, guidance_scale,
                 show_warnings=not no_warnings)
    run_dir = out or default_run_dir(benchmark, plan.card.name)
    args = _generate_args(benchmark, model, run_dir, limit, num_processes, batch_size, checkpoint, device, data_dir,
                          seed, num_inference_steps, guidance_scale, overwrite, no_progress)
    _generate(plan, run_dir, args, num_processes, device, batch_size, overwrite, not no_progress)


@app.command("score")
def score(
    benchmark: str = typer.Argument(..., help="Benchmark name (see `mqeval ls benchmarks`)."),
    images: Path = typer.Option(..., "--images", help="A run folder, or a folder in the benchmark's official layout."),
    out: Optional[Path] = typer.Option(None, "--out", help="Where results go (default: the run folder / --images)."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Card that made the images, if not recorded."),
    limit: Optional[int] = LIMIT, device: str = DEVICE, data_dir: Optional[Path] = DATA_DIR,
    batch_size: int = typer.Option(16, "--batch-size", help="Scorer batch size."),
    backend: Optional[str] = BACKEND, judge_base_url: Optional[str] = JUDGE_URL,
    judge_model: Optional[str] = JUDGE_MODEL, weights_path: Optional[str] = WEIGHTS,
    detector_weights: Optional[str] = DETECTOR_WEIGHTS,
) -> None:
    """Score existing images; writes results.json + samples.jsonl and prints the scores."""
    from mqeval.benchmarks.registry import load_benchmark
    from mqeval.errors import DataIntegrityError
    from mqeval.generation.manifest import MANIFEST_NAME, read_manifest
    from mqeval.generation.runner import IMAGES_DIRNAME
    from mqeval.runner import model_record, record_run, score_images, select_samples, settings_from_manifest, warn
    from mqeval.zoo import resolve_card

    bench = load_benchmark(benchmark)
    images = Path(images)
    if not images.is_dir():
        raise DataIntegrityError(f"--images {images} is not a folder")
    # A folder written by `mqeval generate`: <run>/generation.json + <run>/images/<layout>.
    if (images / MANIFEST_NAME).is_file() and (images / IMAGES_DIRNAME).is_dir():
        run_dir, images_dir = images, images / IMAGES_DIRNAME
    elif images.name == IMAGES_DIRNAME and (images.parent / MANIFEST_NAME).is_file():
        run_dir, images_dir = images.parent, images
    else:
        run_dir, images_dir = images, images
    manifest = read_manifest(run_dir) if run_dir != images_dir else None
    settings = settings_from_manifest(run_dir) if manifest else None
    card_name = model or (manifest or {}).get("model", {}).get("card")
    card = resolve_card(card_name) if card_name else None
    warnings = []
    if manifest is None:
        warnings.append("images of unknown origin: generation settings and seeds are not recorded")
    if card is not None and card.checkpoint.random_init:
        warnings.append(f"model '{card.name}' has random weights (random_init card): its scores are meaningless")
    if manifest and manifest.get("benchmark", {}).get("name") not in (None, benchmark):
        raise UserError(f"{run_dir} holds images of benchmark '{manifest['benchmark']['name']}', not '{benchmark}'")
    samples, total = select_samples(bench, limit, str(data_dir) if data_dir else None)
    if limit is not None and len(samples) < total:
        warnings.append(f"--limit {limit}: {len(samples)} of {total} samples; "
                        "not comparable with full-benchmark numbers")
    for message in warnings:
        warn(message)
    options = _score_options(device, backend, judge_base_url, judge_model, weights_path, data_dir, batch_size,
                             detector_weights)
    result = score_images(bench, samples, images_dir, options)
    sha = (manifest or {}).get("model", {}).get("checkpoint_sha256")
    record, path = record_run(
        out or run_dir, bench, samples, total, limit, result, images_dir,
        model=model_record(card, None, sha), settings=settings, batch_size=None, device=device,
        num_processes=1, warnings=warnings,
    )
    _print_table(record, path)


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
