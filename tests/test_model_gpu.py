"""CUDA checks of the model core (marked gpu: deselected by default, run them on a machine with a GPU)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers_model import PROMPTS, generators, random_images, tiny_config
from mqeval.model.metaquery import MetaQuery
from mqeval.model.pipeline import MetaQueryPipeline

pytestmark = pytest.mark.gpu


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_bf16_cuda_loss_and_cpu_seeded_generation():
    model = MetaQuery(tiny_config("qwen2_5_vl", "sana"), dtype=torch.bfloat16).to("cuda")
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out = model.loss(PROMPTS, random_images(2, 64), generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(out.loss)
    out.loss.backward()
    assert model.query_tokens.queries.grad is not None
    pipe = MetaQueryPipeline(model)
    both = pipe(PROMPTS, generators=generators([1, 2]), num_inference_steps=3, guidance_scale=2.0)
    one = pipe(PROMPTS[1:], generators=generators([2]), num_inference_steps=3, guidance_scale=2.0)
    diff = np.abs(np.asarray(both.images[1]).astype(int) - np.asarray(one.images[0]).astype(int))
    assert diff.max() <= 2  # bf16 kernels may differ by batch size
