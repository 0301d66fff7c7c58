"""CLI commands of mqeval.reports, attached to the main typer app by `register`.
Import-light: no torch or pandas here."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

FORMAT_HELP = "terminal | markdown | latex | csv (tidy, one line per cell) | html"
DEFAULT_RUNS = Path("runs")
# Options shared word for word by the commands below (those whose help differs stay inline).
FORMAT = typer.Option("terminal", "--format", "-f", help=FORMAT_HELP)
SEED = typer.Option(0, help="Seed of the bootstrap.")
NO_CI = typer.Option(False, "--no-ci", help="Skip confidence intervals.")
RESAMPLES = typer.Option(1000, help="Bootstrap resamples per run.")


def _stats(resamples: int, seed: int, no_ci: bool):
    from mqeval.reports.intervals import StatsOptions

    return StatsOptions(n_resamples=resamples, seed=seed, enabled=not no_ci)


def _output(reports, fmt: str, out: Optional[Path], figures: bool, notes=()) -> None:
    from mqeval.reports.api import emit

    text = emit(reports, fmt, out, figures, notes)
    if out is None:
        typer.echo(text)
    else:
        typer.echo(f"wrote {out}")
        for report in reports:
            for figure in report.figures:
                typer.echo(f"wrote {figure}")


def report_paper(
    table: Optional[List[int]] = typer.Option(
        None, "--table", "-t", help="Paper table number 1-7 (repeatable; default all)."
    ),
    runs: Optional[List[Path]] = typer.Option(
        None, "--runs", help=f"Runs folder(s) to read (default ./{DEFAULT_RUNS})."
    ),
    fmt: str = FORMAT,
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Write here; pictures go next to it."),
    resamples: int = RESAMPLES,
    seed: int = SEED,
    no_ci: bool = NO_CI,
    figures: bool = typer.Option(True, "--figures/--no-figures", help="Bar charts and image grids next to --out."),
) -> None:
    """The paper's Tables 1-7: published vs measured numbers (95% CI) and their difference."""
    from mqeval.reports.api import load_runs_or_none, paper_report

    found, notes = load_runs_or_none(runs or [], DEFAULT_RUNS)
    _output(paper_report(found, table, _stats(resamples, seed, no_ci)), fmt, out, figures, notes)


def report_runs(
    dirs: List[Path] = typer.Argument(..., help="Run folders, or folders holding runs."),
    fmt: str = FORMAT,
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Write here; image grids go next to it."),
    resamples: int = RESAMPLES,
    seed: int = SEED,
    no_ci: bool = NO_CI,
    figures: bool = typer.Option(True, "--figures/--no-figures", help="Image grids next to --out."),
) -> None:
    """Any set of runs as tables with 95% bootstrap CIs; runs of different benchmark/scorer versions never share one."""
    from mqeval.reports.api import runs_report

    _output(runs_report(dirs, _stats(resamples, seed, no_ci)), fmt, out, figures)


def compare(
    run_a: Path = typer.Argument(..., help="Run folder A."),
    run_b: Path = typer.Argument(..., help="Run folder B (same benchmark, prompts and seeds)."),
    fmt: str = FORMAT,
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Write here; an image grid goes next to it."),
    resamples: int = typer.Option(1000, help="Paired bootstrap resamples."),
    seed: int = SEED,
    figures: bool = typer.Option(True, "--figures/--no-figures", help="Image grid of A and B next to --out."),
) -> None:
    """Paired comparison of two runs on the same prompts and seeds: A - B with its 95% CI and P(A better)."""
    from mqeval.reports.api import compare_report

    _output([compare_report(run_a, run_b, _stats(resamples, seed, False))], fmt, out, figures)


def register(app: typer.Typer) -> None:
    """Add `report paper`, `report runs` and `compare` to the main app."""
    report = typer.Typer(help="Tables of the paper and of any runs (pandas; terminal, Markdown, LaTeX, CSV, HTML).",
                         no_args_is_help=True)
    report.command("paper")(report_paper)
    report.command("runs")(report_runs)
    app.add_typer(report, name="report")
    app.command("compare")(compare)
