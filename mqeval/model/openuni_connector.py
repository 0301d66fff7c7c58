"""OpenUni's connector (wusize/OpenUni @ d1703fc, src/models/connector/modeling_connector.py and
src/models/openuni/internvl3_sana_hf.py): a SigLIP-style bidirectional encoder (pre-LayerNorm blocks, biased
attention without rotary embedding or QK-norm, a GELU(tanh) MLP) between plain linear projections, and no output
norm. `enc-proj`: encoder at the MLLM width, then one Linear to the decoder's caption width (OpenUni's released
models); `proj-enc`: one Linear, then the encoder at the caption width; `proj-enc-proj`: Linear, encoder, Linear.
Parameter names follow OpenUni's (`connector.layers.N...`, `projector...`) so its checkpoints map one to one.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mqeval.errors import ConfigError
from mqeval.model.metaquery_config import ConnectorConfig

LAYER_NORM_EPS = 1e-6  # OpenUni's ConnectorConfig default


class SiglipAttention(nn.Module):
    def __init__(self, width: int, num_heads: int):
        super().__init__()
        self.num_heads, self.head_dim = num_heads, width // num_heads
        self.q_proj, self.k_proj = nn.Linear(width, width), nn.Linear(width, width)
        self.v_proj, self.out_proj = nn.Linear(width, width), nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape

        def heads(t: torch.Tensor) -> torch.Tensor:
            return t.view(b, n, self.num_heads, self.head_dim).transpose(1, 2)

        out = F.scaled_dot_product_attention(heads(self.q_proj(x)), heads(self.k_proj(x)), heads(self.v_proj(x)))
        return self.out_proj(out.transpose(1, 2).reshape(b, n, -1))


class SiglipMLP(nn.Module):
    def __init__(self, width: int, hidden: int):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(width, hidden), nn.Linear(hidden, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


class SiglipLayer(nn.Module):
    def __init__(self, width: int, num_heads: int, hidden: int):
        super().__init__()
        self.layer_norm1 = nn.LayerNorm(width, eps=LAYER_NORM_EPS)
        self.self_attn = SiglipAttention(width, num_heads)
        self.layer_norm2 = nn.LayerNorm(width, eps=LAYER_NORM_EPS)
        self.mlp = SiglipMLP(width, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.self_attn(self.layer_norm1(x))
        return x + self.mlp(self.layer_norm2(x))


class SiglipEncoder(nn.Module):
    """OpenUni's ConnectorEncoder: no mask (its queries are never padded), no final norm."""

    def __init__(self, width: int, config: ConnectorConfig):
        super().__init__()
        num_heads = config.num_heads or max(1, width // 64)
        if width % num_heads:
            raise ConfigError(f"connector: width {width} does not split into {num_heads} heads")
        hidden = config.intermediate_size or int(width * config.mlp_ratio)
        self.layers = nn.ModuleList(SiglipLayer(width, num_heads, hidden) for _ in range(config.num_layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


class OpenUniConnector(nn.Module):
    def __init__(self, in_dim: int, out_dim: int, config: ConnectorConfig):
        super().__init__()
        self.architecture = config.architecture
        width = config.width or (in_dim if config.architecture == "enc-proj" else out_dim)
        if config.architecture == "enc-proj" and width != in_dim:
            raise ConfigError(f"connector: enc-proj encodes at the MLLM width {in_dim}, not {width}")
        if config.architecture == "proj-enc" and width != out_dim:
            raise ConfigError(f"connector: proj-enc encodes at the caption width {out_dim}, not {width}")
        self.connector = SiglipEncoder(width, config)
        if config.architecture == "enc-proj":
            self.projector: nn.Module = nn.Linear(width, out_dim)
        elif config.architecture == "proj-enc":
            self.projector = nn.Linear(in_dim, width)
        else:
            self.projector = nn.ModuleList([nn.Linear(in_dim, width), nn.Linear(width, out_dim)])

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if self.architecture == "enc-proj":
            return self.projector(self.connector(hidden))
        if self.architecture == "proj-enc":
            return self.connector(self.projector(hidden))
        return self.projector[1](self.connector(self.projector[0](hidden)))
