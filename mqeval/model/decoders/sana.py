"""Sana: SanaTransformer2DModel denoising DC-AE latents with the rectified-flow objective."""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from mqeval.errors import ConfigError
from mqeval.model.metaquery_config import DecoderConfig
from mqeval.model.decoders.base import FlowDecoder, check_prediction_type, diffusers_source


class SanaDecoder(FlowDecoder):
    family = "sana"

    def __init__(self, config: DecoderConfig, dtype: torch.dtype | None = None):
        super().__init__(config)
        check_prediction_type(config, ("flow",))
        path, common = diffusers_source(config)  # before the heavy imports
        from diffusers import AutoencoderDC, SanaTransformer2DModel

        self.transformer = SanaTransformer2DModel.from_pretrained(
            path, subfolder="transformer", torch_dtype=self.weights_dtype(dtype), **common
        )
        self.vae = AutoencoderDC.from_pretrained(
            path, subfolder="vae", torch_dtype=self.frozen_dtype(dtype), **common
        )
        self.vae.requires_grad_(False).eval()
        self.scheduler_config = self.read_scheduler_config(path)
        self.flow_shift = float(self.scheduler_config.get("flow_shift", 1.0))
        self.freeze_unless_trained()

    # Sana was trained on Gemma-2 caption features; the official connector starts its output norm at sqrt(5.5).
    condition_scale = 5.5**0.5

    @property
    def caption_dim(self) -> int:
        return self.transformer.config.caption_channels

    @property
    def denoiser(self) -> nn.Module:
        return self.transformer

    @property
    def vae_scale_factor(self) -> int:
        return 2 ** (len(self.vae.config.encoder_block_out_channels) - 1)

    def latent_shape(self, resolution: int) -> tuple[int, int, int]:
        f = self.vae_scale_factor * self.transformer.config.patch_size
        if resolution % f:
            raise ConfigError(f"Sana needs a resolution divisible by {f}, got {resolution}")
        side = resolution // self.vae_scale_factor
        return (self.vae.config.latent_channels, side, side)

    @torch.no_grad()
    def encode(self, images, generator=None):
        latents = self.vae.encode(images.to(self.vae.device, self.vae.dtype)).latent
        return latents * self.vae.config.scaling_factor

    @torch.no_grad()
    def decode(self, latents):
        return self.vae.decode(latents.to(self.vae.dtype) / self.vae.config.scaling_factor).sample

    def denoise(self, x_t, t, cond, mask) -> torch.Tensor:
        out = self.transformer(
            hidden_states=x_t.to(self.dtype), encoder_hidden_states=cond.to(self.dtype),
            encoder_attention_mask=mask.long(), timestep=(t * self.transformer.config.timestep_scale).to(self.dtype),
            return_dict=False,
        )[0]
        latent_channels = x_t.shape[1]
        if out.shape[1] == 2 * latent_channels:  # learned-sigma variants: keep the flow prediction
            out = out[:, :latent_channels]
        return out

    def read_scheduler_config(self, path: str) -> dict[str, Any]:
        from diffusers import DPMSolverMultistepScheduler

        try:
            config = dict(DPMSolverMultistepScheduler.load_config(path, subfolder="scheduler"))
            return {k: v for k, v in config.items() if not k.startswith("_")}
        except (OSError, ValueError):
            return {}
