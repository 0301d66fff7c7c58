"""The run plan of an image benchmark: everything that determines a run's images, resolved once, before any model
is loaded, in the process the user started (worker processes receive it; they do not resolve it again).

`protocol_warnings` is the one place that says why a result is not the protocol's (random weights, --limit,
changed sampling settings); `run`, `score` and the understanding suites all record its lines.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

from mqeval.benchmarks.base import Benchmark
from mqeval.benchmarks.catalog import load_benchmark
from mqeval.contract.samples import Sample
from mqeval.dataclass_io import to_dict
from mqeval.errors import ConfigError
from mqeval.generation.settings import GenerationSettings, SettingOverrides, deviations, resolve_settings
from mqeval.model.card import ModelCard
from mqeval.model.kinds import kind_of
from mqeval.zoo import resolve_card


@dataclass(frozen=True)
class RunPlan:
    card: ModelCard
    benchmark: Benchmark
    samples: list[Sample]
    num_available: int  # samples in the benchmark before --limit
    limit: Optional[int]
    settings: GenerationSettings
    checkpoint: Optional[Path]  # MetaQuery: None for random-init cards; other kinds: the weights folder, if any
    checkpoint_sha256: Optional[str]  # of checkpoint/model.safetensors, hashed once when the plan is made
    overrides: SettingOverrides

    def fingerprint(self, batch_size: Optional[int] = None) -> dict[str, Any]:
        """What the images depend on; stored in generation.json so that a resume never mixes configurations.
        The batch size is part of it: batched kernels may round differently, and results record it."""
        extra = {"batch_size": batch_size} if batch_size is not None else {}
        return {**extra,
            "benchmark": {"name": self.benchmark.name, "version": self.benchmark.spec.version,
                          "data_sha256": self.benchmark.data_hashes()},
            "model": {**kind_of(self.card).fingerprint(self.card, self.checkpoint),
                      "checkpoint_sha256": self.checkpoint_sha256},
            "settings": to_dict(self.settings),
        }

    def warnings(self) -> list[str]:
        return protocol_warnings(self.card, self.benchmark, self.samples, self.num_available, self.limit,
                                 self.settings, self.overrides)


def protocol_warnings(card: Optional[ModelCard], benchmark: Any, samples: Sequence[Sample],
                      num_available: Optional[int], limit: Optional[int],
                      settings: Optional[GenerationSettings] = None,
                      overrides: Optional[SettingOverrides] = None) -> list[str]:
    """What makes a result's numbers not the benchmark protocol's. `benchmark` is an image benchmark or an
    understanding suite; `num_available` None: the sample count is not known here (lmms-eval holds the data)."""
    out = []
    if card is not None and card.checkpoint.random_init:
        out.append(f"model '{card.name}' has random weights (random_init card): its scores are meaningless")
    if limit is not None and (num_available is None or len(samples) < num_available):
        counts = f"{len(samples)} of {num_available} samples; " if num_available is not None else ""
        out.append(f"--limit {limit}: {counts}not comparable with full-benchmark numbers")
    if overrides is not None and overrides.describe():
        out.append(f"sampling settings differ from the benchmark protocol: {', '.join(overrides.describe())}")
    if card is not None and settings is not None:
        out += deviations(card, settings, samples, benchmark.name, benchmark.spec.variant_of)
    return out


def select_samples(benchmark: Benchmark, limit: Optional[int], data_dir: Optional[Path]) -> tuple[list[Sample], int]:
    check_limit(limit)
    samples = benchmark.samples(Path(data_dir) if data_dir else None)
    return (samples[:limit] if limit is not None else samples), len(samples)


def check_limit(limit: Optional[int]) -> None:
    if limit is not None and limit < 1:
        raise ConfigError(f"--limit must be at least 1, got {limit}")


def plan_run(
    benchmark_name: str,
    model_name: str,
    *,
    limit: Optional[int] = None,
    data_dir: Optional[Path] = None,
    checkpoint: Optional[Path] = None,
    overrides: SettingOverrides = SettingOverrides(),
) -> RunPlan:
    card = resolve_card(model_name)
    weights = kind_of(card).resolve_weights(card, checkpoint)
    benchmark = load_benchmark(benchmark_name)
    samples, total = select_samples(benchmark, limit, data_dir)
    settings = resolve_settings(card, benchmark.generation, overrides, benchmark.name, benchmark.spec.variant_of)
    return RunPlan(card, benchmark, samples, total, limit, settings, weights.path, weights.sha256, overrides)


def warn(message: str) -> None:
    print(f"WARNING: {message}", file=sys.stderr)
