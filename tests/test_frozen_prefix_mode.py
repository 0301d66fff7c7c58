"""Frozen-prefix mode of the condition encoder: the training loss and the trainable parameters' gradients equal those
of the full-sequence path (fp32, float rounding), with and without the memo, in both condition modes."""
import pytest
import torch

from helpers_model import random_images, tiny_config
from mqeval.model.metaquery import MetaQuery

# Repeated and empty prompts: the frozen-prefix path encodes each distinct prompt once.
PROMPTS = ["a red circle", "two blue squares above a green triangle and one more purple diamond", "", "a red circle"]


def _frozen_prefix(model: MetaQuery, memo_size: int) -> MetaQuery:
    from mqeval.model.frozen_prefix import use_frozen_prefix

    use_frozen_prefix(model.backbone, memo_size)
    return model


def _loss_and_grads(model: MetaQuery) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    model.zero_grad(set_to_none=True)
    images = random_images(len(PROMPTS), model.config.decoder.resolution)
    out = model.loss(PROMPTS, images, generator=torch.Generator().manual_seed(5), cfg_dropout=False)
    out.loss.backward()
    return out.loss.detach(), {n: p.grad.clone() for n, p in model.named_trainable_parameters()}


@pytest.mark.parametrize("mode,memo_size,freeze_queries", [
    ("metaquery", 0, False),
    ("metaquery", 16, False),  # prompt key/values memoised across steps
    ("metaquery", 16, True),  # frozen queries: the query states themselves are memoised
    ("last-layer", 0, False),
    ("last-layer", 16, False),
])
def test_loss_and_gradients_match_full_sequence(mode, memo_size, freeze_queries):
    config = tiny_config(mode=mode, num_queries=4)
    full, fast = MetaQuery(config), _frozen_prefix(MetaQuery(config), memo_size)
    if freeze_queries:
        for model in (full, fast):
            model.query_tokens.requires_grad_(False)
    full_loss, full_grads = _loss_and_grads(full)
    assert full_grads and all(g.abs().sum() > 0 for g in full_grads.values())
    for _ in range(2 if memo_size else 1):  # the second step runs from the memo
        fast_loss, fast_grads = _loss_and_grads(fast)
        torch.testing.assert_close(fast_loss, full_loss, rtol=1e-5, atol=1e-6)
        assert fast_grads.keys() == full_grads.keys()
        for name, grad in fast_grads.items():
            torch.testing.assert_close(grad, full_grads[name], rtol=1e-4, atol=1e-6, msg=name)
