"""MLLM adapters by family name (the one Registry; entries import lazily)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from mqeval.registry import Registry

if TYPE_CHECKING:
    import torch

    from mqeval.model.backbones.base import Backbone
    from mqeval.model.config import BackboneConfig

BACKBONES: Registry = Registry("backbone family")
BACKBONES.register("causal_lm", "mqeval.model.backbones.causal_lm:CausalLMBackbone")
BACKBONES.register("qwen2_5_vl", "mqeval.model.backbones.qwen2_5_vl:Qwen25VLBackbone")
BACKBONES.register("llava_onevision", "mqeval.model.backbones.llava_onevision:LlavaOneVisionBackbone")


def build_backbone(config: "BackboneConfig", max_prompt_tokens: int = 256,
                   dtype: Optional["torch.dtype"] = None) -> "Backbone":
    backbone = BACKBONES.get(config.family)(config, dtype)
    backbone.max_prompt_tokens = max_prompt_tokens
    return backbone
