"""What scoring is given (options) and what it returns (metrics, per-sample records, the scorer's identity)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional


@dataclass(frozen=True)
class JudgeOptions:
    """The user's choices for an OpenAI-compatible judge or VQA endpoint (None: the benchmark's default)."""

    base_url: Optional[str] = None
    model: Optional[str] = None
    api_key_env: str = "OPENAI_API_KEY"
    allow_http_key: bool = False  # send the API key over plain http to a host other than this machine
    timeout_s: Optional[float] = None  # per request attempt; None: the judge's default


@dataclass(frozen=True)
class DetectorOptions:
    """The user's choices for GenEval's detector."""

    weights: Optional[str] = None  # hf-mask2former weight set ("hf" / "official"), if overridden


@dataclass(frozen=True)
class ScoreOptions:
    """What scoring may need beyond the images: backends, endpoints, local weights and data. Each scorer family's
    settings travel as one value (`judge`, `detector`), passed whole from the command line to the scorer."""

    cache_dir: Optional[Path] = None
    device: str = "cpu"
    backend: Optional[str] = None  # detector / VQA backend name
    weights_path: Optional[str] = None  # local scorer weights (e.g. Inception, detector)
    data_dir: Optional[str] = None  # local copy of data that is otherwise downloaded
    batch_size: int = 16
    resolution: Optional[int] = None  # side of the run's images, when known (from its generation settings)
    judge: JudgeOptions = field(default_factory=JudgeOptions)
    detector: DetectorOptions = field(default_factory=DetectorOptions)


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
