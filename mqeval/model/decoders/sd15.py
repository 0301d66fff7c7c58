"""Stable Diffusion 1.5: UNet2DConditionModel on AutoencoderKL latents with the DDPM epsilon (or v) objective."""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from mqeval.errors import ConfigError
from mqeval.model.metaquery_config import DecoderConfig
from mqeval.model.decoders.base import Decoder, check_prediction_type, diffusers_source, randint, randn


class SD15Decoder(Decoder):
    family = "sd15"
    schedulers = ("dpm-solver", "ddim", "euler")

    def __init__(self, config: DecoderConfig, dtype: torch.dtype | None = None):
        super().__init__(config)
        check_prediction_type(config, ("epsilon", "v_prediction"))
        path, common = diffusers_source(config)  # before the heavy imports
        from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel

        self.unet = UNet2DConditionModel.from_pretrained(
            path, subfolder="unet", torch_dtype=self.weights_dtype(dtype), **common
        )
        self.vae = AutoencoderKL.from_pretrained(path, subfolder="vae", torch_dtype=self.frozen_dtype(dtype), **common)
        self.vae.requires_grad_(False).eval()
        base = DDPMScheduler.load_config(path, subfolder="scheduler")
        self.noise_scheduler = DDPMScheduler.from_config(base, prediction_type=config.prediction_type)
        self.freeze_unless_trained()

    @property
    def caption_dim(self) -> int:
        return self.unet.config.cross_attention_dim

    @property
    def denoiser(self) -> nn.Module:
        return self.unet

    @property
    def vae_scale_factor(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    def latent_shape(self, resolution: int) -> tuple[int, int, int]:
        if resolution % self.vae_scale_factor:
            raise ConfigError(f"SD1.5 needs a resolution divisible by {self.vae_scale_factor}, got {resolution}")
        side = resolution // self.vae_scale_factor
        return (self.unet.config.in_channels, side, side)

    @torch.no_grad()
    def encode(self, images, generator=None):
        posterior = self.vae.encode(images.to(self.vae.device, self.vae.dtype)).latent_dist
        return posterior.sample(generator) * self.vae.config.scaling_factor

    @torch.no_grad()
    def decode(self, latents):
        return self.vae.decode(latents.to(self.vae.dtype) / self.vae.config.scaling_factor).sample

    def denoise(self, x_t, t, cond, mask) -> torch.Tensor:
        return self.unet(
            x_t.to(self.dtype), t, encoder_hidden_states=cond.to(self.dtype), encoder_attention_mask=mask,
            return_dict=False,
        )[0]

    def loss(self, images, cond, mask, generator=None) -> torch.Tensor:
        x0 = self.encode(images, generator).float()
        noise = randn(x0.shape, generator, x0.device)
        t = randint(self.noise_scheduler.config.num_train_timesteps, (x0.shape[0],), generator, x0.device)
        return self.loss_at(x0, noise, t, cond, mask)

    def loss_at(self, x0, noise, t, cond, mask) -> torch.Tensor:
        """The loss for given clean latents, noise and integer timesteps [B] (what `loss` draws)."""
        x_t = self.noise_scheduler.add_noise(x0, noise, t)
        if self.config.prediction_type == "v_prediction":
            target = self.noise_scheduler.get_velocity(x0, noise, t)
        else:
            target = noise
        pred = self.denoise(x_t, t, cond, mask)
        return F.mse_loss(pred.float(), target.float())

    def make_scheduler(self, name: str) -> Any:
        from diffusers import DDIMScheduler, DPMSolverMultistepScheduler, EulerDiscreteScheduler

        name = self.scheduler_name(name)
        cls = {"dpm-solver": DPMSolverMultistepScheduler, "ddim": DDIMScheduler, "euler": EulerDiscreteScheduler}[name]
        return cls.from_config(self.noise_scheduler.config, prediction_type=self.config.prediction_type)
