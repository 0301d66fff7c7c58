"""Kind `metaquery`: the card's `model:` block, weights from its checkpoint (see mqeval.model.loading)."""
from __future__ import annotations

import typing
from pathlib import Path
from typing import Any, Optional

from mqeval.contract.text_to_image import Capabilities
from mqeval.model.metaquery_config import GenerationConfig
from mqeval.model.kinds import ModelKind

_SCHEDULERS = typing.get_args(typing.get_type_hints(GenerationConfig)["scheduler"])


class MetaQueryKind(ModelKind):
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
