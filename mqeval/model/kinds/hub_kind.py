"""Shared by the kinds whose weights are one hub repository (diffusers, transformers): find them before loading.
`locate_hub_weights` also serves the hub repositories a `python` card names."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from mqeval.model.kinds import ModelKind
from mqeval.model.kinds.kind_configs import HubModelConfig, HubWeights


class HubKind(ModelKind):
    allow_patterns: tuple[str, ...] = ()  # the files from_pretrained needs (all of them when empty)

    def config(self, card) -> HubModelConfig:
        return card.kind_config

    def locate_weights(self, card) -> Optional[Path]:
        config = self.config(card)
        return locate_hub_weights(config, f"{card.kind} weights of model '{card.name}', hub id", self.allow_patterns,
                                  self.downloader(config))

    def downloader(self, config) -> Optional[Callable[[], str]]:
        """A library's own download into the Hugging Face cache, returning the snapshot folder; None: the files
        `allow_patterns` match, by huggingface_hub.snapshot_download."""
        return None

    def fingerprint(self, card, weights: Optional[Path]) -> dict[str, Any]:
        return {**super().fingerprint(card, weights), "revision": hub_commit(weights)}

    def recorded_checkpoint(self, card, checkpoint: Optional[Path]) -> Optional[Path]:
        """Hub weights are recorded by their cache folder, snapshots/<commit>: the revision the run used."""
        return checkpoint if checkpoint is not None else cached_weights(card)

    def source(self, card, weights: Optional[Path]) -> str:
        """What from_pretrained opens: the located folder (the hub id only when called without one)."""
        return str(weights) if weights is not None else self.config(card).model_id


def locate_hub_weights(weights: HubWeights, what: str, allow_patterns: Sequence[str] = (),
                       download: Optional[Callable[[], str]] = None) -> Path:
    """The cached (or local, or tiny://) folder; downloaded now (once, before any worker starts) when the hub is
    reachable: the files `allow_patterns` match (all when empty), or what `download` fetches. Not cached and offline
    or unreachable: one UserError naming the hub id, revision and size (mqeval.hub_download)."""
    from mqeval.model.hub import resolve_model_path

    return Path(resolve_model_path(weights.model_id, weights.revision, what, weights.download_gb,
                                   allow_patterns=allow_patterns, download=download))


def hub_commit(folder: Optional[Path]) -> Optional[str]:
    """The commit of a hub-cache snapshot folder (.../snapshots/<commit>); None for other folders."""
    return folder.name if folder is not None and folder.parent.name == "snapshots" else None


def torch_dtype(name: str):
    """The card's dtype name as a torch dtype (imported here: the kinds import no torch until they load)."""
    from mqeval.model.backbones.base import DTYPES

    return DTYPES[name]


def cached_weights(card) -> Optional[Path]:
    """The hub cache's folder of a card's weights (snapshots/<commit>: it names the commit), without any network."""
    from mqeval.hub_download import cached

    config = card.kind_config
    if not isinstance(config, HubModelConfig) or "://" in config.model_id:
        return None
    local = Path(config.model_id).expanduser()
    if local.exists():
        return local
    return cached(config.model_id, config.revision)
