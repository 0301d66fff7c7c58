"""Tiny MetaQuery configs for the model tests (all offline: tiny:// models are built from configs)."""
from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from mqeval.model.config import (  # noqa: E402
    BackboneConfig,
    ConditionConfig,
    ConnectorConfig,
    DecoderConfig,
    MetaQueryConfig,
    PixelDecoderConfig,
)

TINY_PIXEL = PixelDecoderConfig(image_size=16, patch_size=4, width=32, depth=1, num_heads=2, caption_dim=32)
RESOLUTION = {"pixel": 16, "sana": 64, "sd15": 32}

PROMPTS = ["a red circle", "two blue squares left of a yellow star"]


def tiny_config(
    backbone: str = "causal_lm",
    decoder: str = "pixel",
    mode: str = "metaquery",
    architecture: str = "enc-proj",
    tuning: str = "frozen",
    decoder_train: bool = False,
    num_queries: int = 4,
    prediction_type: str | None = None,
) -> MetaQueryConfig:
    prediction = prediction_type or ("flow" if decoder in ("pixel", "sana") else "epsilon")
    return MetaQueryConfig(
        backbone=BackboneConfig(family=backbone, model_id=f"tiny://{backbone}", tuning=tuning, lora_rank=2,
                                lora_alpha=4, dtype="float32"),
        decoder=DecoderConfig(
            family=decoder, model_id=None if decoder == "pixel" else f"tiny://{decoder}", train=decoder_train,
            prediction_type=prediction, resolution=RESOLUTION[decoder], dtype="float32",
            pixel=TINY_PIXEL if decoder == "pixel" else None,
        ),
        condition=ConditionConfig(mode=mode, num_queries=num_queries, max_prompt_tokens=32),
        connector=ConnectorConfig(architecture=architecture, num_layers=1),
    )


def random_images(n: int, size: int, seed: int = 0):
    import torch

    g = torch.Generator().manual_seed(seed)
    return torch.rand((n, 3, size, size), generator=g) * 2 - 1


def generators(seeds):
    import torch

    return [torch.Generator().manual_seed(s) for s in seeds]


def assert_grads_only_on_trainable(model) -> None:
    """After backward: every trainable parameter has a gradient, no frozen one has."""
    for name, param in model.named_parameters():
        if param.requires_grad:
            assert param.grad is not None, f"trainable {name} got no gradient"
        else:
            assert param.grad is None, f"frozen {name} got a gradient"


def assert_groups_sound(model, weight_decay: float = 0.1) -> None:
    groups = model.parameter_groups(weight_decay)
    in_groups = [p for g in groups for p in g["params"]]
    assert len(in_groups) == len({id(p) for p in in_groups}), "a parameter is in two groups"
    assert {id(p) for p in in_groups} == {id(p) for p in model.trainable_parameters()}
    assert all(p.requires_grad for p in in_groups), "a frozen parameter entered an optimizer group"
    decayed = {id(p) for g in groups if g["weight_decay"] > 0 for p in g["params"]}
    for name, param in model.named_parameters():
        if id(param) in decayed:
            assert param.ndim >= 2 and "norm" not in name and "query_tokens" not in name, name
