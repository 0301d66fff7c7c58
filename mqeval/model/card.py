"""Model cards as values: what model (its `kind` and that kind's block) + checkpoint + generation defaults.

Kinds: `metaquery` (the default; block `model:`), `diffusers`, `transformers`, `python` (blocks of those names, see
mqeval.model.kinds). Reading cards from model_zoo/*.yaml (with `base` cards deep-merged) is mqeval.zoo's job; what a
card's kind means (its weights, its record, its summary) is its ModelKind's.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Optional

from mqeval.contract.text_to_image import Capabilities
from mqeval.errors import ConfigError
from mqeval.model.kinds.kind_configs import KIND_BLOCKS, KindBlocks, KindName
from mqeval.model.metaquery_config import GenerationConfig, MetaQueryConfig


@dataclass(frozen=True)
class CheckpointConfig:
    """Where the trainable parts' weights come from. No MetaQuery weights were ever released."""

    # folder written by save_pretrained; a relative path is from the working directory (`model_zoo/...`: shipped)
    path: Optional[str] = None
    sha256: Optional[str] = None  # of the folder's model.safetensors
    source: str = ""  # how a user obtains it (e.g. "train with model_zoo/metaquery-b.train.yaml")
    random_init: bool = False  # tiny test cards only: seeded random trainable parts, scores are meaningless
    # "official": a folder of the authors' trainer (facebookresearch/metaquery), converted once; None: told by the
    # folder's config.json (an official one has model_type "metaquery").
    format: Optional[Literal["mqeval", "official"]] = None


@dataclass(frozen=True)
class PaperRow:
    table: int
    row: str  # the row's label in results/paper/tableN_*.csv


@dataclass(frozen=True)
class PublishedSettings:
    """The sampling settings behind a published number of this model on one benchmark (a variant of the benchmark,
    e.g. commonsense-t2i-negative, uses its base's entry unless it has its own). They win over the benchmark
    protocol's defaults, which are MetaQuery's sampler settings. `stated: false` means the source does not state
    them: the values are then the model's recommended defaults, and every run says so."""

    benchmark: str
    source: str  # who measured the number, and where the settings are (or are not) stated
    stated: bool = False
    guidance_scale: Optional[float] = None
    num_inference_steps: Optional[int] = None
    resolution: Optional[int] = None
    scheduler: Optional[str] = None


@dataclass(frozen=True, kw_only=True)
class ModelCard(KindBlocks):
    """A card: its name, its `kind`, that kind's block (the fields of KindBlocks, one per kind, owned by
    mqeval.model.kinds), and what every kind shares."""

    name: str
    description: str
    kind: KindName = "metaquery"
    capabilities: Optional[Capabilities] = None  # other kinds: what the model honours (None: the defaults)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    published: tuple[PublishedSettings, ...] = ()
    paper: tuple[PaperRow, ...] = ()
    tags: tuple[str, ...] = ()
    train_config: Optional[str] = None  # model_zoo/<...>.train.yaml that produces the checkpoint

    def __post_init__(self) -> None:
        present = [key for key in KIND_BLOCKS.values() if getattr(self, key) is not None]
        wanted = KIND_BLOCKS[self.kind]
        if present != [wanted]:
            others = [k for k in present if k != wanted]
            raise ValueError(f"a card of kind '{self.kind}' needs a `{wanted}:` block"
                             + (f" and no {', '.join(f'`{k}:`' for k in others)} block" if others else ""))
        from mqeval.model.kinds import KINDS

        KINDS.get(self.kind).check_card(self)
        benchmarks = [p.benchmark for p in self.published]
        if len(set(benchmarks)) != len(benchmarks):
            raise ValueError("`published` names a benchmark twice")

    @property
    def kind_config(self) -> Any:
        """The block of the card's kind (`model:` for metaquery; the block named as the kind for the others)."""
        return getattr(self, KIND_BLOCKS[self.kind])

    @property
    def metaquery(self) -> MetaQueryConfig:
        """The MetaQuery config, for the code that only MetaQuery cards reach (training, the understanding suites)."""
        if self.model is None:
            raise ConfigError(f"Model '{self.name}' is a {self.kind} card; this needs a MetaQuery card")
        return self.model

    def published_for(self, benchmark: str, variant_of: Optional[str] = None) -> Optional[PublishedSettings]:
        entries = {p.benchmark: p for p in self.published}
        return entries.get(benchmark) or (entries.get(variant_of) if variant_of else None)
