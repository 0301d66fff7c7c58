"""Conditioning modes and tuning modes: last-layer, LoRA, full MLLM tuning, training the decoder."""
from __future__ import annotations

import numpy as np
import torch

from helpers_model import (
    PROMPTS, assert_grads_only_on_trainable, assert_groups_sound, generators, random_images, tiny_config,
)
from mqeval.model.metaquery import MetaQuery
from mqeval.model.pipeline import MetaQueryPipeline


def _train_step(model, size: int = 16):
    model.zero_grad(set_to_none=True)
    out = model.loss(PROMPTS, random_images(2, size), generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(out.loss)
    out.loss.backward()
    assert_grads_only_on_trainable(model)
    assert_groups_sound(model)


def test_last_layer_mode_uses_prompt_states_with_their_mask(tmp_path):
    model = MetaQuery(tiny_config(mode="last-layer", architecture="proj-enc"))
    assert model.query_tokens is None
    with torch.no_grad():
        cond = model.encode_condition(PROMPTS)
    lengths = cond.mask.sum(1)
    assert lengths[0] < lengths[1] and cond.hidden.shape[1] == lengths[1]
    template, model.backbone.tokenizer.chat_template = model.backbone.tokenizer.chat_template, None
    model.backbone.system_prompt = None
    with torch.no_grad():  # an empty caption without chat template or system prompt has no tokens: still finite
        assert torch.isfinite(model.encode_condition(["", "a red circle"]).hidden).all()
    model.backbone.tokenizer.chat_template = template
    model.backbone.system_prompt = model.config.condition.system_prompt
    _train_step(model)
    assert {n.split(".")[0] for n, _ in model.named_trainable_parameters()} == {"connector"}
    pipe = MetaQueryPipeline(model)
    both = pipe(PROMPTS, generators=generators([1, 2]), num_inference_steps=3, guidance_scale=3.0)
    one = pipe(PROMPTS[:1], generators=generators([1]), num_inference_steps=3, guidance_scale=3.0)
    # The shorter prompt is left-padded in the pair: masked, but float sums change order -> allow 2/255.
    diff = np.abs(np.asarray(both.images[0]).astype(int) - np.asarray(one.images[0]).astype(int))
    assert diff.max() <= 2
    model.save_pretrained(tmp_path)
    loaded = MetaQuery.from_pretrained(tmp_path)
    again = MetaQueryPipeline(loaded)(PROMPTS[:1], generators=generators([1]), num_inference_steps=3,
                                      guidance_scale=3.0)
    assert np.array_equal(np.asarray(again.images[0]), np.asarray(one.images[0]))


def test_lora_trains_only_adapters_queries_and_connector(tmp_path):
    model = MetaQuery(tiny_config(tuning="lora"))
    backbone_trainable = [n for n, p in model.backbone.named_parameters() if p.requires_grad]
    assert backbone_trainable and all("lora_" in n for n in backbone_trainable)
    assert any("q_proj" in n for n in backbone_trainable)
    _train_step(model)
    assert all(p.grad is None for n, p in model.backbone.named_parameters() if "lora_" not in n)
    with torch.no_grad():  # move the adapters off their zero init so the round trip is a real check
        for name, param in model.backbone.named_parameters():
            if "lora_B" in name:
                param.normal_(std=0.1)
        reference = model.encode_condition(PROMPTS).hidden
    model.save_pretrained(tmp_path)
    loaded = MetaQuery.from_pretrained(tmp_path)
    with torch.no_grad():
        assert torch.equal(loaded.encode_condition(PROMPTS).hidden, reference)


def test_full_tuning_and_decoder_training():
    model = MetaQuery(tiny_config(decoder="sana", tuning="full", decoder_train=True))
    assert all(p.requires_grad for p in model.backbone.parameters())
    assert all(p.requires_grad for p in model.decoder.transformer.parameters())
    assert not any(p.requires_grad for p in model.decoder.vae.parameters())
    _train_step(model, size=64)
    saved = model.saved_parameter_names()
    assert any(n.startswith("decoder.transformer.") for n in saved)
    assert not any(n.startswith("decoder.vae.") for n in saved)
    model.train()
    assert model.decoder.transformer.training and not model.decoder.vae.training


def test_gradient_checkpointing_on_a_frozen_backbone_gives_the_same_query_gradients():
    import dataclasses

    plain_config = tiny_config()
    ckpt_config = dataclasses.replace(
        plain_config, backbone=dataclasses.replace(plain_config.backbone, gradient_checkpointing=True)
    )
    grads = []
    for config in (plain_config, ckpt_config):
        model = MetaQuery(config, seed=0).train()
        out = model.loss(PROMPTS, random_images(2, 16), generator=torch.Generator().manual_seed(0))
        out.loss.backward()
        assert_grads_only_on_trainable(model)
        grads.append(model.query_tokens.queries.grad)
    assert model.backbone.model.is_activation_checkpointing and model.backbone.model.training
    torch.testing.assert_close(grads[0], grads[1])
