"""Connectors from MLLM hidden states to the decoder's caption space.

Both are built around a bidirectional Qwen2-style encoder: pre-RMSNorm blocks, rotary position embedding over the
token positions, RMSNorm on queries and keys (QK-norm), SwiGLU MLP of 4x width. Enc-Proj encodes at the MLLM width
and then projects (Linear -> GELU(tanh) -> Linear -> RMSNorm); Proj-Enc projects first and encodes at the decoder
width, its encoder's final norm giving the output scale.

Layout "official" is the authors' Qwen2Encoder (models/transformer_encoder.py @ 206f6de): QK-norm with one gain per
head, after the rotary embedding, and no final norm in Enc-Proj's encoder. "mqeval-v1" is mqeval's first connector
(one QK-norm gain for all heads, before the rotary embedding, a final encoder norm), which trained checkpoints use.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mqeval.errors import ConfigError
from mqeval.model.metaquery_config import ConnectorConfig


INIT_STD = 0.014


def rms_norm(dim: int, eps: float = 1e-6, scale: float = 1.0) -> nn.RMSNorm:
    """torch's RMSNorm (float32 statistics for low-precision inputs) with its gain initialised to `scale`."""
    norm = nn.RMSNorm(dim, eps=eps)
    nn.init.constant_(norm.weight, scale)
    return norm


