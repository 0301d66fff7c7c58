"""Kind `transformers`, family `janus`: Janus / Janus-Pro image generation through transformers'
JanusForConditionalGeneration (hub repos converted to transformers: deepseek-community/Janus-Pro-1B, -7B).

Janus samples image tokens autoregressively with the global torch RNG, which a batch shares. So each image is
generated alone, under a forked RNG seeded from its own generator: images depend only on (prompt, seed), whatever
the batch or the process. Classifier-free guidance is Janus's own (unconditional branch = the prompt masked out), so
negative prompts are not used; images come out at the VQ decoder's fixed size (384 px for the released models).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence

from mqeval.contract.text_to_image import Capabilities
from mqeval.errors import UserError
from mqeval.model.kinds.hub_kind import HubKind, torch_dtype

JANUS_RESOLUTION = 384


class JanusKind(HubKind):
    block = "transformers"

    def capabilities(self, card) -> Capabilities:
        return card.capabilities or Capabilities(negative_prompt=False, min_resolution=JANUS_RESOLUTION,
                                                 max_resolution=JANUS_RESOLUTION)

    def default_resolution(self, card) -> Optional[int]:
        return self.capabilities(card).max_resolution

    def download(self, config) -> str:
        from huggingface_hub import snapshot_download

        return snapshot_download(config.model_id, revision=config.revision,
                                 allow_patterns=["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja"])

    def load(self, card, weights: Optional[Path], device: str) -> "JanusTextToImage":
        from transformers import JanusForConditionalGeneration, JanusProcessor

        config = card.transformers
        source = self.source(card, weights)
        try:
            processor = JanusProcessor.from_pretrained(source, revision=config.revision)
            model = JanusForConditionalGeneration.from_pretrained(source, revision=config.revision,
                                                                  dtype=torch_dtype(config.dtype))
        except (OSError, ValueError) as exc:
            raise UserError(f"Could not load the Janus model {config.describe()} of model '{card.name}': "
                            f"{str(exc).splitlines()[0]}") from None
        return JanusTextToImage(model.to(device).eval(), processor, config.generation_kwargs,
                                self.capabilities(card))


class JanusTextToImage:
    def __init__(self, model, processor, generation_kwargs: dict[str, Any], capabilities: Capabilities):
        self.model, self.processor = model, processor
        self.generation_kwargs = dict(generation_kwargs)
        self.capabilities = capabilities

    def _one(self, prompt: str, generator, guidance_scale: float):
        import torch
        from PIL import Image

        messages = [{"role": "user", "content": [{"type": "text", "text": prompt}]}]
        text = self.processor.apply_chat_template(messages, add_generation_prompt=True)
        inputs = self.processor(text=text, generation_mode="image", return_tensors="pt").to(self.model.device)
        seed = int(torch.randint(0, 2**62, (), generator=generator))
        devices = [self.model.device] if self.model.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            tokens = self.model.generate(**inputs, generation_mode="image", do_sample=True, use_cache=True,
                                         guidance_scale=guidance_scale, **self.generation_kwargs)
        # (1, H, W, 3) in [-1, 1] -> uint8 as the Janus reference code maps it: (x + 1) / 2 * 255, clipped.
        decoded = self.model.decode_image_tokens(tokens)[0].float()
        pixels = ((decoded.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu().numpy()
        return Image.fromarray(pixels)

    def __call__(self, prompts: Sequence[str], *, negative_prompts: Optional[Sequence[str]], generators: Sequence[Any],
                 guidance_scale: float, num_inference_steps: int, resolution: int) -> list:
        # num_inference_steps does not apply: Janus draws a fixed number of image tokens at its one resolution
        # (the capabilities pin it, so the settings asked for it).
        return [self._one(p, g, guidance_scale) for p, g in zip(prompts, generators)]


KIND = JanusKind()
