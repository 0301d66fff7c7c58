"""Model ids: tiny:// builds, GGUF backbones, and fast, clear failures when a hub model is not available offline."""
from __future__ import annotations

import dataclasses
import time

import pytest
import torch

from helpers_model import PROMPTS, tiny_config, write_tiny_gguf
from mqeval.errors import ConfigError, UnknownNameError, UserError
from mqeval.model.hub import resolve_model_path
from mqeval.model.loading import load_model
from mqeval.model.metaquery import MetaQuery
from mqeval.model.tiny import materialize
from mqeval.model.card import CheckpointConfig, ModelCard


def test_materialize_is_idempotent_and_atomic(fresh_cache):
    first = materialize("tiny://causal_lm")
    assert (first / ".complete").is_file() and (first / "model.safetensors").is_file()
    assert materialize("tiny://causal_lm") == first
    assert not [p for p in first.parent.iterdir() if p.name.startswith(".")]  # no temp folders left behind
    with pytest.raises(UnknownNameError, match="causal_lm"):
        materialize("tiny://causal-lm")


def test_uncached_hub_model_fails_fast_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    start = time.monotonic()
    with pytest.raises(UserError, match="HF_HUB_OFFLINE"):
        resolve_model_path("Qwen/Qwen2.5-VL-7B-Instruct", what="backbone")
    config = tiny_config()
    config = dataclasses.replace(config, backbone=dataclasses.replace(config.backbone, model_id="nobody/no-model"))
    with pytest.raises(UserError, match="hf download nobody/no-model"):
        MetaQuery(config)
    missing_decoder = dataclasses.replace(
        tiny_config(decoder="sd15"), decoder=dataclasses.replace(tiny_config(decoder="sd15").decoder,
                                                                  model_id="nobody/no-unet"))
    with pytest.raises(UserError, match="decoder 'nobody/no-unet'"):  # checked before the backbone loads
        MetaQuery(missing_decoder)
    assert time.monotonic() - start < 5
    with pytest.raises(UserError, match="neither an existing folder"):
        resolve_model_path(str(tmp_path / "missing" / "model"))


def test_gguf_backbone_matches_the_safetensors_one(tmp_path):
    folder = tmp_path / "gguf"
    folder.mkdir()
    write_tiny_gguf(materialize("tiny://causal_lm"), folder / "tiny-f32.gguf")
    base = tiny_config()
    gguf_config = dataclasses.replace(
        base, backbone=dataclasses.replace(base.backbone, model_id=str(folder), gguf_file="tiny-f32.gguf")
    )
    from_gguf, from_safetensors = MetaQuery(gguf_config, seed=0), MetaQuery(base, seed=0)
    with torch.no_grad():
        a = from_gguf.encode_condition(PROMPTS)
        b = from_safetensors.encode_condition(PROMPTS)
    assert torch.allclose(a.hidden, b.hidden, atol=1e-5)


def test_checkpoint_must_match_the_card(tmp_path):
    model = MetaQuery(tiny_config())
    model.save_pretrained(tmp_path)
    other = tiny_config(num_queries=6)
    card = ModelCard(name="tiny-other", description="", model=other, checkpoint=CheckpointConfig(path=str(tmp_path)))
    with pytest.raises(ConfigError, match="num_queries"):
        load_model(card)
    with pytest.raises(UserError, match="does not fit"):  # weights from another shape under a forged config
        MetaQuery.from_pretrained(tmp_path, config=tiny_config(architecture="proj-enc"))


def test_model_sources_are_a_registry_with_suggestions():
    """`scheme://name` ids go to LOCAL_SOURCES; an unknown scheme is a user error with close matches."""
    with pytest.raises(UnknownNameError, match="Did you mean: smollm2"):
        resolve_model_path("smolm2://135m-instruct")
    with pytest.raises(UserError, match="ships only smollm2://135m-instruct"):
        resolve_model_path("smollm2://1.7b")
