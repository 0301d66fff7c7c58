"""Family `janus` of the transformers kind: Janus / Janus-Pro image generation through transformers'
JanusForConditionalGeneration (hub repos converted to transformers: deepseek-community/Janus-Pro-1B, -7B).

Classifier-free guidance is Janus's own (unconditional branch = the prompt masked out), so negative prompts are not
used; images come out at the VQ decoder's fixed size (384 px for the released models).
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

from mqeval.contract.text_to_image import Capabilities


class JanusTextToImage:
    def __init__(self, model, processor, generation_kwargs: dict[str, Any], capabilities: Capabilities):
        self.model, self.processor = model, processor
        self.generation_kwargs = dict(generation_kwargs)
        self.capabilities = capabilities

    def _one(self, prompt: str, generator, guidance_scale: float):
        from mqeval.model.kinds.transformers_family import rng_of, to_pil

        messages = [{"role": "user", "content": [{"type": "text", "text": prompt}]}]
        text = self.processor.apply_chat_template(messages, add_generation_prompt=True)
        inputs = self.processor(text=text, generation_mode="image", return_tensors="pt").to(self.model.device)
        with rng_of(generator, self.model.device):
            tokens = self.model.generate(**inputs, generation_mode="image", do_sample=True, use_cache=True,
                                         guidance_scale=guidance_scale, **self.generation_kwargs)
        decoded = self.model.decode_image_tokens(tokens)[0]  # (H, W, 3)
        return to_pil(decoded.permute(2, 0, 1), self.processor.image_processor)

    def __call__(self, prompts: Sequence[str], *, negative_prompts: Optional[Sequence[str]], generators: Sequence[Any],
                 guidance_scale: float, num_inference_steps: int, resolution: int) -> list:
        # num_inference_steps does not apply: Janus draws a fixed number of image tokens at its one resolution
        # (the capabilities pin it, so the settings asked for it).
        return [self._one(p, g, guidance_scale) for p, g in zip(prompts, generators)]

