"""Vertical slice: tiny causal LM + pixel DiT + queries + Enc-Proj: loss, grads, groups, sampling, save/load."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers_model import (
    PROMPTS, assert_grads_only_on_trainable, assert_groups_sound, generators, random_images, tiny_config,
)
from mqeval.errors import MissingCheckpointError, UserError
from mqeval.model.loading import load_model
from mqeval.model.metaquery import ConditionBatch, MetaQuery
from mqeval.model.pipeline import MetaQueryPipeline
from mqeval.model.card import CheckpointConfig, ModelCard


@pytest.fixture(scope="module")
def model():
    return MetaQuery(tiny_config("causal_lm", "pixel", decoder_train=True), seed=0)


def test_loss_backward_reaches_only_trainable(model):
    model.zero_grad(set_to_none=True)
    batch = ConditionBatch(prompts=PROMPTS, target_images=random_images(2, 16))
    out = model.loss(batch, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(out.loss) and out.loss.item() > 0
    out.loss.backward()
    assert_grads_only_on_trainable(model)
    assert model.query_tokens.queries.grad.abs().sum() > 0
    assert model.query_tokens.markers is not None  # the tiny causal LM has no begin/end-of-image tokens
    backbone_params = list(model.backbone.parameters())
    assert backbone_params and not any(p.requires_grad for p in backbone_params)
    assert_groups_sound(model)
    model.zero_grad(set_to_none=True)


def test_prompt_layout_has_system_turn_and_reply_newline(model):
    text = model.backbone.render_prompt("a red circle", 0, with_queries=True)
    assert text.startswith("<|im_start|>system\nYou will be given an image or its caption.")
    assert text.endswith("<|im_start|>user\na red circle<|im_end|>\n<|im_start|>assistant\n\n")
    assert not model.backbone.render_prompt("a red circle", 0, with_queries=False).endswith("\n\n")


def test_system_prompt_folds_into_the_user_turn_when_the_template_has_no_system_role(model):
    tokenizer = model.backbone.tokenizer
    original = tokenizer.chat_template
    tokenizer.chat_template = (
        "{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}"
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
        "<|im_start|>assistant\n"
    )
    try:
        text = model.backbone.render_prompt("a red circle", 0, with_queries=False)
    finally:
        tokenizer.chat_template = original
    assert text.startswith("<|im_start|>user\nYou will be given an image") and "\n\na red circle<|im_end|>" in text


def test_caption_dropout_draws_come_from_the_generator(model):
    images = random_images(8, 16)
    a = model.loss(PROMPTS * 4, images, generator=torch.Generator().manual_seed(3))
    b = model.loss(PROMPTS * 4, images, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a.caption_dropped, b.caption_dropped) and torch.equal(a.loss, b.loss)
    none = model.loss(PROMPTS * 4, images, generator=torch.Generator().manual_seed(3), cfg_dropout=False)
    assert not none.caption_dropped.any()


def test_generation_size_and_batch_independence(model):
    pipe = MetaQueryPipeline(model)
    both = pipe(PROMPTS, generators=generators([11, 12]), num_inference_steps=3)
    single = pipe(PROMPTS[1:], generators=generators([12]), num_inference_steps=3)
    assert [im.size for im in both.images] == [(16, 16), (16, 16)]
    # Exact equality holds on CPU float32 for this slice (uint8 images).
    assert np.array_equal(np.asarray(both.images[1]), np.asarray(single.images[0]))
    chunked = pipe(PROMPTS, generators=generators([11, 12]), num_inference_steps=3, batch_size=1)
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(both.images, chunked.images))
    other = pipe(PROMPTS[1:], generators=generators([13]), num_inference_steps=3)
    assert not np.array_equal(np.asarray(other.images[0]), np.asarray(single.images[0]))
    euler = pipe(PROMPTS[:1], generators=generators([11]), num_inference_steps=3, scheduler="flow-euler",
                 guidance_scale=1.0)
    assert euler.images[0].size == (16, 16) and euler.settings["scheduler"] == "flow-euler"


def test_save_load_round_trip_and_load_model(model, tmp_path):
    pipe_args = dict(generators=generators([5]), num_inference_steps=3)
    before = MetaQueryPipeline(model)(PROMPTS[:1], **pipe_args).images[0]
    model.save_pretrained(tmp_path / "ckpt")
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["config.json", "model.safetensors"]
    card = ModelCard(name="tiny-slice", description="", model=model.config,
                     checkpoint=CheckpointConfig(path=str(tmp_path / "ckpt")))
    loaded = load_model(card)
    after = MetaQueryPipeline(loaded)(PROMPTS[:1], generators=generators([5]), num_inference_steps=3).images[0]
    assert np.array_equal(np.asarray(before), np.asarray(after))
    for name, param in loaded.named_parameters():
        assert param.requires_grad == dict(model.named_parameters())[name].requires_grad, name


def test_from_pretrained_refuses_pickle(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    torch.save({"x": torch.zeros(1)}, tmp_path / "pytorch_model.bin")
    with pytest.raises(UserError, match="never unpickles"):
        MetaQuery.from_pretrained(tmp_path)


def test_random_init_cards_are_seeded_and_missing_checkpoints_fail(model):
    card = ModelCard(name="tiny-random", description="", model=model.config,
                     checkpoint=CheckpointConfig(random_init=True))
    a, b = load_model(card), load_model(card)
    assert torch.equal(a.query_tokens.queries, b.query_tokens.queries)
    assert torch.equal(a.query_tokens.queries, model.query_tokens.queries)  # same default seed
    missing = ModelCard(name="tiny-missing", description="", model=model.config)
    with pytest.raises(MissingCheckpointError):
        load_model(missing)


def test_a_few_optimizer_steps_reduce_the_loss_on_a_fixed_batch():
    model = MetaQuery(tiny_config("causal_lm", "pixel", decoder_train=True), seed=1).train()
    optimizer = torch.optim.AdamW(model.parameter_groups(0.01), lr=3e-3)
    images = random_images(2, 16, seed=5)

    def fixed_loss():  # same noise, timesteps and (no) dropout every step
        return model.loss(PROMPTS, images, generator=torch.Generator().manual_seed(0), cfg_dropout=False).loss

    first = fixed_loss().item()
    for _ in range(15):
        optimizer.zero_grad(set_to_none=True)
        fixed_loss().backward()
        optimizer.step()
    assert fixed_loss().item() < 0.7 * first
    assert not any(p.grad is not None for p in model.backbone.parameters())
