"""Janus (deepseek-ai/Janus-1.3B) through DeepSeek's own code, package `janus.models`: the factory of
model_zoo/janus-1.3b.yaml.

As in generation_inference.py of deepseek-ai/Janus: the prompt's conversation + `<begin_of_image>`; rows
alternate conditional / unconditional, where the unconditional row keeps the first and last token and has pad tokens
between; each step's logits are uncond + cfg * (cond - uncond), divided by the temperature, and one token is sampled;
576 tokens (24 x 24) are decoded by the VQ decoder to 384 px, and pixels are truncated to uint8. mqeval's addition:
each image samples with its own generator (on the model's device, seeded from generators[i]).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from mqeval.model.official import device_generator, to_pil_images
from mqeval.model.official.deepseek import CLASSES, DEEPSEEK_CODE, DeepSeekTextToImage, load_deepseek

CODE_CHANNELS = 8  # the VQ decoder's code dimension, as the authors' script passes it to decode_code


class JanusOfficial(DeepSeekTextToImage):
    tag = "image_start_tag"

    def __init__(self, model: Any, processor: Any, *, temperature: float = 1.0, image_size: int = 384,
                 patch_size: int = 16, device: str = "cpu"):
        super().__init__(model, processor, image_size, device)
        self.temperature = temperature
        self.grid = image_size // patch_size

    def generate_group(self, prompt_tokens, generators: list, guidance_scale: float, steps: int) -> list:
        # `steps` does not apply: Janus draws a fixed grid of tokens (the card's capabilities pin the resolution).
        import torch

        language_model = self.model.language_model
        rows = prompt_tokens.repeat_interleave(2, dim=0)  # cond, uncond, cond, uncond, ...
        rows[1::2, 1:-1] = self.processor.pad_id
        inputs = language_model.get_input_embeddings()(rows)
        draws = [device_generator(generator, self.device) for generator in generators]
        tokens = torch.zeros((len(generators), self.grid * self.grid), dtype=torch.long, device=self.device)
        cache = None
        for position in range(tokens.shape[1]):
            output = language_model.model(inputs_embeds=inputs, use_cache=True, past_key_values=cache)
            cache = output.past_key_values
            logits = self.model.gen_head(output.last_hidden_state[:, -1, :])
            cond, uncond = logits[0::2], logits[1::2]
            probs = torch.softmax((uncond + guidance_scale * (cond - uncond)) / self.temperature, dim=-1)
            chosen = torch.cat([torch.multinomial(row, 1, generator=draw) for row, draw in zip(probs, draws)])
            tokens[:, position] = chosen
            inputs = self.model.prepare_gen_img_embeds(chosen.repeat_interleave(2)).unsqueeze(1)
        pixels = self.model.gen_vision_model.decode_code(
            tokens.to(torch.int), shape=[len(generators), CODE_CHANNELS, self.grid, self.grid])
        return to_pil_images(pixels, rounding=False)


def build(*, weights: Mapping[str, Path], device: str = "cpu", dtype: str = "bfloat16", temperature: float = 1.0,
          image_size: int = 384, patch_size: int = 16) -> JanusOfficial:
    """The card's factory: weights={"model": folder of deepseek-ai/Janus-1.3B}."""
    processor, model = load_deepseek("janus.models", weights["model"], dtype, device)
    return JanusOfficial(model, processor, temperature=temperature, image_size=image_size, patch_size=patch_size,
                         device=device)


def check() -> None:
    """The card's `check`: DeepSeek's code imports here (before any weights are fetched)."""
    DEEPSEEK_CODE.load("janus.models", CLASSES)
