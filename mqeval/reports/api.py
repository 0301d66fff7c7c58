"""What the report commands do, as plain functions (the CLI and tests call these)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

from mqeval.errors import UserError
from mqeval.fileio import atomic_open
from mqeval.paths import PAPER_RESULTS_DIR
from mqeval.reports.intervals import (
    BenchmarkLookup,
    IntervalCache,
    StatsOptions,
    default_lookup,
)
from mqeval.reports.paper_table import (
    TableReport,
    ZooIndex,
    build_paper_table,
    build_small_scale_table,
    zoo_index,
)
from mqeval.reports.render import render
from mqeval.results.run import Run, find_runs, read_run
from mqeval.reports.specs import TABLES, table_spec

ABLATION_TABLES = (1, 2, 3, 7)


def load_runs_or_none(dirs: Sequence[Path], default: Optional[Path] = None) -> tuple[list[Run], list[str]]:
    """Runs under `dirs`; the default folder may be absent (then no run exists yet), a named one may not."""
    if not dirs and default is not None:
        if not default.exists():
            return [], [f"No runs folder at {default}: every measured cell is 'not run'."]
        dirs = [default]
    problems: list[str] = []
    return find_runs(dirs, problems), problems


def paper_report(
    runs: list[Run],
    tables: Optional[Sequence[int]] = None,
    stats: StatsOptions = StatsOptions(),
    lookup: BenchmarkLookup = default_lookup,
    paper_dir: Path = PAPER_RESULTS_DIR,
    zoo: Optional[ZooIndex] = None,
) -> list[TableReport]:
    cache = IntervalCache(lookup, stats)
    zoo = zoo or zoo_index()
    cards = zoo.paper
    specs = [table_spec(n) for n in tables] if tables else list(TABLES)
    reports = []
    for spec in specs:
        reports.append(build_paper_table(spec, runs, cache, cards, paper_dir))
        small = build_small_scale_table(spec, runs, cache, zoo)
        if small is not None:
            reports.append(small)
    return reports


def runs_report(
    dirs: Sequence[Path], stats: StatsOptions = StatsOptions(), lookup: BenchmarkLookup = default_lookup
) -> list[TableReport]:
    from mqeval.reports.run_tables import build_runs_report

    problems: list[str] = []
    runs = find_runs(dirs, problems)
    if not runs:
        raise UserError(f"No readable runs (folders with results.json) under {', '.join(map(str, dirs))}. "
                        f"{' '.join(problems)}")
    reports = build_runs_report(runs, IntervalCache(lookup, stats))
    reports[-1].notes.extend(problems)
    return reports


def compare_report(
    a: Path, b: Path, stats: StatsOptions = StatsOptions(), lookup: BenchmarkLookup = default_lookup
) -> TableReport:
    from mqeval.reports.run_tables import build_comparison

    return build_comparison(read_run(a), read_run(b), IntervalCache(lookup, stats))


def emit(
    reports: list[TableReport], fmt: str, out: Optional[Path], figures: bool = True, notes: Sequence[str] = ()
) -> str:
    """Render; with `out`, write it (and the pictures next to it) and return the text as well."""
    if reports:  # report-wide notes go under the first table
        reports[0].notes.extend(n for n in notes if n not in reports[0].notes)
    if out is not None and figures:
        from mqeval.reports.figures import write_figures

        bars = [f"table{n}" for n in ABLATION_TABLES] + [f"table{n}_small_scale" for n in ABLATION_TABLES]
        write_figures(reports, out.parent, out.stem, bars)
    text = render(reports, fmt)
    if out is not None:
        with atomic_open(out, "w", encoding="utf-8") as handle:
            handle.write(text)
    return text
