"""The `mqeval` command line. Thin: parsing and printing; the work lives in mqeval.evaluation (the evaluators).

Nothing at module level imports torch, so `mqeval --help` and `mqeval ls` start fast. Every failure ends in one
`Error: ...` line on stderr and a non-zero exit code, never a traceback (mqeval.cli_errors).
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

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
# Each option is declared once, as a type alias; a command lists the aliases it takes, and the values are packed
# into the typed request (EvaluationRequest, with ScoringRequest, JudgeOptions, ...) in the command body.
Model = Annotated[str, typer.Option("--model", "-m", help="Model card name (see `mqeval ls models`) or a card .yaml "
                                    "file.")]
Limit = Annotated[Optional[int], typer.Option("--limit", help="Only the first N samples of the benchmark's global "
                                              "order.")]
Out = Annotated[Optional[Path], typer.Option("--out", help="Run folder (default: runs/<benchmark>/<model>/).")]
NumProcesses = Annotated[int, typer.Option("--num-processes", help="Generate in K processes (workers started "
                                           "through torchrun).")]
BatchSize = Annotated[Optional[int], typer.Option(
    "--batch-size", help="Images per forward pass (images may differ by float rounding); default: 16 on CPU, from "
    "the resolution and memory on CUDA (docs/speed.md).")]
Precision = Annotated[str, typer.Option("--precision", help="auto (fp32 on CPU, bf16 autocast on CUDA), fp32, bf16 "
                                        "or fp16.")]
Compile = Annotated[bool, typer.Option("--compile", help="torch.compile the denoiser (the first batch compiles).")]
Checkpoint = Annotated[Optional[Path], typer.Option("--checkpoint", help="Checkpoint folder to use instead of the "
                                                    "card's.")]
Device = Annotated[str, typer.Option("--device", help="cpu or cuda.")]
DataDir = Annotated[Optional[Path], typer.Option("--data-dir", help="Local copy of the benchmark's data files.")]
Seed = Annotated[Optional[int], typer.Option("--seed", help="Override the protocol's global seed (recorded as a "
                                             "deviation).")]
Steps = Annotated[Optional[int], typer.Option("--num-inference-steps", help="Override the number of sampling steps "
                                              "(a deviation).")]
Guidance = Annotated[Optional[float], typer.Option("--guidance-scale", help="Override the guidance scale (a "
                                                   "deviation).")]
Overwrite = Annotated[bool, typer.Option("--overwrite", help="Delete the run folder's images and generate all "
                                         "again.")]
NoProgress = Annotated[bool, typer.Option("--no-progress", help="No progress bar.")]
Backend = Annotated[Optional[str], typer.Option("--backend", help="Scorer backend (detector / VQA), where the "
                                                "benchmark has several.")]
JudgeUrl = Annotated[Optional[str], typer.Option("--judge-base-url", help="OpenAI-compatible endpoint of the judge "
                                                 "model.")]
JudgeModel = Annotated[Optional[str], typer.Option("--judge-model", help="Judge model name at that endpoint.")]
Weights = Annotated[Optional[str], typer.Option("--weights-path", help="Local scorer weights (detector, Inception, "
                                                "...).")]
Strict = Annotated[bool, typer.Option(
    "--strict", help="Refuse to record a result with missing or unusable images or unanswered judge requests (by "
    "default they are scored as the official script does, counted and the result marked incomplete).")]
HttpKey = Annotated[bool, typer.Option("--judge-allow-http-key", help="Send the judge API key over plain http to "
                                       "another machine (by default it goes only over https or to this machine).")]
JudgeTimeout = Annotated[Optional[float], typer.Option(
    "--judge-timeout", help="Seconds per judge request attempt (default 120; up to 3 attempts). A smaller value "
    "makes an endpoint that never answers fail sooner.")]
DetectorWeights = Annotated[Optional[str], typer.Option(
    "--detector-weights", help="GenEval's hf-mask2former weights: official (default, converted mmdet) or hf.")]
Adapter = Annotated[Optional[str], typer.Option("--adapter", help="Understanding suites: force 'mqeval' (mqeval's "
                                                "adapter on the loaded backbone) or an lmms-eval model name.")]
Benchmark = Annotated[str, typer.Argument(help="Benchmark name (see `mqeval ls benchmarks`).")]


def _sampling(seed, steps, guidance, precision: str, compile_: bool):
    """The sampling overrides and the acceleration, as the request holds them."""
    from mqeval.generation.acceleration import Acceleration
    from mqeval.generation.settings import SettingOverrides

    return (SettingOverrides(seed=seed, num_inference_steps=steps, guidance_scale=guidance),
            Acceleration(precision=precision, compile=compile_))


def _scoring(backend, weights_path, strict: bool, judge_base_url, judge_model, judge_allow_http_key: bool,
             judge_timeout, detector_weights, batch_size: int = 16):
    from mqeval.contract.scoring import DetectorOptions, JudgeOptions
    from mqeval.evaluation.request import ScoringRequest

    judge = JudgeOptions(base_url=judge_base_url, model=judge_model, allow_http_key=judge_allow_http_key,
                         timeout_s=judge_timeout)
    return ScoringRequest(backend=backend, weights_path=weights_path, judge=judge,
                          detector=DetectorOptions(weights=detector_weights), batch_size=batch_size, strict=strict)


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
    benchmark: Benchmark, model: Model, limit: Limit = None, out: Out = None, num_processes: NumProcesses = 1,
    batch_size: BatchSize = None, checkpoint: Checkpoint = None, device: Device = "cpu", data_dir: DataDir = None,
    seed: Seed = None, num_inference_steps: Steps = None, guidance_scale: Guidance = None,
    overwrite: Overwrite = False, no_progress: NoProgress = False, precision: Precision = "auto",
    compile_: Compile = False, backend: Backend = None, judge_base_url: JudgeUrl = None,
    judge_model: JudgeModel = None, weights_path: Weights = None, strict: Strict = False,
    judge_allow_http_key: HttpKey = False, detector_weights: DetectorWeights = None, adapter: Adapter = None,
    judge_timeout: JudgeTimeout = None,
) -> None:
    """Evaluate a model card on a benchmark and record results.json + samples.jsonl; print the scores.

    Image benchmarks generate the images (resumable) and score them; understanding suites ask the model (lmms-eval).
    """
    from mqeval.evaluation.kinds import evaluator_for
    from mqeval.evaluation.request import EvaluationRequest

    overrides, acceleration = _sampling(seed, num_inference_steps, guidance_scale, precision, compile_)
    request = EvaluationRequest(
        benchmark=benchmark, model=model, limit=limit, out=out, checkpoint=checkpoint, data_dir=data_dir,
        device=device, overrides=overrides, num_processes=num_processes, batch_size=batch_size, overwrite=overwrite,
        progress=not no_progress, acceleration=acceleration, adapter=adapter,
        scoring=_scoring(backend, weights_path, strict, judge_base_url, judge_model, judge_allow_http_key,
                         judge_timeout, detector_weights),
    )
    recorded = evaluator_for(benchmark).run(request)
    if recorded is not None:  # None: a non-main process of the user's own distributed launch
        _show_result(*recorded)


@app.command("generate")
def generate(
    benchmark: Benchmark, model: Model, limit: Limit = None, out: Out = None, num_processes: NumProcesses = 1,
    batch_size: BatchSize = None, checkpoint: Checkpoint = None, device: Device = "cpu", data_dir: DataDir = None,
    seed: Seed = None, num_inference_steps: Steps = None, guidance_scale: Guidance = None,
    overwrite: Overwrite = False, no_progress: NoProgress = False, precision: Precision = "auto",
    compile_: Compile = False,
) -> None:
    """Generate a benchmark's images in its official layout (resumable; no scoring)."""
    from mqeval.evaluation.request import EvaluationRequest

    overrides, acceleration = _sampling(seed, num_inference_steps, guidance_scale, precision, compile_)
    _image_evaluator().generate(EvaluationRequest(
        benchmark=benchmark, model=model, limit=limit, out=out, checkpoint=checkpoint, data_dir=data_dir,
        device=device, overrides=overrides, num_processes=num_processes, batch_size=batch_size, overwrite=overwrite,
        progress=not no_progress, acceleration=acceleration,
    ))


