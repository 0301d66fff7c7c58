"""mqeval's OpenUni connector against OpenUni's own ConnectorEncoder + projections (wusize/OpenUni @ d1703fc): the
fixture tests/fixtures/openuni_connector was written by scripts/openuni_reference.py with OpenUni's classes in the
side environment; here the same weights, under the same names, give the same output."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from mqeval.errors import ConfigError
from mqeval.model.connectors import build_connector
from mqeval.model.metaquery_config import ConnectorConfig

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "openuni_connector"
ARCHITECTURES = {"enc_proj": ("enc-proj", None), "proj_enc": ("proj-enc", None), "proj_enc_proj": ("proj-enc-proj", 32)}


@pytest.mark.parametrize("proj_type", sorted(ARCHITECTURES))
def test_the_same_weights_give_openunis_output(proj_type):
    reference = load_file(str(FIXTURE / f"{proj_type}.safetensors"))
    architecture, width = ARCHITECTURES[proj_type]
    config = ConnectorConfig(architecture=architecture, layout="openuni", num_layers=2, num_heads=2,
                             intermediate_size=80, width=width)
    connector = build_connector(64, 48, config).eval()
    weights = {k: v for k, v in reference.items() if k not in ("input", "output")}
    assert set(weights) == set(connector.state_dict())  # OpenUni's names, one to one
    connector.load_state_dict(weights)
    with torch.no_grad():
        out = connector(reference["input"], torch.ones(reference["input"].shape[:2], dtype=torch.bool))
    assert (out - reference["output"]).abs().max() < 1e-5


def test_an_impossible_openuni_shape_is_a_config_error():
    with pytest.raises(ConfigError, match="enc-proj encodes at the MLLM width 64"):
        build_connector(64, 48, ConnectorConfig(architecture="enc-proj", layout="openuni", width=32, num_layers=1))
