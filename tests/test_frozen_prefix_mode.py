"""Frozen-prefix mode of the condition encoder: the training loss and the trainable parameters' gradients equal those
of the full-sequence path (fp32, float rounding), with and without the memo, in both condition modes; the mode is
chosen by a typed value (model and train config), never by replacing a module's `forward`."""
import pytest
import torch
import yaml

from helpers_cli_inprocess import run_cli
from helpers_model import random_images, tiny_config
from mqeval.model.condition_encoding import FullSequenceEncoder
from mqeval.model.frozen_prefix import FrozenPrefixEncoder
from mqeval.model.metaquery import MetaQuery
from mqeval.model.metaquery_config import ConditionEncoding
from mqeval.paths import MODEL_ZOO_DIR

# Repeated and empty prompts: the frozen-prefix path encodes each distinct prompt once.
PROMPTS = ["a red circle", "two blue squares above a green triangle and one more purple diamond", "", "a red circle"]


def _frozen_prefix(config, memo_size: int) -> MetaQuery:
    return MetaQuery(config, encoding=ConditionEncoding("frozen-prefix", memo_size))


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
    full, fast = MetaQuery(config), _frozen_prefix(config, memo_size)
    assert isinstance(full.condition_encoder, FullSequenceEncoder)
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
    distinct = len(set(PROMPTS))
    memo = fast.condition_encoder.state_memo if freeze_queries or mode == "last-layer" else \
        fast.condition_encoder.prefix_memo
    if memo_size:  # the frozen-prefix path ran (not the full-sequence fallback): each distinct prompt encoded once
        assert (memo.misses, memo.hits) == (distinct, distinct)


def _no_instance_forward(model: torch.nn.Module) -> list[str]:
    return [name or "<root>" for name, module in model.named_modules() if "forward" in vars(module)]


def test_the_mode_patches_no_forward_and_leaves_the_weights_alone():
    config = tiny_config(num_queries=4)
    built = MetaQuery(config, encoding=ConditionEncoding("frozen-prefix", 8))
    switched = MetaQuery(config)
    before = dict(switched.state_dict())
    switched.set_condition_encoding(ConditionEncoding("frozen-prefix"))
    for model in (built, switched):
        assert isinstance(model.condition_encoder, FrozenPrefixEncoder)
        assert model.condition_encoding.mode == "frozen-prefix"
        assert _no_instance_forward(model) == []
        assert not list(model.condition_encoder.parameters()) and not list(model.condition_encoder.buffers())
    assert built.condition_encoding.memo_size == 8 and switched.condition_encoding.memo_size == 0
    assert switched.state_dict().keys() == before.keys()
    assert [n for n, _ in built.named_parameters()] == [n for n, _ in MetaQuery(config).named_parameters()]


def test_trainer_selects_the_mode_from_the_train_config(tmp_path):
    from helpers_train import tiny_train_config
    from mqeval.train.loop import Trainer

    for frozen_prefix, cache, kind in [(True, 64, FrozenPrefixEncoder), (False, 0, FullSequenceEncoder)]:
        config = tiny_train_config(tmp_path / str(frozen_prefix), frozen_prefix=frozen_prefix,
                                   condition_cache_size=cache)
        trainer = Trainer(config)
        assert isinstance(trainer.unwrapped.condition_encoder, kind)
        assert trainer.unwrapped.condition_encoding == ConditionEncoding(
            "frozen-prefix" if frozen_prefix else "full-sequence", cache)
        assert _no_instance_forward(trainer.unwrapped) == []


@pytest.mark.parametrize("keys,message", [
    ({"frozen_prefix": "yes"}, "frozen_prefix: expected bool, got str 'yes'"),
    ({"condition_cache_size": -1}, "the condition memo size must be 0 (none) or more, got -1"),
    ({"frozen_prefix": False, "condition_cache_size": 16}, "a condition memo (size 16) needs the frozen-prefix mode"),
])
def test_a_wrong_frozen_prefix_setting_is_one_error_line(tmp_path, keys, message):
    raw = yaml.safe_load((MODEL_ZOO_DIR / "metaquery-tiny.train.yaml").read_text())
    path = tmp_path / "bad.train.yaml"
    path.write_text(yaml.safe_dump({**raw, **keys}))
    result = run_cli("train", path, "--output-dir", tmp_path / "out")
    assert result.code != 0 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.last_line.startswith("Error: ") and message in result.last_line, result.stderr
