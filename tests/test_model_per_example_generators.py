"""One generator per example: an example's dropout, timestep and noise do not depend on the batch it is in, so a
batch's loss is the mean of its examples' losses (what makes 2 processes x b train the model of 1 x 2b)."""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from helpers_model import PROMPTS, generators, random_images, tiny_config

from mqeval.model.metaquery import MetaQuery


@pytest.mark.parametrize("backbone, decoder", [("causal_lm", "pixel"), ("llava_onevision", "sd15")])
def test_batch_loss_is_the_mean_of_its_examples(backbone, decoder):
    model = MetaQuery(tiny_config(backbone, decoder), seed=0).eval()
    model.config = replace(model.config, caption_dropout=0.5)  # dropout draws that matter
    size = model.decoder.default_resolution
    images = random_images(len(PROMPTS), size)
    seeds = [11, 12]
    with torch.no_grad():
        batch = model(PROMPTS, images, generator=generators(seeds))
        alone = [model([p], images[i:i + 1], generator=generators([s]))
                 for i, (p, s) in enumerate(zip(PROMPTS, seeds))]
    assert batch.caption_dropped.tolist() == [bool(a.caption_dropped[0]) for a in alone]
    torch.testing.assert_close(batch.loss, torch.stack([a.loss for a in alone]).mean(), rtol=1e-5, atol=1e-6)
    with torch.no_grad():  # and the same examples with one shared generator draw differently: the test has teeth
        shared = model(PROMPTS, images, generator=torch.Generator().manual_seed(11))
    assert not torch.allclose(shared.loss, batch.loss)


def test_a_generator_list_must_match_the_batch():
    model = MetaQuery(tiny_config(), seed=0)
    with pytest.raises(ValueError, match="1 generators for a batch of 2"):
        model(PROMPTS, random_images(2, model.decoder.default_resolution), generator=generators([0]))
