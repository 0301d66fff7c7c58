"""What scoring is given (options) and what it returns (metrics, per-sample records, the scorer's identity)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional


@dataclass(frozen=True)
class ScoreOptions:
    """What scoring may need beyond the images: backends, endpoints, local weights and data."""

    cache_dir: Optional[Path] = None
    device: str = "cpu"
    backend: Optional[str] = None  # detector / VQA backend name
    judge_base_url: Optional[str] = None
    judge_model: Optional[str] = None
    judge_api_key_env: str = "OPENAI_API_KEY"
    weights_path: Optional[str] = None  # local scorer weights (e.g. Inception, detector)
    data_dir: Optional[str] = None  # local copy of data that is otherwise downloaded
    batch_size: int = 16
    judge_allow_http_key: bool = False  # send the API key over plain http to a host other than this machine
    resolution: Optional[int] = None  # side of the run's images, when known (from its generation settings)
    detector_weights: Optional[str] = None  # GenEval hf-mask2former weight set ("hf" / "official"), if overridden
    judge_timeout_s: Optional[float] = None  # per request attempt; None: the judge's default


@dataclass(frozen=True)
class ScorerInfo:
    name: str
    version: str
    weights: Optional[str] = None  # id or sha256 of the scorer's weights
    notes: tuple[str, ...] = ()


@dataclass
class ScoreResult:
    metrics: dict[str, float]  # flat snake_case keys
    higher_is_better: dict[str, bool]
    per_sample: list[dict[str, Any]]  # one record per sample: {"sample_id", <metric>: value, ...}
    scorer: ScorerInfo
    warnings: list[str] = field(default_factory=list)  # e.g. unparseable judge answers: counted, never dropped
    image_issues: dict[str, int] = field(default_factory=dict)  # mqeval.images.check counts per kind
    incomplete: list[str] = field(default_factory=list)  # why the numbers cover less than the protocol asks
