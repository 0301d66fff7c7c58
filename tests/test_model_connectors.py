"""The Qwen2-style bidirectional connector encoder, Enc-Proj and Proj-Enc."""
from __future__ import annotations

import pytest
import torch

from mqeval.errors import ConfigError
from mqeval.model.metaquery_config import ConnectorConfig
from mqeval.model.connectors import BidirectionalEncoder, EncProjConnector, ProjEncConnector, build_connector, rms_norm


def test_shapes_and_architectures():
    torch.manual_seed(0)
    cfg = ConnectorConfig(architecture="enc-proj", num_layers=2)
    enc_proj = build_connector(128, 48, cfg)
    assert isinstance(enc_proj, EncProjConnector) and isinstance(enc_proj.out_norm, torch.nn.RMSNorm)
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


def reference_rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """The norm mqeval wrote by hand before it used torch.nn.RMSNorm: float32 statistics, gain, back to x's dtype."""
    normed = x.float() * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + eps)
    return (weight * normed).to(x.dtype)


@pytest.mark.filterwarnings("ignore:Mismatch dtype between input and weight")  # torch: no fused kernel then
@pytest.mark.parametrize("dtype, weight_dtype", [(torch.float32, torch.float32), (torch.bfloat16, torch.bfloat16),
                                                 (torch.bfloat16, torch.float32)])  # the last: autocast training
@pytest.mark.parametrize("eps, scale", [(1e-6, 1.0), (1e-5, 0.37)])
def test_rms_norm_matches_the_hand_written_one(dtype, weight_dtype, eps, scale):
    torch.manual_seed(0)
    norm = rms_norm(48, eps=eps, scale=scale)
    assert torch.equal(norm.weight, torch.full((48,), scale)) and norm.eps == eps
    with torch.no_grad():
        norm.weight.mul_(torch.rand(48) + 0.5)
    norm = norm.to(weight_dtype)
    x = (torch.randn(3, 5, 48) * 4).to(dtype)
    torch.testing.assert_close(norm(x), reference_rms_norm(x, norm.weight, eps))
    tiny = torch.full((2, 48), 1e-4, dtype=dtype)  # where eps dominates the mean square
    torch.testing.assert_close(norm(tiny), reference_rms_norm(tiny, norm.weight, eps))


@pytest.mark.parametrize("name", ["metaquery-smol", "metaquery-smol-last-layer"])
def test_shipped_connector_and_decoder_weights_load_with_the_same_keys(name):
    """The norms' parameter names and shapes are those the shipped safetensors hold (strict load)."""
    from safetensors.torch import load_file

    from mqeval.model.decoders import build_decoder
    from mqeval.model.metaquery import MetaQuery
    from mqeval.paths import MODEL_ZOO_DIR

    folder = MODEL_ZOO_DIR / "weights" / name
    config = MetaQuery.read_config(folder)
    tensors = load_file(str(folder / "model.safetensors"))
    decoder = build_decoder(config.decoder)
    smollm2_width = 576  # both cards' connectors read SmolLM2-135M's hidden states
    connector = build_connector(smollm2_width, decoder.caption_dim, config.connector, decoder.condition_scale)
    for prefix, module in (("connector.", connector), ("decoder.", decoder)):
        part = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        module.load_state_dict(part, strict=True)
