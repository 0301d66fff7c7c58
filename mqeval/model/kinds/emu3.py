"""Kind `transformers`, family `emu3`: Emu3 image generation through transformers' Emu3ForConditionalGeneration
(hub repo converted to transformers: BAAI/Emu3-Gen-hf).

Emu3 writes an image as rows of visual tokens, each row closed by an end-of-line token, then end-of-frame,
end-of-image and end-of-sequence; a prefix constraint lets the sampler emit only that grammar. Classifier-free
guidance runs against the negative prompt. As for Janus, each image is sampled alone under an RNG forked from its
own generator (see mqeval.model.kinds.transformers_family), so it depends only on (prompt, negative prompt, seed).
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

from mqeval.contract.text_to_image import Capabilities

EOL_TOKEN = "<|extra_200|>"


def grid_constraint(processor, model, height: int, width: int, device):
    """prefix_allowed_tokens_fn: visual tokens inside the height x width grid, EOL after each row, then EOF, EOI,
    EOS and padding."""
    import torch

    tokenizer = processor.tokenizer
    visual = model.vocabulary_mapping.image_tokens
    ids = {name: torch.tensor([tokenizer.convert_tokens_to_ids(token)], device=device) for name, token in (
        ("wrapper", tokenizer.image_wrapper_token), ("eol", EOL_TOKEN), ("eof", tokenizer.eof_token),
        ("eoi", tokenizer.eoi_token), ("eos", tokenizer.eos_token), ("pad", tokenizer.pad_token))}
    grid = (width + 1) * height

    def allowed(batch_id: int, input_ids):
        start = torch.nonzero(input_ids == ids["wrapper"], as_tuple=True)[0][0]
        offset = input_ids.shape[0] - start
        if offset % (width + 1) == 0 and offset <= grid:
            return ids["eol"]
        for extra, name in ((1, "eof"), (2, "eoi"), (3, "eos")):
            if offset == grid + extra:
                return ids[name]
        return ids["pad"] if offset > grid + 3 else visual

    return allowed


class Emu3TextToImage:
    def __init__(self, model, processor, generation_kwargs: dict[str, Any], capabilities: Capabilities):
        self.model, self.processor = model, processor
        self.generation_kwargs = dict(generation_kwargs)
        self.capabilities = capabilities

    def _one(self, prompt: str, negative: str, generator, guidance_scale: float, resolution: int):
        from mqeval.model.kinds.transformers_family import rng_of, to_pil

        device = self.model.device
        inputs = self.processor(text=[prompt], return_for_image_generation=True, image_area=resolution * resolution,
                                return_tensors="pt").to(device)
        height, width = (int(v) for v in inputs.pop("image_sizes")[0])
        negative_inputs = self.processor(text=[negative], return_tensors="pt").to(device)
        with rng_of(generator, device):
            out = self.model.generate(
                **inputs, max_new_tokens=(width + 1) * height + 3, do_sample=True, guidance_scale=guidance_scale,
                prefix_allowed_tokens_fn=grid_constraint(self.processor, self.model, height, width, device),
                negative_prompt_ids=negative_inputs.input_ids,
                negative_prompt_attention_mask=negative_inputs.attention_mask, **self.generation_kwargs,
            )
        tokens = out[:, inputs.input_ids.shape[1]:]
        image = self.model.decode_image_tokens(image_tokens=tokens, height=height, width=width)[0]  # (3, H, W)
        return to_pil(image, self.processor.image_processor)

    def __call__(self, prompts: Sequence[str], *, negative_prompts: Optional[Sequence[str]], generators: Sequence[Any],
                 guidance_scale: float, num_inference_steps: int, resolution: int) -> list:
        negatives = list(negative_prompts) if negative_prompts is not None else [""] * len(prompts)
        return [self._one(p, n, g, guidance_scale, resolution) for p, n, g in zip(prompts, negatives, generators)]
