"""The benchmark plug-in contract.

Every benchmark is a spec (benchmarks/<name>.yaml) and a plug-in class. The spec's `evaluator` says which of the two
kinds it is (mqeval.evaluation.kinds runs each):
- `images` (a `Benchmark`): it knows its samples, where each image goes in the official layout, and how to score a
  folder. It knows nothing of how images are made: the generation writer calls `samples`, `generation` and
  `image_path`, then `finalize`; `mqeval score` calls `score` on any folder in the official layout;
- `understanding` (an `LmmsEvalSuite`, mqeval.benchmarks.understanding): an external harness asks the model
  itself; there are no samples or images of mqeval's.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Literal, Optional

from mqeval.dataclass_io import from_dict
from mqeval.downloads import DataFile
from mqeval.contract.samples import Sample
from mqeval.contract.scoring import ScoreOptions, ScoreResult


@dataclass(frozen=True)
class GenerationSpec:
    """A benchmark's sampling protocol. None means: use the model card's default."""

    images_per_prompt: int = 1
    seed: int = 42
    guidance_scale: Optional[float] = None
    num_inference_steps: Optional[int] = None
    resolution: Optional[int] = None
    scheduler: Optional[str] = None

    def __post_init__(self) -> None:
        from mqeval.contract.sampling_limits import check_sampling

        check_sampling(self.guidance_scale, None, self.num_inference_steps, self.resolution, self.seed,
                       self.images_per_prompt)


@dataclass(frozen=True)
class BenchmarkSpec:
    """benchmarks/<name>.yaml"""

    name: str
    plugin: str  # registry key of the Benchmark class
    version: str
    description: str
    generation: GenerationSpec = field(default_factory=GenerationSpec)
    data: dict[str, DataFile] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)  # checked against the plugin's Options dataclass
    variant_of: Optional[str] = None
    evaluator: Literal["images", "understanding"] = "images"  # how it is run (mqeval.evaluation.kinds)


@dataclass(frozen=True)
class NoOptions:
    pass


class SpecPlugin:
    """What every benchmark plug-in has: its spec, its typed options, and how reports treat its records."""

    Options: ClassVar[type] = NoOptions
    evaluator: ClassVar[str] = "images"  # the spec's `evaluator` must name this

    def __init__(self, spec: BenchmarkSpec):
        self.spec = spec
        self.options = from_dict(self.Options, spec.options, f"{spec.name}.options")

    @property
    def name(self) -> str:
        return self.spec.name

    # Whether `aggregate` can recompute the metrics from per-sample records alone (False for FID, whose
    # statistics need every feature vector); reports bootstrap confidence intervals only where it can.
    aggregatable: ClassVar[bool] = True

    def aggregate(self, per_sample: list[dict[str, Any]]) -> dict[str, float]:
        """The benchmark's metrics from per-sample records (a pure function: reports call it on resamples)."""
        raise NotImplementedError(f"{type(self).__name__} does not aggregate from per-sample records")

    def data_hashes(self) -> dict[str, str]:
        """sha256 of every data file that determines the samples (recorded with each result)."""
        return {key: f.sha256 for key, f in self.spec.data.items()}


class Benchmark(SpecPlugin, ABC):
    """An image benchmark: prompts in, a folder of images in the official layout scored."""

    @property
    def generation(self) -> GenerationSpec:
        return self.spec.generation

    @abstractmethod
    def samples(self, data_dir: Optional[Path] = None) -> list[Sample]:
        """All samples in their global order."""

    @abstractmethod
    def image_path(self, out_dir: Path, sample: Sample, image_index: int) -> Path:
        """Where image `image_index` of `sample` goes, in the official layout."""

    def scored_paths(self, out_dir: Path, sample: Sample) -> list[Path]:
        """The files `score` reads for `sample`; by default its generated images. `mqeval score` checks them.
        The count is the protocol's images_per_prompt (a sample's `num_images` of 1 only means "not restated")."""
        return [Path(self.image_path(out_dir, sample, j)) for j in range(self.generation.images_per_prompt)]

    def finalize(self, out_dir: Path, samples: list[Sample]) -> None:
        """Write what the official layout needs besides the images (metadata files, grids). Idempotent."""

    def preflight(self, options: ScoreOptions) -> None:
        """Before any image is generated: raise a UserError if scoring would fail (data files, scorer weights,
        endpoints). By default every data file the spec lists is resolved and its checksum checked."""
        from mqeval.downloads import resolve_data_file

        for key, entry in self.spec.data.items():
            if entry.path is not None or entry.url is not None or entry.hub is not None:
                resolve_data_file(entry, key, local_dir=options.data_dir, cache_root=options.cache_dir)

    def prescorer(self, options: ScoreOptions) -> Optional[Callable[[Path], None]]:
        """Scoring work one finished image allows while generation goes on: a function, set up once per run, that
        the generation writer's saver thread calls after each image of a `run`; it fills the scorer's content cache, so
        `score` finds that work done. None (the default): a scorer that needs the whole folder (FID) or a remote
        judge waits for `score`."""
        return None

    @abstractmethod
    def score(self, out_dir: Path, samples: list[Sample], options: ScoreOptions) -> ScoreResult:
        """Score a folder in the official layout: per-sample records, then `aggregate` over them."""

