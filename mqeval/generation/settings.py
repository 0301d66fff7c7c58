"""The sampling settings one run uses, resolved from (CLI overrides > benchmark protocol > model card)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from mqeval.benchmarks.base import GenerationSpec
from mqeval.errors import ConfigError
from mqeval.generation.limits import check_sampling
from mqeval.zoo import ModelCard


@dataclass(frozen=True)
class GenerationSettings:
    """Everything the sampler needs besides the prompts; recorded verbatim in results.json `generation`."""

    seed: int
    images_per_prompt: int
    guidance_scale: float
    image_guidance_scale: float
    num_inference_steps: int
    scheduler: str
    resolution: int
    negative_prompt: str = ""

    def __post_init__(self) -> None:  # also checks settings read back from a run's generation.json
        check_sampling(self.guidance_scale, self.image_guidance_scale, self.num_inference_steps, self.resolution,
                       self.seed, self.images_per_prompt)


@dataclass(frozen=True)
class SettingOverrides:
    """Command-line overrides. Any of them makes the run differ from the benchmark's protocol (a warning says so)."""

    seed: Optional[int] = None
    guidance_scale: Optional[float] = None
    num_inference_steps: Optional[int] = None

    def describe(self) -> list[str]:
        return [f"{k}={v}" for k, v in vars(self).items() if v is not None]


def resolve_settings(
    card: ModelCard, protocol: GenerationSpec, overrides: SettingOverrides = SettingOverrides()
) -> GenerationSettings:
    """Benchmark protocol values win over the card's defaults (None in the protocol means "the card's")."""
    gen = card.generation

    def pick(override, proto, default):
        return override if override is not None else proto if proto is not None else default

    resolution = pick(None, protocol.resolution, gen.resolution)
    if resolution is None:
        resolution = card.model.decoder.resolution
    try:
        check_sampling(overrides.guidance_scale, None, overrides.num_inference_steps, None, overrides.seed)
    except ValueError as exc:
        raise ConfigError(f"command-line override: {exc}") from None
    try:
        return GenerationSettings(
            seed=pick(overrides.seed, protocol.seed, 0),
            images_per_prompt=protocol.images_per_prompt,
            guidance_scale=float(pick(overrides.guidance_scale, protocol.guidance_scale, gen.guidance_scale)),
            image_guidance_scale=float(gen.image_guidance_scale),
            num_inference_steps=int(pick(overrides.num_inference_steps, protocol.num_inference_steps,
                                         gen.num_inference_steps)),
            scheduler=pick(None, protocol.scheduler, gen.scheduler),
            resolution=int(resolution),
            negative_prompt=gen.negative_prompt,
        )
    except (ValueError, TypeError, OverflowError) as exc:
        raise ConfigError(f"Invalid generation settings for {card.name}: {exc}") from None
