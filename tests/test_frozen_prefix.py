"""Frozen-prefix query encoding equals the full-sequence forward/backward (values and gradients, fp32)."""
import pytest
import torch

from mqeval.model import frozen_prefix
from mqeval.model.loading import load_model
from mqeval.zoo import load_card

PROMPTS = ["a red circle", "two blue squares above a green triangle and one more purple diamond", ""]


@pytest.fixture(scope="module")
def model():
    return load_model(load_card("metaquery-tiny"))


def _grads(model, encode):
    tokens = model.query_tokens
    for p in tokens.parameters():
        p.grad = None
    hidden = encode()
    weights = torch.linspace(-1, 1, hidden.numel()).view_as(hidden)
    (hidden * weights).sum().backward()
    return hidden.detach(), [p.grad.clone() for p in tokens.parameters()]


@pytest.mark.parametrize("memoise", [False, True])
def test_gradients_match_full_sequence(model, memoise):
    tokens = model.query_tokens
    naive_h, naive_g = _grads(model, lambda: model.backbone(PROMPTS, None, tokens.queries, tokens.markers).hidden)
    cache = frozen_prefix.PrefixCache() if memoise else None
    for _ in range(2 if memoise else 1):  # the second pass runs from memoised key/values only
        fast_h, fast_g = _grads(
            model, lambda: frozen_prefix.query_hidden_states(model.backbone, PROMPTS, tokens.queries,
                                                             tokens.markers, cache).hidden
        )
        torch.testing.assert_close(fast_h, naive_h, rtol=1e-5, atol=1e-5)
        assert len(fast_g) == len(naive_g) and all(g.abs().sum() > 0 for g in naive_g)
        for fast, naive in zip(fast_g, naive_g):
            torch.testing.assert_close(fast, naive, rtol=1e-4, atol=1e-6)
    if memoise:
        assert cache.misses == len(PROMPTS) and cache.hits == len(PROMPTS)


def test_prefix_has_no_autograd_graph(model):
    tokens = model.query_tokens
    layers, mask = frozen_prefix._prefix_kv(model.backbone, ["a red circle"])
    assert all(not k.requires_grad and not v.requires_grad for k, v in layers)
    out = frozen_prefix.query_hidden_states(model.backbone, ["a red circle"], tokens.queries, tokens.markers)
    assert out.hidden.requires_grad and out.hidden.shape[1] == tokens.queries.shape[0]
