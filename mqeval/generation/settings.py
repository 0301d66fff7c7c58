"""The sampling settings one run uses, resolved from
(CLI overrides > the card's published settings for this benchmark > benchmark protocol > model card > model kind),
and the run's deviations from what produced the published number."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional, Sequence

from mqeval.benchmarks.base import GenerationSpec
from mqeval.errors import ConfigError
from mqeval.contract.sampling_limits import check_sampling
from mqeval.model.card import ModelCard

if TYPE_CHECKING:
    from mqeval.contract.samples import Sample


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
    card: ModelCard, protocol: GenerationSpec, overrides: SettingOverrides = SettingOverrides(),
    benchmark: str = "", variant_of: Optional[str] = None,
) -> GenerationSettings:
    """Benchmark protocol values win over the card's defaults (None in the protocol means "the card's"); the
    settings behind this model's published number on `benchmark` (card `published:`) win over the protocol's."""
    from mqeval.model.kinds import kind_of

    gen = card.generation
    published = card.published_for(benchmark, variant_of)

    def pick(override, key: str, default):
        for value in (override, getattr(published, key, None), getattr(protocol, key)):
            if value is not None:
                return value
        return default

    kind = kind_of(card)
    resolution = pick(None, "resolution", gen.resolution) or kind.default_resolution(card)
    if resolution is None:
        raise ConfigError(f"model_zoo/{card.name}.yaml: set generation.resolution (the model's native size)")
    try:
        check_sampling(overrides.guidance_scale, None, overrides.num_inference_steps, None, overrides.seed)
    except ValueError as exc:
        raise ConfigError(f"command-line override: {exc}") from None
    try:
        settings = GenerationSettings(
            seed=overrides.seed if overrides.seed is not None else protocol.seed,
            images_per_prompt=protocol.images_per_prompt,
            guidance_scale=float(pick(overrides.guidance_scale, "guidance_scale", gen.guidance_scale)),
            image_guidance_scale=float(gen.image_guidance_scale),
            num_inference_steps=int(pick(overrides.num_inference_steps, "num_inference_steps",
                                         gen.num_inference_steps)),
            scheduler=pick(None, "scheduler", gen.scheduler),
            resolution=int(resolution),
            negative_prompt=gen.negative_prompt,
        )
    except (ValueError, TypeError, OverflowError) as exc:
        raise ConfigError(f"Invalid generation settings for {card.name}: {exc}") from None
    problem = kind.capabilities(card).resolution_problem(settings.resolution)
    if problem:
        raise ConfigError(f"Model '{card.name}' cannot generate the {settings.resolution} px images this run asks "
                          f"for: {problem}")
    return settings


def deviations(card: ModelCard, settings: GenerationSettings, samples: Sequence["Sample"], benchmark: str,
               variant_of: Optional[str] = None) -> list[str]:
    """How this run's images are made differently from the published number's (the run records each one)."""
    from mqeval.model.kinds import kind_of

    out = []
    published = card.published_for(benchmark, variant_of)
    if published is not None:
        used = {"guidance_scale": settings.guidance_scale, "num_inference_steps": settings.num_inference_steps,
                "resolution": settings.resolution, "scheduler": settings.scheduler}
        for key, value in used.items():
            wanted = getattr(published, key)
            if wanted is not None and wanted != value:
                out.append(f"{key} {value} differs from the published setting {wanted} ({published.source})")
        if not published.stated:
            out.append(f"the sampling settings behind {card.name}'s published {published.benchmark} number are not "
                       f"stated ({published.source}); this run uses guidance {settings.guidance_scale:g}, "
                       f"{settings.num_inference_steps} steps, {settings.resolution} px, "
                       f"scheduler {settings.scheduler}")
    caps = kind_of(card).capabilities(card)
    if not caps.negative_prompt and (settings.negative_prompt or any(s.negative_prompt for s in samples)):
        out.append(f"model '{card.name}' cannot use negative prompts: this benchmark's are dropped")
    if settings.scheduler not in caps.schedulers and settings.scheduler != "default":
        out.append(f"model '{card.name}' does not take scheduler '{settings.scheduler}': its own sampler is used")
    return out
