"""MLLM adapters by family name (the one Registry; entries import lazily)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from mqeval.registry import Registry

if TYPE_CHECKING:
    import torch

    from mqeval.model.backbones.base import Backbone
    from mqeval.model.metaquery_config import BackboneConfig, ConditionConfig

BACKBONES: Registry = Registry("backbone family")
BACKBONES.register("causal_lm", "mqeval.model.backbones.causal_lm:CausalLMBackbone")
BACKBONES.register("qwen2_5_vl", "mqeval.model.backbones.qwen2_5_vl:Qwen25VLBackbone")
BACKBONES.register("llava_onevision", "mqeval.model.backbones.llava_onevision:LlavaOneVisionBackbone")


def build_backbone(config: "BackboneConfig", condition: Optional["ConditionConfig"] = None,
                   dtype: Optional["torch.dtype"] = None) -> "Backbone":
    from mqeval.model.metaquery_config import ConditionConfig

    condition = condition or ConditionConfig()
    backbone = BACKBONES.get(config.family)(config, dtype)
    backbone.max_prompt_tokens = condition.max_prompt_tokens
    backbone.system_prompt = condition.system_prompt
    backbone.markers = condition.markers
    return backbone
