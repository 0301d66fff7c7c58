"""Any set of runs as tables (one table per comparable group), and a paired comparison of two runs."""
from __future__ import annotations

from collections import defaultdict

from mqeval.extras import require
from mqeval.reports.intervals import IntervalCache, resolve_aggregate
from mqeval.results.compat import CompatKey
from mqeval.results.run import Run
from mqeval.reports.stats import PairingError, check_pairable, paired_bootstrap
from mqeval.reports.table_report import TableReport


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def build_runs_report(runs: list[Run], cache: IntervalCache) -> list[TableReport]:
    pd = require("pandas", "reports", "Run tables")

    groups: dict[CompatKey, list[Run]] = defaultdict(list)
    for run in runs:
        groups[run.compat_key].append(run)
    keys = sorted(groups, key=lambda k: (k.benchmark, k.short()))
    reports = []
    for key in keys:
        members = sorted(groups[key], key=lambda r: (r.card, r.created, r.run_id))
        metrics = sorted({m for r in members for m, v in r.metrics.items() if isinstance(v, (int, float))})
        hib = {m: r.higher_is_better.get(m, True) for r in members for m in r.metrics}
        display, records, notes = {}, [], []
        for run in members:
            intervals, why = cache.get(run)
            if why and why not in notes:
                notes.append(f"{run.run_id}: {why}")
            line = {"card": run.card, "samples": str(len(run.samples)), "warnings": str(len(run.warnings))}
            notes += [f"{run.run_id}: {w}" for w in run.warnings if f"{run.run_id}: {w}" not in notes]
            for m in metrics:
                value = run.metrics.get(m)
                head = f"{m} {'↑' if hib.get(m, True) else '↓'}"
                if not isinstance(value, (int, float)):
                    line[head] = "-"
                    continue
                ci = intervals.get(m)
                line[head] = _fmt(value) + (f" [{_fmt(ci.low)}, {_fmt(ci.high)}]" if ci else "")
                records.append({
                    "run_id": run.run_id, "card": run.card, "checkpoint": run.checkpoint, "benchmark": key.benchmark,
                    "benchmark_version": key.version,
                    "prompt_set": key.prompt_set, "scorer": f"{key.scorer} {key.scorer_version}".strip(), "metric": m,
                    "higher_is_better": hib.get(m, True), "value": value,
                    "ci_low": ci.low if ci else None, "ci_high": ci.high if ci else None,
                    "num_samples": len(run.samples),
                })
            display[run.run_id] = line
        same_benchmark = [k for k in keys if k.benchmark == key.benchmark and k != key]
        for other in same_benchmark:
            notes.append(f"Not in one table with the {key.benchmark} runs of [{other.short()}]: "
                         f"{key.describe_difference(other)}.")
        frame = pd.DataFrame.from_dict(display, orient="index")
        frame.index.name = "run"
        reports.append(TableReport(f"Runs: {key.short()}", frame, pd.DataFrame.from_records(records), notes,
                                   f"{key.benchmark}_{len(reports)}", runs=members))
    return reports


def build_comparison(a: Run, b: Run, cache: IntervalCache) -> TableReport:
    """Paired bootstrap of A - B over the matched samples; refuses runs that are not the same evaluation."""
    pd = require("pandas", "reports", "Run comparisons")

    if a.compat_key != b.compat_key:
        raise PairingError(f"Runs {a.run_id} and {b.run_id} are not the same evaluation: "
                           f"{a.compat_key.describe_difference(b.compat_key)}")
    if a.samples and b.samples:
        check_pairable(a.samples, b.samples)
    elif a.samples or b.samples:
        raise PairingError("Only one of the two runs has per-sample records: it cannot be paired")
    aggregate, why = resolve_aggregate(a, cache.lookup)
    metrics = [m for m, v in a.metrics.items()
               if isinstance(v, (int, float)) and isinstance(b.metrics.get(m), (int, float))]
    hib = {m: a.higher_is_better.get(m, True) for m in metrics}
    opts = cache.options
    paired = {}
    if aggregate is not None and opts.enabled:
        paired = paired_bootstrap(a.per_sample(), b.per_sample(), aggregate, hib, metrics, opts.n_resamples, opts.level,
                                  opts.seed)
    display, records = {}, []
    for m in metrics:
        line = {"A": _fmt(a.metrics[m]), "B": _fmt(b.metrics[m]), "A - B": f"{a.metrics[m] - b.metrics[m]:+.4g}"}
        record = {"metric": m, "higher_is_better": hib[m], "a": a.metrics[m], "b": b.metrics[m],
                  "difference": a.metrics[m] - b.metrics[m], "ci_low": None, "ci_high": None, "prob_a_better": None}
        if m in paired:
            p = paired[m]
            line["95% CI of A - B"] = f"[{p.difference.low:+.4g}, {p.difference.high:+.4g}]"
            line["P(A better)"] = f"{p.prob_a_better:.3f}"
            a_better = p.difference.point * (1 if p.higher_is_better else -1) > 0
            line["verdict"] = ("A better" if a_better else "B better") if p.significant else "no clear difference"
            record.update(ci_low=p.difference.low, ci_high=p.difference.high, prob_a_better=p.prob_a_better)
        else:
            line["95% CI of A - B"], line["P(A better)"], line["verdict"] = "no CI", "", ""
        display[f"{m} {'↑' if hib[m] else '↓'}"] = line
        records.append(record)
    frame = pd.DataFrame.from_dict(display, orient="index")
    frame.index.name = "metric"
    notes = [
        f"A = {a.run_id} ({a.card}), B = {b.run_id} ({b.card}); {a.compat_key.short()}; "
        f"{len(a.samples)} paired samples, same prompts and seeds.",
    ]
    notes += [f"{name} = {run.run_id}: {w}" for name, run in (("A", a), ("B", b)) for w in run.warnings]
    if paired:
        notes.append(f"Paired bootstrap over samples: {opts.n_resamples} resamples, seed {opts.seed}; "
                     "P(A better) counts ties as one half; a verdict needs the CI to exclude 0.")
    elif why:
        notes.append(why)
    return TableReport(f"Compare {a.run_id} vs {b.run_id}", frame, pd.DataFrame.from_records(records), notes, "compare",
                       runs=[a, b])
