"""The decoder contract shared by Sana, SD1.5 and the pixel decoders, plus the rectified-flow objective.

A decoder owns its denoiser, its (frozen) autoencoder if any, its training objective and the samplers that fit it.
Timesteps passed to `denoise` are in the scheduler's units (0..1000; for flow models 1000 x sigma).
"""
from __future__ import annotations

from typing import Any, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mqeval.errors import ConfigError
from mqeval.model.metaquery_config import DecoderConfig

# One generator for a batch, or one per example (training: draws independent of how the batch is split).
Generators = Union[torch.Generator, Sequence[torch.Generator], None]


class Decoder(nn.Module):
    family: str = ""
    schedulers: tuple[str, ...] = ()  # accepted scheduler names; "default" maps to schedulers[0]

    def __init__(self, config: DecoderConfig):
        super().__init__()
        self.config = config

    # --- family hooks -------------------------------------------------------------------------------------------
    @property
    def caption_dim(self) -> int:
        raise NotImplementedError

    @property
    def denoiser(self) -> nn.Module:
        raise NotImplementedError

    def latent_shape(self, resolution: int) -> tuple[int, int, int]:
        raise NotImplementedError

    def encode(self, images: torch.Tensor, generator: Generators = None) -> torch.Tensor:
        """Images in [-1, 1] -> clean latents x0 (identity for pixel space)."""
        raise NotImplementedError

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents -> images in [-1, 1]."""
        raise NotImplementedError

    def denoise(self, x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def loss(self, images, cond, mask, generator: Generators = None) -> torch.Tensor:
        raise NotImplementedError

    def loss_at(self, x0, noise, time, cond, mask) -> torch.Tensor:
        """The loss for given clean latents, noise and times [B] (sigmas for flow decoders, integer timesteps for
        DDPM ones): `loss` without its random draws, for comparisons with another implementation's draws."""
        raise NotImplementedError

    def make_scheduler(self, name: str) -> Any:
        raise NotImplementedError

    # --- shared -------------------------------------------------------------------------------------------------
    @property
    def trainable(self) -> bool:
        return self.config.train

    @property
    def default_resolution(self) -> int:
        return self.config.resolution

    # Initial gain of the connector's output RMSNorm: the feature scale the pretrained denoiser's captions had.
    condition_scale: float = 1.0

    def weights_dtype(self, override: Optional[torch.dtype] = None) -> torch.dtype:
        """Trained denoisers keep float32 master weights (use autocast); frozen ones use the configured dtype."""
        return torch.float32 if self.trainable else self.frozen_dtype(override)

    def frozen_dtype(self, override: Optional[torch.dtype] = None) -> torch.dtype:
        from mqeval.model.backbones.base import DTYPES

        return override or DTYPES[self.config.dtype]

    @property
    def dtype(self) -> torch.dtype:
        return next(self.denoiser.parameters()).dtype

    @property
    def device(self) -> torch.device:
        return next(self.denoiser.parameters()).device

    def scheduler_name(self, name: str) -> str:
        name = self.schedulers[0] if name == "default" else name
        if name not in self.schedulers:
            raise ConfigError(
                f"scheduler '{name}' does not fit the {self.family} decoder; choose one of: "
                + ", ".join(("default",) + self.schedulers)
            )
        return name

    def train(self, mode: bool = True) -> "Decoder":
        """Only a trained denoiser ever leaves eval mode; autoencoders stay frozen in eval mode."""
        super().train(False)
        if mode and self.trainable:
            self.denoiser.train(True)
        return self

    def set_timesteps(self, scheduler: Any, num_steps: int, device) -> None:
        scheduler.set_timesteps(num_steps, device=device)

    def freeze_unless_trained(self) -> None:
        self.requires_grad_(False)
        self.denoiser.requires_grad_(self.trainable)
        if not self.trainable:
            self.eval()


def check_prediction_type(config: DecoderConfig, allowed: tuple[str, ...]) -> None:
    if config.prediction_type not in allowed:
        raise ConfigError(
            f"decoder.prediction_type '{config.prediction_type}' does not fit the {config.family} decoder; "
            f"use {' or '.join(allowed)}"
        )


# What the decoders read from a diffusers pipeline repository: its denoiser, VAE and scheduler, in the default
# (non-variant) safetensors; not its text encoders, which the MLLM replaces.
DECODER_FILES = tuple(f"{part}/{name}" for part in ("transformer", "unet", "vae")
                      for name in ("*.json", "diffusion_pytorch_model.safetensors",
                                   "diffusion_pytorch_model-*-of-*.safetensors")) + ("scheduler/*", "model_index.json")


