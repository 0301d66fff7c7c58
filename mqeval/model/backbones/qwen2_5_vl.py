"""Qwen2.5-VL: text and image prompts; 3D (multimodal) rotary positions computed from the padded sequence."""
from __future__ import annotations

import torch

from mqeval.model.backbones.vlm import ProcessorBackbone


# Pixel budget of an input image in the official code: 256..1280 patches of 28x28 after merging.
MIN_PIXELS, MAX_PIXELS = 256 * 28 * 28, 1280 * 28 * 28


class Qwen25VLBackbone(ProcessorBackbone):
    family = "qwen2_5_vl"
    model_class = "Qwen2_5_VLForConditionalGeneration"

    def __init__(self, config, dtype=None):
        super().__init__(config, dtype)
        # The official code passes this budget to AutoProcessor whatever the processor's own (models/model.py).
        size = dict(self.processor.image_processor.size)
        self.processor.image_processor.size = {**size, "shortest_edge": MIN_PIXELS, "longest_edge": MAX_PIXELS}

    def run(self, input_ids, inputs_embeds, attention_mask, extras) -> torch.Tensor:
        inner = self.model.model
        config = self.model.config
        grid = extras.get("image_grid_thw")
        token_types = (input_ids == config.image_token_id).int()  # queries and markers count as text
        position_ids, _ = inner.get_rope_index(
            input_ids, token_types, image_grid_thw=grid, attention_mask=attention_mask.long()
        )
        out = inner(
            input_ids=input_ids, inputs_embeds=inputs_embeds, attention_mask=attention_mask.long(),
            position_ids=position_ids, pixel_values=extras.get("pixel_values"), image_grid_thw=grid,
            use_cache=False,
        )
        return out.last_hidden_state
