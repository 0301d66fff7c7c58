"""Tiny MetaQuery configs for the model tests (all offline: tiny:// models are built from configs)."""
from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from mqeval.model.metaquery_config import (  # noqa: E402
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


def write_tiny_gguf(src, out) -> None:
    """Write the tiny Qwen2 causal LM at `src` (a transformers folder) as an unquantized GGUF file `out`."""
    import json

    import gguf
    import numpy as np
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(src, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(src)
    cfg = model.config
    w = gguf.GGUFWriter(str(out), "qwen2")
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(cfg.hidden_size)
    w.add_block_count(cfg.num_hidden_layers)
    w.add_feed_forward_length(cfg.intermediate_size)
    w.add_head_count(cfg.num_attention_heads)
    w.add_head_count_kv(cfg.num_key_value_heads)
    w.add_rope_freq_base(float(cfg.rope_parameters["rope_theta"]))
    w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    w.add_vocab_size(cfg.vocab_size)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("qwen2")
    tokens = [t for t, _ in sorted(tok.get_vocab().items(), key=lambda kv: kv[1])]
    special = set(tok.all_special_tokens) | {"<|im_start|>", "<|im_end|>"}
    w.add_token_list(tokens)
    w.add_token_types([gguf.TokenType.CONTROL if t in special else gguf.TokenType.NORMAL for t in tokens])
    merges = json.loads(tok.backend_tokenizer.to_str())["model"]["merges"]
    w.add_token_merges([" ".join(m) if isinstance(m, list) else m for m in merges])
    w.add_eos_token_id(tok.eos_token_id)
    w.add_pad_token_id(tok.pad_token_id)
    w.add_chat_template(tok.chat_template)
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.QWEN2, cfg.num_hidden_layers)
    for name, tensor in model.state_dict().items():
        if name == "lm_head.weight" and cfg.tie_word_embeddings:
            continue
        w.add_tensor(names.get_name(name, try_suffixes=(".weight", ".bias")), tensor.numpy().astype(np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