def diffusers_source(config: DecoderConfig) -> tuple[str, dict[str, Any]]:
    """Local folder of a diffusers pipeline repo (downloaded now when it is a hub id not yet cached), and
    from_pretrained kwargs."""
    from mqeval.model.hub import resolve_model_path

    if not config.model_id:
        raise ConfigError(f"decoder.model_id is required for the {config.family} decoder")
    path = resolve_model_path(config.model_id, config.revision, "decoder", allow_patterns=DECODER_FILES)
    return path, {"use_safetensors": True}


def randn(shape, generator: Generators, device, dtype=torch.float32) -> torch.Tensor:
    """Gaussian noise drawn on the generator's own device (so CPU seeds give the same noise everywhere)."""
    return _draw(lambda size, g: torch.randn(size, generator=g, device=_device_of(g), dtype=dtype), shape, generator,
                 device)


def rand(shape, generator: Generators, device) -> torch.Tensor:
    return _draw(lambda size, g: torch.rand(size, generator=g, device=_device_of(g)), shape, generator, device)


def randint(high: int, shape, generator: Generators, device) -> torch.Tensor:
    return _draw(lambda size, g: torch.randint(0, high, size, generator=g, device=_device_of(g)), shape, generator,
                 device)


def _device_of(generator: Optional[torch.Generator]) -> torch.device:
    return generator.device if generator is not None else torch.device("cpu")


def _draw(draw, shape, generator: Generators, device) -> torch.Tensor:
    """One generator draws the whole tensor; a list of generators draws row i (dim 0) from generator i, so an
    example's noise does not depend on which batch, process or micro-batch it lands in."""
    if isinstance(generator, (list, tuple)):
        if len(generator) != shape[0]:
            raise ValueError(f"{len(generator)} generators for a batch of {shape[0]}")
        return torch.stack([draw(tuple(shape[1:]), g).to(device) for g in generator])
    return draw(tuple(shape), generator).to(device)


def shift_sigmas(s: torch.Tensor, shift: float) -> torch.Tensor:
    """The rectified-flow sigma shift of SD3 / Sana: s -> shift*s / (1 + (shift-1)*s)."""
    return s if shift == 1.0 else shift * s / (1 + (shift - 1) * s)


class FlowDecoder(Decoder):
    """Rectified flow: x_t = (1 - s) x0 + s e, the denoiser predicts e - x0, s = shift_sigmas(U(0, 1), train_shift)."""

    schedulers = ("dpm-solver", "flow-euler", "euler")
    flow_shift: float = 1.0  # of the sampling schedule
    train_shift: float = 1.0  # of the training sigmas
    num_train_timesteps: int = 1000
    # The pretrained repo's sampler settings (scheduler/scheduler_config.json), if any.
    scheduler_config: dict[str, Any] = {}

    def loss(self, images, cond, mask, generator=None) -> torch.Tensor:
        x0 = self.encode(images, generator).float()
        noise = randn(x0.shape, generator, x0.device)
        s = shift_sigmas(rand((x0.shape[0],), generator, x0.device), self.train_shift)
        return self.loss_at(x0, noise, s, cond, mask)

    def loss_at(self, x0, noise, s, cond, mask) -> torch.Tensor:
        """The loss for given clean latents, noise and sigmas [B] (what `loss` draws)."""
        s_ = s.view(-1, *([1] * (x0.dim() - 1)))
        x_t = (1 - s_) * x0 + s_ * noise
        pred = self.denoise(x_t.to(self.dtype), s * self.num_train_timesteps, cond, mask)
        return F.mse_loss(pred.float(), noise - x0)

    def make_scheduler(self, name: str) -> Any:
        from diffusers import DPMSolverMultistepScheduler, FlowMatchEulerDiscreteScheduler

        name = self.scheduler_name(name)
        flow = dict(num_train_timesteps=self.num_train_timesteps, flow_shift=self.flow_shift)
        if name == "dpm-solver":
            return DPMSolverMultistepScheduler.from_config(
                {**self.scheduler_config, **flow}, prediction_type="flow_prediction", use_flow_sigmas=True,
            )
        return FlowMatchEulerDiscreteScheduler(num_train_timesteps=self.num_train_timesteps, shift=self.flow_shift)

    def set_timesteps(self, scheduler: Any, num_steps: int, device) -> None:
        from diffusers import FlowMatchEulerDiscreteScheduler

        if isinstance(scheduler, FlowMatchEulerDiscreteScheduler):  # sigmas 1 .. 1/N (before the shift)
            scheduler.set_timesteps(sigmas=np.linspace(1.0, 1.0 / num_steps, num_steps).tolist(), device=device)
        else:
            scheduler.set_timesteps(num_steps, device=device)
