"""Shared by the kinds whose weights are one hub repository (diffusers, transformers): find them before loading.
`locate_hub_weights` also serves the hub repositories a `python` card names."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional

from mqeval.model.kinds import ModelKind
from mqeval.model.kinds.kind_configs import HubModelConfig, HubWeights


class HubKind(ModelKind):
    block: str  # the card's block for this kind

    def config(self, card) -> HubModelConfig:
        return getattr(card, self.block)

    def locate_weights(self, card) -> Optional[Path]:
        return locate_hub_weights(self.config(card), f"{self.block} weights of model '{card.name}', hub id",
                                  self.download)

    def download(self, config) -> str:
        """Fetch what from_pretrained needs into the hub cache; the snapshots/<commit> folder."""
        raise NotImplementedError

    def fingerprint(self, card, weights: Optional[Path]) -> dict[str, Any]:
        return {**super().fingerprint(card, weights), "revision": hub_commit(weights)}

    def source(self, card, weights: Optional[Path]) -> str:
        """What from_pretrained opens: the located folder (the hub id only when called without one)."""
        return str(weights) if weights is not None else self.config(card).model_id


def locate_hub_weights(weights: HubWeights, what: str, download: Callable[[Any], str]) -> Path:
    """The cached (or local, or tiny://) folder; downloaded now (once, before any worker starts) when the hub is
    reachable. Not cached and offline or unreachable: one UserError naming the hub id, revision and size."""
    import sys

    from mqeval.model.hub import resolve_model_path

    path = resolve_model_path(weights.model_id, weights.revision, what, weights.download_gb)
    if path == weights.model_id and not Path(path).expanduser().exists():  # a hub id to fetch, not a local folder
        print(f"Downloading {weights.describe()} into the Hugging Face cache", file=sys.stderr)
        path = download(weights)
    return Path(path)


def hub_commit(folder: Optional[Path]) -> Optional[str]:
    """The commit of a hub-cache snapshot folder (.../snapshots/<commit>); None for other folders."""
    return folder.name if folder is not None and folder.parent.name == "snapshots" else None


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
