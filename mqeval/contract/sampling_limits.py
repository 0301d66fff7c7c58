"""The range of every sampling setting, part of what a model and a benchmark promise (mqeval.contract), checked
wherever a value comes from (card, benchmark spec, command line, a run's generation.json): a NaN guidance scale or
zero steps would otherwise run and score black images."""
from __future__ import annotations

import math
from typing import Any, Optional

MAX_GUIDANCE = 100.0
MAX_STEPS = 1000
MIN_RESOLUTION, MAX_RESOLUTION = 16, 4096
MAX_IMAGES_PER_PROMPT = 64
MAX_SEED = (1 << 63) - 1


def _number(name: str, value: Any, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low:g} and {high:g}, got {value!r}")


def _integer(name: str, value: Any, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}, got {value}")


def check_sampling(
    guidance_scale: Optional[float] = None,
    image_guidance_scale: Optional[float] = None,
    num_inference_steps: Optional[int] = None,
    resolution: Optional[int] = None,
    seed: Optional[int] = None,
    images_per_prompt: Optional[int] = None,
) -> None:
    """Raise ValueError for the first value out of range (None: not set here)."""
    for name, value in (("guidance_scale", guidance_scale), ("image_guidance_scale", image_guidance_scale)):
        if value is not None:
            _number(name, value, 0.0, MAX_GUIDANCE)
    checks = (("num_inference_steps", num_inference_steps, 1, MAX_STEPS),
              ("resolution", resolution, MIN_RESOLUTION, MAX_RESOLUTION),
              ("seed", seed, 0, MAX_SEED),
              ("images_per_prompt", images_per_prompt, 1, MAX_IMAGES_PER_PROMPT))
    for name, value, low, high in checks:
        if value is not None:
            _integer(name, value, low, high)
