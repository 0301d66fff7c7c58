"""Kind `diffusers`: any diffusers text-to-image pipeline, by hub id + revision.

Per-image seeding: the initial latents of image i are drawn (float32, on the CPU) from generators[i] alone and handed
to the pipeline as `latents=`, so an image depends neither on the other prompts of its batch nor on the device; the
generators are passed on too, for schedulers that draw noise while sampling (one generator per image).
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Optional, Sequence

from mqeval.contract.text_to_image import Capabilities
from mqeval.errors import ConfigError, UserError
from mqeval.hub_download import download_command, hub_cache_dir
from mqeval.model.kinds.hub_kind import HubKind, torch_dtype

# mqeval's scheduler names -> diffusers classes, for settings that name one (the pipeline's own is "default").
SCHEDULER_CLASSES = {"dpm-solver": "DPMSolverMultistepScheduler", "euler": "EulerDiscreteScheduler",
                     "ddim": "DDIMScheduler", "flow-euler": "FlowMatchEulerDiscreteScheduler"}


class DiffusersKind(HubKind):
    def capabilities(self, card) -> Capabilities:
        return card.capabilities or Capabilities(resolution_multiple=8)

    def downloader(self, config):
        """diffusers' own download: it knows which files the pipeline's components and the variant need."""

        def download() -> str:
            from diffusers import DiffusionPipeline

            return str(DiffusionPipeline.download(config.model_id, revision=config.revision, variant=config.variant,
                                                  cache_dir=hub_cache_dir()))

        return download

    def load(self, card, weights: Optional[Path], device: str) -> "DiffusersTextToImage":
        import diffusers

        diffusers.utils.logging.disable_progress_bar()  # its loading bar would fill logs; mqeval shows its own
        config = card.diffusers
        cls = diffusers.DiffusionPipeline
        if config.pipeline:
            cls = getattr(diffusers, config.pipeline, None)
            if cls is None:
                raise ConfigError(f"model_zoo/{card.name}.yaml: diffusers has no pipeline class '{config.pipeline}'")
        try:
            with warnings.catch_warnings():  # newer diffusers rename torch_dtype to dtype; older ones know only this
                warnings.simplefilter("ignore", FutureWarning)
                pipe = cls.from_pretrained(self.source(card, weights), revision=config.revision,
                                           variant=config.variant, torch_dtype=torch_dtype(config.dtype))
        except (OSError, ValueError) as exc:  # missing or partial files: say which model and how to get it
            raise UserError(f"Could not load the diffusers pipeline {config.describe()} of model '{card.name}': "
                            f"{str(exc).splitlines()[0]} (download it with "
                            f"`{download_command(config.model_id, config.revision)}`)") from None
        if config.scheduler or config.scheduler_config:
            scheduler_cls = getattr(diffusers, config.scheduler) if config.scheduler else type(pipe.scheduler)
            pipe.scheduler = scheduler_cls.from_config(pipe.scheduler.config, **config.scheduler_config)
        pipe.set_progress_bar_config(disable=True)
        return DiffusersTextToImage(pipe.to(device), card.diffusers.pipeline_kwargs, config.true_cfg_scale,
                                    self.capabilities(card))


def initial_latents(pipe, generators: Sequence[Any], resolution: int):
    """Noise of shape (n, C, h, w), image i from generators[i] only; packed into tokens for pipelines that pack
    latents (FLUX), in the pipeline's denoiser dtype."""
    import torch

    denoiser = getattr(pipe, "unet", None) or pipe.transformer
    scale = pipe.vae_scale_factor
    packs = hasattr(pipe, "_pack_latents")
    channels = denoiser.config.in_channels // 4 if packs else denoiser.config.in_channels
    side = 2 * (resolution // (scale * 2)) if packs else resolution // scale
    noise = torch.stack([torch.randn((channels, side, side), generator=g, dtype=torch.float32) for g in generators])
    if packs:
        noise = pipe._pack_latents(noise, len(generators), channels, side, side)
    return noise.to(device=pipe.device, dtype=denoiser.dtype)


class DiffusersTextToImage:
    def __init__(self, pipe, pipeline_kwargs: dict[str, Any], true_cfg_scale: Optional[float],
                 capabilities: Capabilities):
        self.pipe = pipe
        self.pipeline_kwargs = dict(pipeline_kwargs)
        self.true_cfg_scale = true_cfg_scale
        self.capabilities = capabilities
        self._schedulers = {"default": pipe.scheduler}

    def _scheduler(self, name: str):
        if name not in self._schedulers:
            import diffusers

            if name not in SCHEDULER_CLASSES:
                raise ConfigError(f"unknown scheduler '{name}'; known: default, {', '.join(SCHEDULER_CLASSES)}")
            cls = getattr(diffusers, SCHEDULER_CLASSES[name])
            self._schedulers[name] = cls.from_config(self._schedulers["default"].config)
        return self._schedulers[name]

    def __call__(self, prompts: Sequence[str], *, negative_prompts: Optional[Sequence[str]], generators: Sequence[Any],
                 guidance_scale: float, num_inference_steps: int, resolution: int, scheduler: str = "default") -> list:
        self.pipe.scheduler = self._scheduler(scheduler)
        kwargs = dict(self.pipeline_kwargs)
        kwargs.update(
            prompt=list(prompts), height=resolution, width=resolution, num_inference_steps=num_inference_steps,
            guidance_scale=guidance_scale, generator=list(generators),
            latents=initial_latents(self.pipe, generators, resolution), output_type="pil",
        )
        if negative_prompts is not None:
            kwargs["negative_prompt"] = list(negative_prompts)
            if self.true_cfg_scale is not None:
                kwargs["true_cfg_scale"] = self.true_cfg_scale
        return list(self.pipe(**kwargs).images)


KIND = DiffusersKind()
