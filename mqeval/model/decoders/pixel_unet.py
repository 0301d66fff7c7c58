"""A small convolutional UNet that denoises RGB pixels, conditioned on caption tokens.

Why a UNet next to the pixel DiT: at 32 px on a CPU budget the patch-4 DiT learned colour blobs but not the
outlines the shapes detector needs (model_zoo/research/metaquery-smol/README.md); convolutions see edges from the
first step.
Conditioning: timestep + masked-mean caption scale/shift every residual block (global content such as colour) and,
with `output_modulation`, the output norm; self- and cross-attention to the caption tokens at every level below full
resolution (where things go).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mqeval.model.metaquery_config import PixelDecoderConfig
from mqeval.model.decoders.pixel_dit import Attention, CaptionConditioned


def _groups(channels: int) -> int:
    return 8 if channels % 8 == 0 else 1


def _zeroed(layer: nn.Module) -> nn.Module:
    """A layer whose weight and bias start at zero: its branch adds nothing until training moves it."""
    nn.init.zeros_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


class ResBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, embed_dim: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(_groups(in_channels), in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.modulation = nn.Linear(embed_dim, 2 * out_channels)
        self.norm2 = nn.GroupNorm(_groups(out_channels), out_channels)
        self.conv2 = _zeroed(nn.Conv2d(out_channels, out_channels, 3, padding=1))
        self.skip = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.modulation(F.silu(emb))[:, :, None, None].chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
        return self.skip(x) + self.conv2(F.silu(h))


class CaptionAttention(nn.Module):
    """Self-attention over the feature map's pixels, then cross-attention to the caption tokens."""

    def __init__(self, channels: int, num_heads: int, context_dim: int):
        super().__init__()
        self.norm_self = nn.LayerNorm(channels)
        self.self_attn = Attention(channels, num_heads)
        self.norm_cross = nn.LayerNorm(channels)
        self.cross_attn = Attention(channels, num_heads, context_dim)
        for attn in (self.self_attn, self.cross_attn):
            _zeroed(attn.out)

    def forward(self, x: torch.Tensor, context: torch.Tensor, context_mask: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        tokens = x.flatten(2).transpose(1, 2)
        tokens = tokens + self.self_attn(self.norm_self(tokens))
        tokens = tokens + self.cross_attn(self.norm_cross(tokens), context, context_mask)
        return tokens.transpose(1, 2).reshape(b, c, h, w)


class Level(nn.Module):
    """Residual blocks of one resolution, each followed by caption attention when the level has it."""

    def __init__(self, channels_in: list[int], out_channels: int, embed_dim: int, attention: bool,
                 num_heads: int, context_dim: int):
        super().__init__()
        self.res = nn.ModuleList(ResBlock(c, out_channels, embed_dim) for c in channels_in)
        self.attn = nn.ModuleList(
            CaptionAttention(out_channels, num_heads, context_dim) if attention else nn.Identity() for _ in channels_in
        )


class PixelUNet(CaptionConditioned):
    def __init__(self, config: PixelDecoderConfig):
        super().__init__()
        self.config = config
        w, heads, levels = config.width, config.num_heads, len(config.channel_mult)
        channels = [w * m for m in config.channel_mult]
        embed_dim = 4 * w
        ctx = channels[-1]
        self._build_conditioning(config.caption_dim, ctx, embed_dim)

        self.conv_in = nn.Conv2d(3, w, 3, padding=1)
        skip_channels = [w]
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        current = w
        for i, ch in enumerate(channels):
            level = Level([current] + [ch] * (config.depth - 1), ch, embed_dim, i > 0, heads, ctx)
            self.down.append(level)
            current = ch
            skip_channels += [ch] * config.depth
            if i < levels - 1:
                self.downsample.append(nn.Conv2d(ch, ch, 3, stride=2, padding=1))
                skip_channels.append(ch)
        self.mid = Level([current, current], current, embed_dim, True, heads, ctx)
        self.up = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for i in reversed(range(levels)):
            ch = channels[i]
            ins = []
            for _ in range(config.depth + 1):
                ins.append(current + skip_channels.pop())
                current = ch
            self.up.append(Level(ins, ch, embed_dim, i > 0, heads, ctx))
            if i > 0:
                self.upsample.append(nn.Conv2d(ch, ch, 3, padding=1))
        self.norm_out = nn.GroupNorm(_groups(current), current)
        self.out_modulation = _zeroed(nn.Linear(embed_dim, 2 * current)) if config.output_modulation else None
        self.conv_out = _zeroed(nn.Conv2d(current, 3, 3, padding=1))

    @property
    def size_multiple(self) -> int:
        """Image sides must be multiples of this (each level below the first halves them)."""
        return 2 ** (len(self.config.channel_mult) - 1)

    @staticmethod
    def _run(level: Level, h, emb, ctx, mask, skips=None):
        outputs = []
        for res, attn in zip(level.res, level.attn):
            if skips is not None:
                h = torch.cat([h, skips.pop()], dim=1)
            h = res(h, emb)
            h = attn(h, ctx, mask) if isinstance(attn, CaptionAttention) else h
            outputs.append(h)
        return h, outputs

    def forward(self, x: torch.Tensor, t: torch.Tensor, context: torch.Tensor, context_mask: torch.Tensor):
        """x [B,3,H,W]; t [B] in 0..1000; context [B,L,caption_dim]; context_mask [B,L] bool -> [B,3,H,W]."""
        factor = self.size_multiple
        if x.shape[-1] % factor or x.shape[-2] % factor:
            raise ValueError(f"the UNet needs image sides divisible by {factor}, got {tuple(x.shape[-2:])}")
        ctx, emb = self._conditioning(t, context, context_mask)

        h = self.conv_in(x)
        skips = [h]
        for i, level in enumerate(self.down):
            h, outs = self._run(level, h, emb, ctx, context_mask)
            skips += outs
            if i < len(self.downsample):
                h = self.downsample[i](h)
                skips.append(h)
        h, _ = self._run(self.mid, h, emb, ctx, context_mask)
        for i, level in enumerate(self.up):
            h, _ = self._run(level, h, emb, ctx, context_mask, skips)
            if i < len(self.upsample):
                h = self.upsample[i](F.interpolate(h, scale_factor=2.0, mode="nearest"))
        h = self.norm_out(h)
        if self.out_modulation is not None:
            scale, shift = self.out_modulation(F.silu(emb))[:, :, None, None].chunk(2, dim=1)
            h = h * (1 + scale) + shift
        return self.conv_out(F.silu(h))
