"""A small DiT that denoises RGB pixels directly, conditioned on caption tokens by cross-attention.

adaLN modulation from (timestep + masked-mean caption) as in DiT; cross-attention to the caption tokens with their
padding mask; fixed 2D sin-cos position embedding computed for any grid (so any multiple of the patch size works).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from mqeval.model.metaquery_config import PixelDecoderConfig
from mqeval.model.connectors import rms_norm


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


def sincos_2d(height: int, width: int, dim: int, device) -> torch.Tensor:
    """[height*width, dim] fixed position embedding: half the channels encode rows, half columns."""
    def axis(n: int, d: int) -> torch.Tensor:
        omega = 1.0 / 10000 ** (torch.arange(d // 2, device=device, dtype=torch.float32) / (d // 2))
        angles = torch.arange(n, device=device, dtype=torch.float32)[:, None] * omega[None]
        return torch.cat([angles.sin(), angles.cos()], dim=1)

    rows, cols = axis(height, dim // 2), axis(width, dim // 2)
    return torch.cat([rows[:, None].expand(-1, width, -1), cols[None].expand(height, -1, -1)], -1).reshape(-1, dim)


class Attention(nn.Module):
    def __init__(self, width: int, num_heads: int, context_dim: int | None = None):
        super().__init__()
        self.num_heads = num_heads
        self.q = nn.Linear(width, width)
        self.kv = nn.Linear(context_dim or width, 2 * width)
        self.out = nn.Linear(width, width)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None, key_mask: torch.Tensor | None = None):
        context = x if context is None else context
        b, n, w = x.shape
        q = self.q(x).view(b, n, self.num_heads, -1).transpose(1, 2)
        k, v = self.kv(context).view(b, context.shape[1], 2, self.num_heads, -1).permute(2, 0, 3, 1, 4)
        mask = None if key_mask is None else key_mask[:, None, None, :].bool()
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.out(out.transpose(1, 2).reshape(b, n, w))


class CaptionConditioned(nn.Module):
    """What the pixel DiT and UNet share: caption tokens normalised and projected to the network's context width,
    and a global embedding (timestep + masked-mean caption) that modulates every block."""

    def _build_conditioning(self, caption_dim: int, context_width: int, embed_dim: int) -> None:
        self.time_mlp = nn.Sequential(nn.Linear(256, embed_dim), nn.SiLU(), nn.Linear(embed_dim, embed_dim))
        self.caption_norm = rms_norm(caption_dim)
        self.caption_proj = nn.Linear(caption_dim, context_width)
        self.pooled_proj = nn.Linear(context_width, embed_dim)

    def _conditioning(self, t: torch.Tensor, context: torch.Tensor, context_mask: torch.Tensor):
        """-> (context tokens [B,L,context_width], global embedding [B,embed_dim])."""
        ctx = self.caption_proj(self.caption_norm(context))
        m = context_mask.to(ctx.dtype)[..., None]
        pooled = (ctx * m).sum(1) / m.sum(1).clamp(min=1.0)
        return ctx, self.time_mlp(timestep_embedding(t, 256).to(ctx.dtype)) + self.pooled_proj(pooled)


class DiTBlock(nn.Module):
    def __init__(self, width: int, num_heads: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.self_attn = Attention(width, num_heads)
        self.norm_cross = nn.LayerNorm(width, eps=1e-6)
        self.cross_attn = Attention(width, num_heads)
        self.norm2 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(approximate="tanh"), nn.Linear(4 * width, width))
        self.modulation = nn.Linear(width, 6 * width)

    def forward(self, x, c, context, context_mask):
        shift1, scale1, gate1, shift2, scale2, gate2 = self.modulation(F.silu(c))[:, None].chunk(6, dim=-1)
        x = x + gate1 * self.self_attn(self.norm1(x) * (1 + scale1) + shift1)
        x = x + self.cross_attn(self.norm_cross(x), context, context_mask)
        return x + gate2 * self.mlp(self.norm2(x) * (1 + scale2) + shift2)


class PixelDiT(CaptionConditioned):
    def __init__(self, config: PixelDecoderConfig):
        super().__init__()
        self.config = config
        w, p = config.width, config.patch_size
        self.patch_embed = nn.Conv2d(3, w, kernel_size=p, stride=p)
        self._build_conditioning(config.caption_dim, w, w)
        self.blocks = nn.ModuleList(DiTBlock(w, config.num_heads) for _ in range(config.depth))
        self.final_norm = nn.LayerNorm(w, elementwise_affine=False, eps=1e-6)
        self.final_modulation = nn.Linear(w, 2 * w)
        self.final_proj = nn.Linear(w, p * p * 3)

    @property
    def size_multiple(self) -> int:
        """Image sides must be multiples of this (the patch size)."""
        return self.config.patch_size

    def forward(self, x: torch.Tensor, t: torch.Tensor, context: torch.Tensor, context_mask: torch.Tensor):
        """x [B,3,H,W]; t [B] in 0..1000; context [B,L,caption_dim]; context_mask [B,L] bool -> [B,3,H,W]."""
        b, _, height, width = x.shape
        p = self.config.patch_size
        gh, gw = height // p, width // p
        tokens = self.patch_embed(x).flatten(2).transpose(1, 2)
        tokens = tokens + sincos_2d(gh, gw, tokens.shape[-1], x.device).to(tokens.dtype)
        ctx, c = self._conditioning(t, context, context_mask)
        for block in self.blocks:
            tokens = block(tokens, c, ctx, context_mask)
        shift, scale = self.final_modulation(F.silu(c))[:, None].chunk(2, dim=-1)
        out = self.final_proj(self.final_norm(tokens) * (1 + scale) + shift)
        out = out.view(b, gh, gw, p, p, 3).permute(0, 5, 1, 3, 2, 4)
        return out.reshape(b, 3, height, width)
