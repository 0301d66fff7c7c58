"""The `mqeval` command line. Thin: parsing and printing; the work lives in mqeval.evaluation (the evaluators).

Nothing at module level imports torch, so `mqeval --help` and `mqeval ls` start fast. Every failure ends in one
`Error: ...` line on stderr and a non-zero exit code, never a traceback (mqeval.cli_errors).
"""
from __future__ import annotations

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
NUM_PROCESSES = typer.Option(1, "--num-processes", help="Generate in K processes (workers started through torchrun).")
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
JUDGE_TIMEOUT = typer.Option(None, "--judge-timeout", help="Seconds per judge request attempt (default 120; up to "
                             "3 attempts). A smaller value makes an endpoint that never answers fail sooner.")
DETECTOR_WEIGHTS = typer.Option(None, "--detector-weights",
                                help="GenEval's hf-mask2former weights: official (default, converted mmdet) or hf.")
ADAPTER = typer.Option(None, "--adapter", help="Understanding suites: force 'mqeval' (mqeval's adapter on the loaded "
                       "backbone) or an lmms-eval model name.")


def _request(benchmark: str, model: Optional[str], *, limit=None, out=None, checkpoint=None, data_dir=None,
             device: str = "cpu", seed=None, steps=None, guidance=None, num_processes: int = 1, batch_size=None,
             overwrite: bool = False, no_progress: bool = False, precision: str = "auto", compile_: bool = False,
             adapter=None, backend=None, judge_base_url=None, judge_model=None, weights_path=None,
             strict: bool = False, judge_allow_http_key: bool = False, detector_weights=None,
             judge_timeout=None, scorer_batch_size: int = 16):
    """The typed request the evaluators read, from the command's options."""
    from mqeval.evaluation.request import EvaluationRequest, ScoringRequest
    from mqeval.generation.acceleration import Acceleration
    from mqeval.generation.settings import SettingOverrides

    return EvaluationRequest(
        benchmark=benchmark, model=model, limit=limit, out=out, checkpoint=checkpoint, data_dir=data_dir,
        device=device, overrides=SettingOverrides(seed=seed, num_inference_steps=steps, guidance_scale=guidance),
        num_processes=num_processes, batch_size=batch_size, overwrite=overwrite, progress=not no_progress,
        acceleration=Acceleration(precision=precision, compile=compile_), adapter=adapter,
        scoring=ScoringRequest(backend=backend, judge_base_url=judge_base_url, judge_model=judge_model,
                               weights_path=weights_path, judge_allow_http_key=judge_allow_http_key,
                               detector_weights=detector_weights, judge_timeout_s=judge_timeout,
                               batch_size=scorer_batch_size, strict=strict),
    )


def _image_evaluator():
    from mqeval.evaluation.images import ImageEvaluator

    return ImageEvaluator()


def _show_result(record, results_path: Path) -> None:
    """The metrics, with `*` after every value of an incomplete result (a footnote says why); then a run that scored
    nothing at all becomes an error (mqeval.evaluation.scoring.check_scored)."""
    from mqeval.evaluation.scoring import check_scored

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
    check_scored(record, results_path)


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
    detector_weights: Optional[str] = DETECTOR_WEIGHTS, adapter: Optional[str] = ADAPTER,
    judge_timeout: Optional[float] = JUDGE_TIMEOUT,
) -> None:
    """Evaluate a model card on a benchmark and record results.json + samples.jsonl; print the scores.

    Image benchmarks generate the images (resumable) and score them; understanding suites ask the model (lmms-eval).
    """
    from mqeval.evaluation.kinds import evaluator_for

    request = _request(
        benchmark, model, limit=limit, out=out, checkpoint=checkpoint, data_dir=data_dir, device=device, seed=seed,
        steps=num_inference_steps, guidance=guidance_scale, num_processes=num_processes, batch_size=batch_size,
        overwrite=overwrite, no_progress=no_progress, precision=precision, compile_=compile_, adapter=adapter,
        backend=backend, judge_base_url=judge_base_url, judge_model=judge_model, weights_path=weights_path,
        strict=strict, judge_allow_http_key=judge_allow_http_key, detector_weights=detector_weights,
        judge_timeout=judge_timeout,
    )
    recorded = evaluator_for(benchmark).run(request)
    if recorded is not None:  # None: a non-main process of the user's own distributed launch
        _show_result(*recorded)


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
) -> None:
    """Generate a benchmark's images in its official layout (resumable; no scoring)."""
    request = _request(
        benchmark, model, limit=limit, out=out, checkpoint=checkpoint, data_dir=data_dir, device=device, seed=seed,
        steps=num_inference_steps, guidance=guidance_scale, num_processes=num_processes, batch_size=batch_size,
        overwrite=overwrite, no_progress=no_progress, precision=precision, compile_=compile_,
    )
    _image_evaluator().generate(request)


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
    detector_weights: Optional[str] = DETECTOR_WEIGHTS, judge_timeout: Optional[float] = JUDGE_TIMEOUT,
) -> None:
    """Score existing images; writes results.json + samples.jsonl and prints the scores."""
    request = _request(
        benchmark, model, limit=limit, out=out, data_dir=data_dir, device=device, backend=backend,
        judge_base_url=judge_base_url, judge_model=judge_model, weights_path=weights_path, strict=strict,
        judge_allow_http_key=judge_allow_http_key, detector_weights=detector_weights, scorer_batch_size=batch_size,
        judge_timeout=judge_timeout,
    )
    _show_result(*_image_evaluator().score(request, images))


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
