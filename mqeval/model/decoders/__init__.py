"""Diffusion decoders by family name (the one Registry; entries import lazily)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from mqeval.registry import Registry

if TYPE_CHECKING:
    import torch

    from mqeval.model.metaquery_config import DecoderConfig
    from mqeval.model.decoders.base import Decoder

DECODERS: Registry = Registry("decoder family")
DECODERS.register("pixel", "mqeval.model.decoders.pixel:PixelDecoder")
DECODERS.register("sana", "mqeval.model.decoders.sana:SanaDecoder")
DECODERS.register("sd15", "mqeval.model.decoders.sd15:SD15Decoder")


def build_decoder(config: "DecoderConfig", dtype: Optional["torch.dtype"] = None) -> "Decoder":
    return DECODERS.get(config.family)(config, dtype)