@app.command("score")
def score(
    benchmark: Benchmark,
    images: Annotated[Path, typer.Option("--images", help="A run folder, or a folder in the benchmark's official "
                                         "layout.")],
    out: Annotated[Optional[Path], typer.Option("--out", help="Where results go (default: the run folder; for a "
                                                "folder mqeval did not generate, "
                                                "runs/<benchmark>/scored-<folder>-<hash>).")] = None,
    model: Annotated[Optional[str], typer.Option("--model", "-m", help="Card that made the images, if not "
                                                 "recorded.")] = None,
    limit: Limit = None, device: Device = "cpu", data_dir: DataDir = None,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Scorer batch size.")] = 16,
    backend: Backend = None, judge_base_url: JudgeUrl = None, judge_model: JudgeModel = None,
    weights_path: Weights = None, strict: Strict = False, judge_allow_http_key: HttpKey = False,
    detector_weights: DetectorWeights = None, judge_timeout: JudgeTimeout = None,
) -> None:
    """Score existing images; writes results.json + samples.jsonl and prints the scores."""
    from mqeval.evaluation.request import EvaluationRequest

    request = EvaluationRequest(
        benchmark=benchmark, model=model, limit=limit, out=out, data_dir=data_dir, device=device,
        scoring=_scoring(backend, weights_path, strict, judge_base_url, judge_model, judge_allow_http_key,
                         judge_timeout, detector_weights, batch_size),
    )
    _show_result(*_image_evaluator().score(request, images))


def _register_area_commands() -> None:
    from mqeval.model.commands import register as register_model
    from mqeval.reports.commands import register as register_reports
    from mqeval.scorers.commands import register as register_scorers
    from mqeval.train.commands import register as register_train

    register_model(app)
    register_train(app)
    register_reports(app)
    register_scorers(app)


_register_area_commands()

if __name__ == "__main__":
    app()
