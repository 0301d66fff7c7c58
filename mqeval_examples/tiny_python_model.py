"""A complete `python` model for mqeval: a factory returning an object with the TextToImage protocol.

Card (model_zoo/tiny-python.yaml runs this file offline):

    kind: python
    description: my model
    python:
      factory: mqeval_examples.tiny_python_model:build  # package.module:function
      kwargs: {width: 16}                    # passed to the factory, after device=
    capabilities: {negative_prompt: true, min_resolution: 8, max_resolution: 256}
    generation: {resolution: 32, guidance_scale: 3.0, num_inference_steps: 4}

Then `mqeval run shapes --model tiny-python --limit 8`. This model is a tiny random network: it shows
the contract (one generator per image, images independent of their batch), not a useful model.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np
import torch
from PIL import Image

from mqeval.contract.text_to_image import Capabilities


class ColourField(torch.nn.Module):
    """Noise from the image's own generator, refined by a seeded random conv net conditioned on the prompt's bytes."""

    capabilities = Capabilities(negative_prompt=True, min_resolution=8, max_resolution=256)

    def __init__(self, width: int = 16, device: str = "cpu"):
        super().__init__()
        init = torch.Generator().manual_seed(0)  # fixed weights: the same model in every process
        self.embed = torch.nn.Parameter(torch.randn(256, width, generator=init) * 0.1)
        self.conv_in = torch.nn.Conv2d(3, width, 3, padding=1)
        self.conv_out = torch.nn.Conv2d(width, 3, 3, padding=1)
        for conv in (self.conv_in, self.conv_out):
            torch.nn.init.normal_(conv.weight, std=0.2, generator=init)
            torch.nn.init.zeros_(conv.bias)
        self.device = torch.device(device)
        self.to(self.device).eval()

    def _text(self, prompt: str) -> torch.Tensor:
        ids = torch.tensor(list(prompt.encode("utf-8"))[:64] or [0], device=self.device)
        return self.embed[ids].mean(0)

    @torch.no_grad()
    def __call__(self, prompts: Sequence[str], *, negative_prompts: Optional[Sequence[str]],
                 generators: Sequence[Any], guidance_scale: float, num_inference_steps: int,
                 resolution: int) -> list[Image.Image]:
        negatives = negative_prompts if negative_prompts is not None else [None] * len(prompts)
        # Image i uses only its own prompt and generator: batch-independent by construction.
        return [self._draw(prompt, negative, generator, guidance_scale, num_inference_steps, resolution)
                for prompt, negative, generator in zip(prompts, negatives, generators)]

    def _draw(self, prompt: str, negative: Optional[str], generator: torch.Generator, guidance_scale: float,
              steps: int, resolution: int) -> Image.Image:
        x = torch.randn((1, 3, resolution, resolution), generator=generator).to(self.device)
        cond = self._text(prompt)
        if negative is not None:
            cond = self._text(negative) + guidance_scale * (cond - self._text(negative))
        for _ in range(steps):
            h = torch.tanh(self.conv_in(x)) * cond[None, :, None, None]
            x = x - 0.5 * torch.tanh(self.conv_out(h))
        pixels = ((x[0].clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
        return Image.fromarray(np.ascontiguousarray(pixels))


def build(device: str = "cpu", width: int = 16) -> ColourField:
    """The factory a card names: mqeval calls it with device= and the card's python.kwargs."""
    return ColourField(width=width, device=device)
