"""Data-dependent connector init: the first connector layer sees per-channel standardised backbone outputs."""
import dataclasses

import pytest
import torch

from mqeval.errors import ConfigError
from mqeval.model.metaquery import MetaQuery
from mqeval.train.connector_init import backbone_statistics, standardize_connector_input
from mqeval.zoo import load_card

PROMPTS = ["a red circle", "two blue squares", "a green triangle above a purple diamond", "an orange star", ""]


def _model(architecture):
    card = load_card("metaquery-tiny")
    config = dataclasses.replace(card.model, connector=dataclasses.replace(card.model.connector,
                                                                           architecture=architecture))
    return MetaQuery(config, seed=0)


def test_standardize_folds_mean_and_std_into_the_first_layer():
    model = _model("proj-enc")
    first = model.connector.projector[0]
    weight, bias = first.weight.detach().clone(), first.bias.detach().clone()
    mean, std = backbone_statistics(model, PROMPTS)
    standardize_connector_input(model, PROMPTS)
    std = std + 1e-2 * std.mean()
    states = torch.randn(7, weight.shape[1]) * std + mean
    expected = ((states - mean) / std) @ weight.T + bias
    torch.testing.assert_close(first(states), expected, rtol=1e-4, atol=1e-4)


def test_standardize_refuses_enc_proj():
    with pytest.raises(ConfigError):
        standardize_connector_input(_model("enc-proj"), PROMPTS)
