"""Model cards (model_zoo/*.yaml): what model (its `kind` and that kind's block) + checkpoint + generation defaults.

Kinds: `metaquery` (the default; block `model:`), `diffusers`, `transformers`, `python` (blocks of those names, see
mqeval.model.kinds). A card may name a `base` card and list only what differs; the two are deep-merged before
validation.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional

from mqeval.dataclass_io import from_dict, load_yaml, merge_over_base
from mqeval.contract.text_to_image import Capabilities
from mqeval.errors import ConfigError, MissingCheckpointError, UnknownNameError
from mqeval.model.metaquery_config import GenerationConfig, MetaQueryConfig
from mqeval.model.kinds.kind_configs import DiffusersConfig, PythonConfig, TransformersConfig
from mqeval.paths import MODEL_ZOO_DIR, locate

ModelKind = Literal["metaquery", "diffusers", "transformers", "python"]
KIND_BLOCKS = {"metaquery": "model", "diffusers": "diffusers", "transformers": "transformers", "python": "python"}


@dataclass(frozen=True)
class CheckpointConfig:
    """Where the trainable parts' weights come from. No MetaQuery weights were ever released."""

    # folder written by save_pretrained; a relative path is from the working directory (`model_zoo/...`: shipped)
    path: Optional[str] = None
    sha256: Optional[str] = None  # of the folder's model.safetensors
    source: str = ""  # how a user obtains it (e.g. "train with model_zoo/metaquery-b.train.yaml")
    random_init: bool = False  # tiny test cards only: seeded random trainable parts, scores are meaningless


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


@dataclass(frozen=True)
class ModelCard:
    name: str
    description: str
    kind: ModelKind = "metaquery"
    model: Optional[MetaQueryConfig] = None  # kind metaquery
    diffusers: Optional[DiffusersConfig] = None
    transformers: Optional[TransformersConfig] = None
    python: Optional[PythonConfig] = None
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
        if self.kind == "metaquery" and self.capabilities is not None:
            raise ValueError("`capabilities` describe models of the other kinds; a MetaQuery's are fixed")
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

    def checkpoint_dir(self) -> Optional[Path]:
        if self.checkpoint.path is None:
            return None
        return locate(self.checkpoint.path)

    def require_checkpoint(self) -> Optional[Path]:
        """The checkpoint folder, or None for a random-init card; a clear error when it is missing."""
        if self.checkpoint.random_init:
            return None
        path = self.checkpoint_dir()
        if path is None or not (path / "config.json").is_file():
            where = f" at {path}" if path else ""
            how = self.checkpoint.source or (
                f"train it with `mqeval train {self.train_config}`" if self.train_config else "train it first"
            )
            raise MissingCheckpointError(
                f"Model '{self.name}' has no checkpoint{where}. No MetaQuery weights were released: {how}, "
                f"then set `checkpoint.path` in model_zoo/{self.name}.yaml (or pass --checkpoint DIR)."
            )
        return path


def card_paths(zoo_dir: Path = MODEL_ZOO_DIR) -> dict[str, Path]:
    return {p.name[: -len(".yaml")]: p for p in sorted(zoo_dir.glob("*.yaml")) if not p.name.endswith(".train.yaml")}


def _raw_card(name: str, zoo_dir: Path, path: Optional[Path] = None) -> dict:
    """Card `name` merged over its `base` cards, all looked up in zoo_dir; `path`, when given, is the file of
    `name` itself (a card file anywhere, .yml too)."""
    paths = card_paths(zoo_dir)
    if path is not None:
        paths[name] = path

    def load(card: str) -> dict:
        if card not in paths:
            raise UnknownNameError("model", card, paths)
        return load_yaml(paths[card])

    raw = merge_over_base(name, load, lambda _, base: base, "model_zoo: card")
    raw["name"] = name
    return raw


def load_card(name: str, zoo_dir: Path = MODEL_ZOO_DIR) -> ModelCard:
    raw = _raw_card(name, zoo_dir)
    raw.setdefault("description", "")
    return from_dict(ModelCard, raw, f"model_zoo/{name}.yaml")


def resolve_card(name_or_path: str, zoo_dir: Path = MODEL_ZOO_DIR) -> ModelCard:
    """A zoo card name, or the path of a card file (its `base` cards are looked up beside it; its name is its stem)."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        raw = _raw_card(path.stem, path.parent, path)
        raw.setdefault("description", "")
        return from_dict(ModelCard, raw, str(path))
    return load_card(name_or_path, zoo_dir)


def card_names(zoo_dir: Path = MODEL_ZOO_DIR) -> list[str]:
    return sorted(card_paths(zoo_dir))
