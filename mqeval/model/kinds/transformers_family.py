"""Kind `transformers`: autoregressive image generators that transformers runs, by `family`:
`janus` (Janus / Janus-Pro, JanusForConditionalGeneration) and `emu3` (Emu3ForConditionalGeneration).

These samplers draw image tokens with the global torch RNG, which a batch would share; so each image is generated
alone, under `torch.random.fork_rng` seeded from its own generator, and depends only on (prompt, seed).
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from mqeval.contract.text_to_image import Capabilities
from mqeval.errors import UserError
from mqeval.hub_download import TRANSFORMERS_FILES
from mqeval.model.kinds.hub_kind import HubKind, torch_dtype


@dataclass(frozen=True)
class Family:
    processor: str  # transformers class names
    model: str
    generator: str  # "module:class" taking (model, processor, generation_kwargs, capabilities)
    capabilities: Capabilities


FAMILIES = {
    # Janus decodes a fixed 24 x 24 token grid to 384 px; its CFG runs against the prompt masked out.
    "janus": Family("JanusProcessor", "JanusForConditionalGeneration", "mqeval.model.kinds.janus:JanusTextToImage",
                    Capabilities(negative_prompt=False, min_resolution=384, max_resolution=384)),
    # Emu3 generates a token grid of any size (8 px per token); its CFG runs against the negative prompt.
    "emu3": Family("Emu3Processor", "Emu3ForConditionalGeneration", "mqeval.model.kinds.emu3:Emu3TextToImage",
                   Capabilities(negative_prompt=True, resolution_multiple=8)),
}


class TransformersKind(HubKind):
    allow_patterns = TRANSFORMERS_FILES

    def capabilities(self, card) -> Capabilities:
        return card.capabilities or FAMILIES[card.transformers.family].capabilities

    def default_resolution(self, card) -> Optional[int]:
        return self.capabilities(card).max_resolution

    def load(self, card, weights: Optional[Path], device: str):
        import importlib

        import transformers

        config = card.transformers
        family = FAMILIES[config.family]
        source = self.source(card, weights)
        try:
            processor = getattr(transformers, family.processor).from_pretrained(source, revision=config.revision)
            model = getattr(transformers, family.model).from_pretrained(source, revision=config.revision,
                                                                        dtype=torch_dtype(config.dtype))
        except (OSError, ValueError) as exc:
            raise UserError(f"Could not load the {config.family} model {config.describe()} of model '{card.name}': "
                            f"{str(exc).splitlines()[0]}") from None
        module, _, name = family.generator.partition(":")
        generator = getattr(importlib.import_module(module), name)
        return generator(model.to(device).eval(), processor, config.generation_kwargs, self.capabilities(card))


@contextmanager
def rng_of(generator, device):
    """Within the block the global torch RNG (CPU, and `device` when it is a GPU) is seeded from this image's own
    generator, and restored afterwards: a sampler drawing from the global RNG then depends only on the image's seed."""
    import torch

    seed = int(torch.randint(0, 2**62, (), generator=generator))
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        yield


def to_pil(image, image_processor):
    """A decoded (C, H, W) image in the processor's normalised space -> uint8 RGB, as the processor's postprocess
    maps it back (x * std + mean)."""
    import torch
    from PIL import Image

    mean = torch.tensor(image_processor.image_mean, dtype=torch.float32).view(3, 1, 1)
    std = torch.tensor(image_processor.image_std, dtype=torch.float32).view(3, 1, 1)
    pixels = ((image.float().cpu() * std + mean) * 255).clamp(0, 255).round().to(torch.uint8)
    return Image.fromarray(pixels.permute(1, 2, 0).numpy())


KIND = TransformersKind()
