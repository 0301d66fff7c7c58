"""The text-to-image protocol the generation runner calls, whatever builds the images.

A model of any kind (a MetaQuery, a diffusers pipeline, a transformers generator, your own code) is wrapped into an
object with a `capabilities` description and a `__call__` that turns a batch of prompts into one image per prompt,
returned as a sequence of PIL images or as an object holding that sequence under `.images` (as diffusers pipelines
return it); the runner reads both through `images_of`.

Determinism contract: image i must depend only on (prompts[i], negative_prompts[i], generators[i] and the settings),
never on the other prompts of the batch, on the batch size or on the process that runs it. The runner hands over one
CPU `torch.Generator` per image, seeded from (global seed, sample id, image index); draw all of image i's randomness
from generators[i] (for a sampler that cannot take a generator, seed its global RNG from it, one image at a time).

The runner always passes the six arguments of `TextToImage.__call__`; it adds `scheduler=<name>` only when the
settings name a scheduler other than "default", and `input_images` / `image_guidance_scale` only for samples that
have input images. Declare what you accept in `Capabilities` and the runner checks the settings against it before
anything is generated.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Protocol, Sequence, runtime_checkable


@dataclass(frozen=True)
class Capabilities:
    """What a text-to-image model can honour. Settings it cannot honour are recorded as deviations of the run."""

    negative_prompt: bool = True  # uses negative_prompts (else they are dropped and the run says so)
    true_cfg: bool = True  # guidance_scale is classifier-free guidance; False: a distilled-guidance input, or unused
    input_images: bool = False  # takes input_images / image_guidance_scale (editing)
    schedulers: tuple[str, ...] = ("default",)  # scheduler names it accepts; others fall back to "default"
    min_resolution: int = 8
    max_resolution: Optional[int] = None
    resolution_multiple: int = 1  # the side must be a multiple of this (e.g. 8 for an SD VAE, 32 for DC-AE)

    def resolution_problem(self, resolution: int) -> Optional[str]:
        """Why `resolution` cannot be generated, or None."""
        if resolution < self.min_resolution:
            return f"{resolution} px is below the model's minimum of {self.min_resolution} px"
        if self.max_resolution is not None and resolution > self.max_resolution:
            return f"{resolution} px is above the model's maximum of {self.max_resolution} px"
        if resolution % self.resolution_multiple:
            return f"{resolution} px is not a multiple of {self.resolution_multiple} px"
        return None


@runtime_checkable
class ImagesOutput(Protocol):
    """What diffusers pipelines and mqeval's MetaQueryPipeline return: the images under `.images`."""

    images: Sequence[Any]


def images_of(output: "Sequence[Any] | ImagesOutput") -> list[Any]:
    """The images a TextToImage call returned, in prompt order, whichever of the two accepted forms it used."""
    return list(output.images if isinstance(output, ImagesOutput) else output)


@runtime_checkable
class TextToImage(Protocol):
    """Prompts -> images, one per prompt, square `resolution` px PIL images in RGB."""

    capabilities: Capabilities

    def __call__(
        self,
        prompts: Sequence[str],
        *,
        negative_prompts: Optional[Sequence[str]],
        generators: Sequence[Any],  # torch.Generator, one per prompt
        guidance_scale: float,
        num_inference_steps: int,
        resolution: int,
    ) -> "Sequence[Any] | ImagesOutput":  # PIL.Image.Image, one per prompt, in order (see images_of)
        ...
