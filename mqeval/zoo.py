"""Finding and reading model cards (model_zoo/*.yaml, or a card file anywhere) into `ModelCard` values
(mqeval.model.card). A card may name a `base` card and list only what differs; the two are deep-merged before
validation.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from mqeval.dataclass_io import from_dict, load_yaml, merge_over_base
from mqeval.errors import UnknownNameError
from mqeval.model.card import ModelCard
from mqeval.paths import MODEL_ZOO_DIR


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
