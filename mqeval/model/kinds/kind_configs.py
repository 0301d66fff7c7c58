"""The card blocks of the model kinds: one field of `KindBlocks` per kind (MetaQueryConfig under `model:` for the
`metaquery` kind, the configs below for the others). A new kind adds its name to KindName, its block here and in
KIND_BLOCKS, and its module to the KINDS registry: nothing outside mqeval/model/kinds/ changes."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Optional

from mqeval.hub_download import describe
from mqeval.model.metaquery_config import MetaQueryConfig

Dtype = Literal["float32", "bfloat16", "float16"]


@dataclass(frozen=True)
class HubWeights:
    """Weights on the Hugging Face hub (or a local folder, or a tiny:// test model built from a config)."""

    model_id: str
    # A 40-hex commit id pins the weights. None: unpinned (`revision_note` says why); every run records the commit
    # it resolved to, in results.json `model.checkpoint` (the hub cache's snapshots/<commit> folder).
    revision: Optional[str] = None
    revision_note: str = ""
    download_gb: Optional[float] = None  # approximate size of what is downloaded

    def describe(self) -> str:
        """e.g. "'owner/name' (revision main, unpinned, about 4.1 GB)", as the hub download errors name it."""
        return describe(self.model_id, self.revision, size_gb=self.download_gb)


@dataclass(frozen=True)
class HubModelConfig(HubWeights):
    """One hub repository that a library (diffusers, transformers) loads."""

    dtype: Dtype = "float16"


@dataclass(frozen=True)
class PythonWeights(HubWeights):
    """A hub repository that a `python` factory loads with its own code."""

    files: tuple[str, ...] = ()  # glob patterns of the files it needs (empty: the whole repository)


@dataclass(frozen=True)
class DiffusersConfig(HubModelConfig):
    """Any diffusers text-to-image pipeline."""

    pipeline: Optional[str] = None  # diffusers pipeline class name; None: the class model_index.json names
    variant: Optional[str] = None  # weight-file variant to load, e.g. "fp16"
    scheduler: Optional[str] = None  # diffusers scheduler class replacing the pipeline's own, e.g. "DDIMScheduler"
    scheduler_config: dict[str, Any] = field(default_factory=dict)  # overrides of the scheduler's config
    pipeline_kwargs: dict[str, Any] = field(default_factory=dict)  # passed to every call (max_sequence_length, ...)
    # Pipelines whose guidance_scale is distilled guidance (FLUX.1-dev): the true-CFG scale used with negative prompts.
    true_cfg_scale: Optional[float] = None


@dataclass(frozen=True)
class TransformersConfig(HubModelConfig):
    """An autoregressive image generator that transformers runs."""

    family: Literal["janus", "emu3"] = "janus"
    generation_kwargs: dict[str, Any] = field(default_factory=dict)  # passed to generate() (temperature, ...)


@dataclass(frozen=True)
class PythonConfig:
    """Your own code: `factory` ("package.module:function") is called as factory(device=..., **kwargs) and returns an
    object with the mqeval.contract.text_to_image.TextToImage protocol. With `weights` (role -> hub repository),
    mqeval finds or downloads them before any worker starts, as for the other kinds (offline and not cached: one
    error naming the hub id, revision and size), and calls factory(device=..., weights={role: local folder}, ...)."""

    factory: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    weights: dict[str, PythonWeights] = field(default_factory=dict)  # the first one is recorded as the checkpoint
    # "package.module:function" called with no arguments when the run is planned, before any weights are fetched:
    # it raises a UserError when the model cannot run here (e.g. its own code is missing or does not import)
    check: Optional[str] = None


KindName = Literal["metaquery", "diffusers", "transformers", "python"]
KIND_BLOCKS = {"metaquery": "model", "diffusers": "diffusers", "transformers": "transformers", "python": "python"}


@dataclass(frozen=True, kw_only=True)
class KindBlocks:
    """The kinds' blocks of a model card; a card holds exactly the one of its kind."""

    model: Optional[MetaQueryConfig] = None  # kind metaquery
    diffusers: Optional[DiffusersConfig] = None
    transformers: Optional[TransformersConfig] = None
    python: Optional[PythonConfig] = None