def rotary_cos_sin(positions: torch.Tensor, head_dim: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin of shape [B, L, head_dim] for integer positions [B, L] (rotate-half convention)."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, device=positions.device, dtype=torch.float32) / head_dim))
    angles = positions.float()[..., None] * inv_freq
    angles = torch.cat([angles, angles], dim=-1)
    return angles.cos(), angles.sin()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x: [B, H, L, D]; cos/sin: [B, L, D]."""
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    cos, sin = cos[:, None].to(x.dtype), sin[:, None].to(x.dtype)
    return x * cos + rotated * sin


class HeadNorm(nn.Module):
    """The official QK-norm: x / |x| * sqrt(head_dim) * gain, with a gain per head; x is [B, H, L, head_dim]."""

    def __init__(self, head_dim: int, num_heads: int):
        super().__init__()
        self.scale = head_dim**0.5
        self.gamma = nn.Parameter(torch.ones(num_heads, 1, head_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(x, dim=-1) * self.gamma * self.scale


class EncoderAttention(nn.Module):
    def __init__(self, width: int, num_heads: int, layout: str):
        super().__init__()
        self.num_heads, self.head_dim = num_heads, width // num_heads
        self.q_proj = nn.Linear(width, width, bias=True)
        self.k_proj = nn.Linear(width, width, bias=True)
        self.v_proj = nn.Linear(width, width, bias=True)
        self.o_proj = nn.Linear(width, width, bias=False)
        self.norm_after_rotary = layout == "official"
        norm = (lambda: HeadNorm(self.head_dim, num_heads)) if self.norm_after_rotary else (
            lambda: rms_norm(self.head_dim))
        self.q_norm, self.k_norm = norm(), norm()

    def forward(self, x, cos, sin, key_mask: torch.Tensor | None) -> torch.Tensor:
        b, n, _ = x.shape

        def heads(t: torch.Tensor) -> torch.Tensor:
            return t.view(b, n, self.num_heads, self.head_dim).transpose(1, 2)

        q, k = heads(self.q_proj(x)), heads(self.k_proj(x))
        if self.norm_after_rotary:
            q, k = self.q_norm(apply_rotary(q, cos, sin)), self.k_norm(apply_rotary(k, cos, sin))
        else:
            q, k = apply_rotary(self.q_norm(q), cos, sin), apply_rotary(self.k_norm(k), cos, sin)
        v = heads(self.v_proj(x))
        attn_mask = None if key_mask is None else key_mask[:, None, None, :].bool()
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, is_causal=False)
        return self.o_proj(out.transpose(1, 2).reshape(b, n, -1))


class EncoderLayer(nn.Module):
    def __init__(self, width: int, num_heads: int, mlp_ratio: float, layout: str):
        super().__init__()
        hidden = int(width * mlp_ratio)
        self.input_norm = rms_norm(width)
        self.attn = EncoderAttention(width, num_heads, layout)
        self.post_attention_norm = rms_norm(width)
        self.gate_proj = nn.Linear(width, hidden, bias=False)
        self.up_proj = nn.Linear(width, hidden, bias=False)
        self.down_proj = nn.Linear(hidden, width, bias=False)

    def forward(self, x, cos, sin, key_mask):
        x = x + self.attn(self.input_norm(x), cos, sin, key_mask)
        h = self.post_attention_norm(x)
        return x + self.down_proj(F.silu(self.gate_proj(h)) * self.up_proj(h))


class BidirectionalEncoder(nn.Module):
    """Qwen2-style transformer encoder without a causal mask. Padded keys are masked; padded rows pass through."""

    def __init__(self, width: int, config: ConnectorConfig, final_norm: bool = True):
        super().__init__()
        num_heads = config.num_heads or max(1, width // 64)
        if width % num_heads or (width // num_heads) % 2:
            raise ConfigError(f"connector: width {width} does not split into {num_heads} heads of even size")
        self.rope_theta = config.rope_theta
        self.head_dim = width // num_heads
        self.layers = nn.ModuleList(EncoderLayer(width, num_heads, config.mlp_ratio, config.layout)
                                    for _ in range(config.num_layers))
        self.norm = rms_norm(width) if final_norm else None
        for module in self.modules():  # Qwen2-style init (the official connector uses initializer_range 0.014)
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, std=INIT_STD)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        if mask is None:
            positions = torch.arange(x.shape[1], device=x.device).expand(x.shape[0], -1)
        else:  # positions count real tokens only, so left padding does not shift them
            positions = (mask.long().cumsum(-1) - 1).clamp(min=0)
        cos, sin = rotary_cos_sin(positions, self.head_dim, self.rope_theta)
        for layer in self.layers:
            x = layer(x, cos, sin, mask)
        return x if self.norm is None else self.norm(x)


def projector(in_dim: int, out_dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_dim, out_dim), nn.GELU(approximate="tanh"), nn.Linear(out_dim, out_dim))


class EncProjConnector(nn.Module):
    def __init__(self, in_dim: int, out_dim: int, config: ConnectorConfig, output_scale: float = 1.0):
        super().__init__()
        self.encoder = BidirectionalEncoder(in_dim, config, final_norm=config.layout != "official")
        self.projector = projector(in_dim, out_dim)
        self.out_norm = rms_norm(out_dim, eps=1e-5, scale=output_scale)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.out_norm(self.projector(self.encoder(hidden, mask)))


class ProjEncConnector(nn.Module):
    def __init__(self, in_dim: int, out_dim: int, config: ConnectorConfig, output_scale: float = 1.0):
        super().__init__()
        self.projector = projector(in_dim, out_dim)
        self.encoder = BidirectionalEncoder(out_dim, config)
        with torch.no_grad():
            self.encoder.norm.weight.fill_(output_scale)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.encoder(self.projector(hidden), mask)


def build_connector(in_dim: int, out_dim: int, config: ConnectorConfig, output_scale: float = 1.0) -> nn.Module:
    """`output_scale` initialises the final RMSNorm gain to the decoder's expected caption scale (OpenUni's
    connector has no output norm)."""
    if config.layout == "openuni":
        from mqeval.model.openuni_connector import OpenUniConnector

        return OpenUniConnector(in_dim, out_dim, config)
    if config.architecture == "proj-enc-proj" or config.width is not None or config.intermediate_size is not None:
        raise ConfigError("connector: proj-enc-proj, width and intermediate_size belong to layout 'openuni'")
    if config.architecture == "enc-proj":
        return EncProjConnector(in_dim, out_dim, config, output_scale)
    return ProjEncConnector(in_dim, out_dim, config, output_scale)
