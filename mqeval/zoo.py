"""Model cards (model_zoo/*.yaml): architecture + checkpoint + generation defaults.

A card may name a `base` card and list only what differs; the two are deep-merged before validation.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from mqeval.config import from_dict, load_yaml, merge_over_base
from mqeval.errors import MissingCheckpointError, UnknownNameError
from mqeval.model.config import GenerationConfig, MetaQueryConfig
from mqeval.paths import MODEL_ZOO_DIR, locate


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
class ModelCard:
    name: str
    description: str
    model: MetaQueryConfig
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    paper: tuple[PaperRow, ...] = ()
    tags: tuple[str, ...] = ()
    train_config: Optional[str] = None  # model_zoo/<...>.train.yaml that produces the checkpoint

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
