"""The Qwen2-style bidirectional connector encoder, Enc-Proj and Proj-Enc."""
from __future__ import annotations

import pytest
import torch

from mqeval.errors import ConfigError
from mqeval.model.config import ConnectorConfig
from mqeval.model.connectors import BidirectionalEncoder, EncProjConnector, ProjEncConnector, RMSNorm, build_connector


def test_shapes_and_architectures():
    torch.manual_seed(0)
    cfg = ConnectorConfig(architecture="enc-proj", num_layers=2)
    enc_proj = build_connector(128, 48, cfg)
    assert isinstance(enc_proj, EncProjConnector) and isinstance(enc_proj.out_norm, RMSNorm)
    assert enc_proj.encoder.layers[0].attn.num_heads == 2  # 128 / 64
    assert enc_proj.encoder.layers[0].gate_proj.out_features == 4 * 128
    assert len(enc_proj.encoder.layers) == 2
    proj_enc = build_connector(128, 64, ConnectorConfig(architecture="proj-enc", num_layers=1, num_heads=4))
    assert isinstance(proj_enc, ProjEncConnector) and proj_enc.encoder.layers[0].attn.num_heads == 4
    x = torch.randn(2, 5, 128)
    assert enc_proj(x).shape == (2, 5, 48) and proj_enc(x).shape == (2, 5, 64)
    with pytest.raises(ConfigError):
        BidirectionalEncoder(96, ConnectorConfig(num_heads=5))


def test_attention_is_bidirectional_and_padding_invariant():
    torch.manual_seed(0)
    enc = BidirectionalEncoder(32, ConnectorConfig(num_layers=2, num_heads=2)).eval()
    x = torch.randn(1, 6, 32)
    changed = x.clone()
    changed[:, -1] += 1.0
    with torch.no_grad():
        assert not torch.allclose(enc(x, None)[:, 0], enc(changed, None)[:, 0])  # the first token sees the last
        padded = torch.cat([torch.randn(1, 3, 32), x], dim=1)
        mask = torch.tensor([[False] * 3 + [True] * 6])
        assert torch.allclose(enc(padded, mask)[:, 3:], enc(x, torch.ones(1, 6, dtype=torch.bool)), atol=1e-5)
