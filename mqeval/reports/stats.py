"""Bootstrap confidence intervals over prompts and paired comparisons of two runs on the same prompts and seeds.

Every statistic recomputes the benchmark's own metrics with its pure `aggregate(per_sample)` on resampled
per-sample records, so a CI is the CI of exactly the number the benchmark reports (means of means, weighted
categories, x100 scales included). Resampling uses a seeded numpy Generator: the same inputs give the same intervals.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np

from mqeval.errors import UserError

Aggregate = Callable[[list[dict[str, Any]]], Mapping[str, float]]

# Metrics mean nothing beyond this many decimals; rounding makes "A = B + c" give a difference of exactly c.
_DECIMALS = 12
# Records sharing a value of one of these fields are one resampling unit (CommonsenseT2I scores prompt *pairs*:
# resampling its two prompts independently would break pairs).
CLUSTER_FIELDS = ("pair",)


class PairingError(UserError):
    """Two runs cannot be compared sample by sample (different prompts, seeds or benchmark)."""


@dataclass(frozen=True)
class Interval:
    point: float  # the metric on all records
    low: float
    high: float
    level: float
    n_resamples: int

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


@dataclass(frozen=True)
class PairedDifference:
    metric: str
    higher_is_better: bool
    a: float
    b: float
    difference: Interval  # of a - b
    prob_a_better: float  # P(A beats B) over paired resamples; ties count one half
    num_samples: int

    @property
    def significant(self) -> bool:
        """The interval of the difference excludes zero."""
        return self.difference.low > 0 or self.difference.high < 0


def resampling_units(records: Sequence[dict]) -> list[list[int]]:
    """Record positions grouped into resampling units: one per record, or per shared CLUSTER_FIELDS value."""
    units: dict[Any, list[int]] = {}
    for i, record in enumerate(records):
        key = next(((f, _hashable(record[f])) for f in CLUSTER_FIELDS if f in record), ("#", i))
        units.setdefault(key, []).append(i)
    return list(units.values())


def _hashable(value: Any) -> Any:
    return repr(value) if isinstance(value, (list, dict)) else value


def _resamples(units: list[list[int]], n_resamples: int, seed: int) -> list[list[int]]:
    if not units:
        raise UserError("Cannot bootstrap a run with no per-sample records")
    picks = np.random.default_rng(seed).integers(0, len(units), size=(n_resamples, len(units)))
    return [[i for u in row for i in units[u]] for row in picks]


def _metric_matrix(
    records: Sequence[dict], resamples: list[list[int]], aggregate: Aggregate, metrics: Sequence[str]
) -> np.ndarray:
    """Metrics of each resample; NaN where a resample lacks a metric (e.g. a GenEval task drawn zero times)."""
    out = np.empty((len(resamples), len(metrics)))
    for i, idx in enumerate(resamples):
        values = aggregate([records[j] for j in idx])
        out[i] = [values.get(m, np.nan) for m in metrics]
    return out


def _interval(point: float, draws: np.ndarray, level: float) -> Interval:
    tail = (1.0 - level) / 2.0 * 100.0
    finite = draws[np.isfinite(draws)]
    if not len(finite):
        return Interval(float(point), float("nan"), float("nan"), level, 0)
    low, high = np.percentile(finite, [tail, 100.0 - tail])
    return Interval(float(point), float(low), float(high), level, len(finite))


def bootstrap_ci(
    records: Sequence[dict],
    aggregate: Aggregate,
    metrics: Optional[Sequence[str]] = None,
    n_resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, Interval]:
    """Percentile bootstrap CI of every metric, resampling per-sample records (prompts) with replacement.

    NaN bounds (and n_resamples 0) when no resample yields the metric."""
    point = dict(aggregate(list(records)))
    metrics = list(metrics or point)
    draws = _metric_matrix(records, _resamples(resampling_units(records), n_resamples, seed), aggregate, metrics)
    return {m: _interval(point[m], draws[:, k], level) for k, m in enumerate(metrics)}


def check_pairable(a: Sequence[dict], b: Sequence[dict]) -> list[str]:
    """The shared sample ids in A's order; PairingError unless both runs hold the same prompts with the same seeds."""
    by_id_a = {r["sample_id"]: r for r in a}
    by_id_b = {r["sample_id"]: r for r in b}
    if len(by_id_a) != len(a) or len(by_id_b) != len(b):
        raise PairingError("A run holds the same sample_id twice; its samples.jsonl is corrupt")
    if set(by_id_a) != set(by_id_b):
        only_a, only_b = sorted(set(by_id_a) - set(by_id_b)), sorted(set(by_id_b) - set(by_id_a))
        raise PairingError(
            f"The runs hold different samples ({len(only_a)} only in A, e.g. {only_a[:3]}; {len(only_b)} only in B, "
            f"e.g. {only_b[:3]}): a paired comparison needs the same prompts. Re-run with the same --limit."
        )
    for sid, rec in by_id_a.items():
        other = by_id_b[sid]
        for key in ("prompt", "seeds"):
            if key in rec and key in other and rec[key] != other[key]:
                raise PairingError(
                    f"Sample '{sid}' has a different {key} in the two runs ({rec[key]!r} vs {other[key]!r}): "
                    "a paired comparison needs the same prompts and seeds."
                )
    return list(by_id_a)


def paired_bootstrap(
    a: Sequence[dict],
    b: Sequence[dict],
    aggregate: Aggregate,
    higher_is_better: Mapping[str, bool],
    metrics: Optional[Sequence[str]] = None,
    n_resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, PairedDifference]:
    """Resample the matched sample ids once per draw and score both runs on that same draw."""
    ids = check_pairable(a, b)
    by_id_a = {r["sample_id"]: r for r in a}
    by_id_b = {r["sample_id"]: r for r in b}
    rec_a, rec_b = [by_id_a[i] for i in ids], [by_id_b[i] for i in ids]
    point_a, point_b = dict(aggregate(rec_a)), dict(aggregate(rec_b))
    # A metric the aggregate does not produce on the full records (e.g. a task with no samples) has no comparison.
    metrics = [m for m in (metrics or point_a) if m in point_a and m in point_b]
    resamples = _resamples(resampling_units(rec_a), n_resamples, seed)
    diff = np.round(
        _metric_matrix(rec_a, resamples, aggregate, metrics) - _metric_matrix(rec_b, resamples, aggregate, metrics),
        _DECIMALS,
    )
    out = {}
    for k, m in enumerate(metrics):
        hib = higher_is_better.get(m, True)
        column = diff[:, k][np.isfinite(diff[:, k])]
        better = column if hib else -column
        prob = float(np.mean(better > 0) + 0.5 * np.mean(better == 0)) if len(better) else float("nan")
        point = round(point_a[m] - point_b[m], _DECIMALS)
        out[m] = PairedDifference(m, hib, point_a[m], point_b[m], _interval(point, diff[:, k], level), prob, len(ids))
    return out
