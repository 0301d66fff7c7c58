"""What the user asked for, as one typed value the command line builds and the evaluators read."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from mqeval.contract.scoring import DetectorOptions, JudgeOptions, ScoreOptions
from mqeval.generation.acceleration import Acceleration
from mqeval.generation.settings import SettingOverrides


@dataclass(frozen=True)
class ScoringRequest:
    backend: Optional[str] = None
    weights_path: Optional[str] = None
    judge: JudgeOptions = field(default_factory=JudgeOptions)
    detector: DetectorOptions = field(default_factory=DetectorOptions)
    batch_size: int = 16
    strict: bool = False  # refuse to record an incomplete result instead of marking it

    def options(self, device: str, data_dir: Optional[Path], resolution: Optional[int]) -> ScoreOptions:
        from mqeval.paths import cache_dir

        return ScoreOptions(
            cache_dir=cache_dir(), device=device, backend=self.backend, weights_path=self.weights_path,
            data_dir=str(data_dir) if data_dir else None, batch_size=self.batch_size, resolution=resolution,
            judge=self.judge, detector=self.detector,
        )


@dataclass(frozen=True)
class EvaluationRequest:
    benchmark: str
    model: Optional[str]  # a card name or file; `score` may leave it out (the run folder names its card)
    limit: Optional[int] = None
    out: Optional[Path] = None
    checkpoint: Optional[Path] = None
    data_dir: Optional[Path] = None
    device: str = "cpu"
    overrides: SettingOverrides = SettingOverrides()
    num_processes: int = 1
    batch_size: Optional[int] = None  # images (or questions) per forward pass; None: the default for the device
    overwrite: bool = False
    progress: bool = True
    acceleration: Acceleration = Acceleration()
    adapter: Optional[str] = None  # understanding suites: force "mqeval" or an lmms-eval model name
    scoring: ScoringRequest = field(default_factory=ScoringRequest)
