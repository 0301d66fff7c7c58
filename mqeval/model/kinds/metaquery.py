"""Kind `metaquery`: the card's `model:` block, weights from its checkpoint folder (see mqeval.model.loading)."""
from __future__ import annotations

import typing
from pathlib import Path
from typing import Any, Optional

from mqeval.contract.text_to_image import Capabilities
from mqeval.errors import DataIntegrityError, MissingCheckpointError
from mqeval.model.metaquery_config import GenerationConfig
from mqeval.model.kinds import ModelKind, Weights
from mqeval.paths import locate

_SCHEDULERS = typing.get_args(typing.get_type_hints(GenerationConfig)["scheduler"])


class MetaQueryKind(ModelKind):
    def check_card(self, card) -> None:
        if card.capabilities is not None:
            raise ValueError("`capabilities` describe models of the other kinds; a MetaQuery's are fixed")

    def resolve_weights(self, card, override: Optional[Path]) -> Weights:
        """--checkpoint DIR wins; else the card's folder (none for random_init cards); one clear error when it is
        missing. The card's pinned sha256 holds for its own folder only (`--checkpoint` is the user's choice)."""
        from mqeval.fileio import checkpoint_sha256
        from mqeval.model import official_checkpoint
        from mqeval.model.official_conversion import converted_folder

        if override is not None:
            path = Path(override)
            if official_checkpoint.is_official(path):  # the authors' trainer wrote it: converted once, cached
                return Weights(*converted_folder(path))
            if not (path / "config.json").is_file():
                raise MissingCheckpointError(f"--checkpoint {path} is not a checkpoint folder (no config.json there)")
            return Weights(path, checkpoint_sha256(path))
        if card.checkpoint.random_init:
            return Weights()
        path = locate(card.checkpoint.path) if card.checkpoint.path is not None else None
        wanted = card.checkpoint.format
        is_official = path is not None and official_checkpoint.is_official(path)
        if path is not None and wanted is not None and path.exists() and is_official != (wanted == "official"):
            raise MissingCheckpointError(f"model_zoo/{card.name}.yaml says checkpoint.format {wanted!r}, but {path} "
                                         "is not a checkpoint of that format")
        if is_official:
            return Weights(*converted_folder(path))  # no pin: the card names a folder its user trains
        if path is None or not (path / "config.json").is_file():
            where = f" at {path}" if path else ""
            how = card.checkpoint.source or (
                f"train it with `mqeval train {card.train_config}`" if card.train_config else "train it first")
            raise MissingCheckpointError(
                f"Model '{card.name}' has no checkpoint{where}. No MetaQuery weights were released: {how}, "
                f"then set `checkpoint.path` in model_zoo/{card.name}.yaml (or pass --checkpoint DIR).")
        sha = checkpoint_sha256(path)
        pinned = card.checkpoint.sha256
        if pinned and (sha is None or not sha.startswith(pinned.lower())):
            raise DataIntegrityError(f"{path}/model.safetensors has sha256 {sha}, but model_zoo/{card.name}.yaml "
                                     f"pins {pinned}")
        return Weights(path, sha)

    def summary(self, card) -> str:
        """What Tables 1-3 and 7 vary: condition, connector, what trains."""
        m = card.model
        condition = "last-layer" if m.condition.mode == "last-layer" else f"{m.condition.num_queries} queries"
        return (f"{condition}, {m.connector.architecture} x{m.connector.num_layers}, LLM {m.backbone.tuning}, "
                f"{m.decoder.family} {'trained' if m.decoder.train else 'frozen'}")

    def check_understanding(self, card, suite: str) -> None:
        return None

    def capabilities(self, card) -> Capabilities:
        return Capabilities(negative_prompt=True, true_cfg=True, input_images=True, schedulers=_SCHEDULERS)

    def default_resolution(self, card) -> Optional[int]:
        return card.metaquery.decoder.resolution

    def fingerprint(self, card, weights: Optional[Path]) -> dict[str, Any]:
        from mqeval.dataclass_io import to_dict

        return {"card": card.name, "config": to_dict(card.metaquery)}  # as before kinds existed: old runs resume

    def load(self, card, weights: Optional[Path], device: str):
        from mqeval.model.loading import load_model
        from mqeval.model.pipeline import MetaQueryPipeline

        return MetaQueryPipeline(load_model(card, checkpoint=weights, device=device).eval())


KIND = MetaQueryKind()
