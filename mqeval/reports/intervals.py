"""Confidence intervals of a run's metrics through its benchmark plug-in's `aggregate` (or why there are none)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Optional

from mqeval.errors import UserError
from mqeval.results.run import Run
from mqeval.reports.stats import Aggregate, Interval, bootstrap_ci

# name -> Benchmark instance; the default loads benchmarks/<name>.yaml and its plug-in. Tests pass their own.
BenchmarkLookup = Callable[[str], object]


def default_lookup(name: str) -> object:
    from mqeval.benchmarks.catalog import load_plugin

    return load_plugin(name)


@dataclass(frozen=True)
class StatsOptions:
    n_resamples: int = 1000
    level: float = 0.95
    seed: int = 0
    enabled: bool = True


def resolve_aggregate(run: Run, lookup: BenchmarkLookup = default_lookup) -> tuple[Optional[Aggregate], str]:
    """The run's `aggregate`, or None and the reason shown instead of a CI."""
    try:
        bench = lookup(run.benchmark_name)
    except (UserError, ImportError) as exc:
        return None, f"no CI: benchmark '{run.benchmark_name}' cannot be loaded here ({exc})"
    if not getattr(bench, "aggregatable", False):
        return None, f"no CI: {run.benchmark_name} is not aggregatable from per-sample records (FID-like)"
    spec = getattr(bench, "spec", None)
    version = run.record.benchmark.version
    if spec is not None and version and str(spec.version) != version:
        return None, f"no CI: run used {run.benchmark_name} v{version}, this checkout has v{spec.version}"
    if not run.samples:
        return None, "no CI: the run has no per-sample records"
    return bench.aggregate, ""


@dataclass
class IntervalCache:
    """Bootstrap each run once per report."""

    lookup: BenchmarkLookup = default_lookup
    options: StatsOptions = field(default_factory=StatsOptions)
    _done: dict = field(default_factory=dict)

    def get(self, run: Run) -> tuple[dict[str, Interval], str]:
        key = str(run.path)
        if key not in self._done:
            self._done[key] = self._compute(run)
        return self._done[key]

    def _compute(self, run: Run) -> tuple[dict[str, Interval], str]:
        if not self.options.enabled:
            return {}, "CIs switched off"
        aggregate, reason = resolve_aggregate(run, self.lookup)
        if aggregate is None:
            return {}, reason
        metrics = [m for m in run.metrics if isinstance(run.metrics[m], (int, float))]
        try:
            intervals = bootstrap_ci(run.per_sample(), aggregate, None, self.options.n_resamples, self.options.level,
                                     self.options.seed)
        except (KeyError, ValueError, TypeError, ZeroDivisionError) as exc:
            return {}, f"no CI: aggregate failed on the per-sample records ({type(exc).__name__}: {exc})"
        stale = [m for m in metrics if m in intervals
                 and not math.isclose(intervals[m].point, run.metrics[m], rel_tol=1e-6, abs_tol=1e-9)]
        note = ""
        if stale:
            note = f"warning: aggregate() of the samples does not reproduce the stored {', '.join(stale)}"
        empty = [m for m in metrics if m in intervals and intervals[m].n_resamples == 0]
        if empty:
            note = (note + "; " if note else "") + f"no CI for {', '.join(empty)} (no resample yields it)"
        return {m: intervals[m] for m in metrics if m in intervals and m not in empty}, note
