"""Tiny LLaVA-OneVision + SD1.5 (VAE, DDPM) with a Proj-Enc connector; learned begin/end markers."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from helpers_model import (
    PROMPTS, assert_grads_only_on_trainable, assert_groups_sound, generators, random_images, tiny_config,
)
from mqeval.errors import ConfigError
from mqeval.model.connectors import ProjEncConnector
from mqeval.model.metaquery import MetaQuery
from mqeval.model.pipeline import MetaQueryPipeline


@pytest.fixture(scope="module")
def model():
    return MetaQuery(tiny_config("llava_onevision", "sd15", architecture="proj-enc",
                                 prediction_type="v_prediction"), seed=0)


def test_proj_enc_encodes_at_the_decoder_width(model):
    assert isinstance(model.connector, ProjEncConnector)
    assert model.connector.projector[0].in_features == model.backbone.hidden_size
    assert model.connector.encoder.layers[0].input_norm.weight.shape[0] == model.decoder.caption_dim
    assert model.query_tokens.markers is not None  # this tokenizer has no begin/end-of-image tokens


def test_v_prediction_loss_with_image_inputs(model):
    model.zero_grad(set_to_none=True)
    inputs = [[Image.new("RGB", (30, 30), (0, 200, 0))], [Image.new("RGB", (50, 20), (0, 0, 200))]]
    out = model.loss(PROMPTS, random_images(2, 32), input_images=inputs, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(out.loss)
    out.loss.backward()
    assert_grads_only_on_trainable(model)
    assert model.query_tokens.markers.grad is not None
    assert all(p.grad is None for p in model.decoder.parameters())
    assert_groups_sound(model)
    model.zero_grad(set_to_none=True)


@pytest.mark.parametrize("scheduler", ["ddim", "euler"])
def test_generation_is_batch_independent(model, scheduler):
    pipe = MetaQueryPipeline(model)
    kwargs = dict(num_inference_steps=2, guidance_scale=2.0, scheduler=scheduler)
    both = pipe(PROMPTS, negative_prompts=["blurry", "blurry"], generators=generators([1, 2]), **kwargs)
    one = pipe(PROMPTS[1:], negative_prompts=["blurry"], generators=generators([2]), **kwargs)
    assert [im.size for im in both.images] == [(32, 32)] * 2
    assert np.array_equal(np.asarray(both.images[1]), np.asarray(one.images[0]))


def test_flow_scheduler_is_refused_for_sd15(model):
    with pytest.raises(ConfigError, match="does not fit the sd15 decoder"):
        MetaQueryPipeline(model)(PROMPTS[:1], generators=generators([0]), num_inference_steps=1,
                                 scheduler="flow-euler")


def test_lora_stays_inside_the_language_model():
    # SigLIP also has q_proj/k_proj/v_proj: the adapters must not reach the vision tower.
    lora = MetaQuery(tiny_config("llava_onevision", "pixel", tuning="lora"))
    names = [n for n, p in lora.backbone.named_parameters() if p.requires_grad]
    assert len(names) == 16  # 2 layers x (q, k, v, o) x (A, B)
    assert all("language_model" in n and "lora_" in n for n in names)
