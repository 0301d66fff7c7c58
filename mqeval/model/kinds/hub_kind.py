"""Shared by the kinds whose weights are one hub repository (diffusers, transformers): find them before loading."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from mqeval.model.kinds import ModelKind
from mqeval.model.kinds.config import HubModelConfig


class HubKind(ModelKind):
    block: str  # the card's block for this kind

    def config(self, card) -> HubModelConfig:
        return getattr(card, self.block)

    def locate_weights(self, card) -> Optional[Path]:
        """The cached (or local, or tiny://) folder; None when the hub is reachable and the load will download it.
        Not cached and offline or unreachable: one UserError naming the hub id, revision and download size."""
        from mqeval.model.hub import resolve_model_path

        config = self.config(card)
        what = f"{self.block} weights of model '{card.name}', hub id"
        path = resolve_model_path(config.model_id, config.revision, what, config.download_gb)
        return None if path == config.model_id else Path(path)

    def source(self, card, weights: Optional[Path]) -> str:
        """What from_pretrained opens: the located folder, or the hub id (downloaded now)."""
        return str(weights) if weights is not None else self.config(card).model_id


def torch_dtype(name: str):
    import torch

    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


def cached_weights(card) -> Optional[Path]:
    """The hub cache's folder of a card's weights (snapshots/<commit>: it names the commit), without any network."""
    config = getattr(card, card.kind, None)
    if not isinstance(config, HubModelConfig) or "://" in config.model_id:
        return None
    local = Path(config.model_id).expanduser()
    if local.exists():
        return local
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(config.model_id, revision=config.revision, local_files_only=True))
    except Exception:  # not cached (or not a hub id): nothing to record
        return None
