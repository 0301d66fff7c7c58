"""Shared loading and prompting of transformers vision-language models that come with a processor."""
from __future__ import annotations

from typing import Any

import torch

from mqeval.model.backbones.base import Backbone, backbone_folder
from mqeval.model.metaquery_config import BackboneConfig


class ProcessorBackbone(Backbone):
    supports_images = True
    language_scope = ".*language_model"
    model_class: str = ""  # transformers class name

    def __init__(self, config: BackboneConfig, dtype: torch.dtype | None = None):
        super().__init__(config)
        if config.gguf_file:
            raise ValueError(f"gguf_file is only supported for the causal_lm family, not {self.family}")
        path = backbone_folder(config)  # before the heavy imports
        import transformers
        from transformers import AutoProcessor

        self.processor = AutoProcessor.from_pretrained(path)
        # The PIL image processor where transformers has one: the official code (transformers 4.49) used it, and the
        # torchvision one resizes a little differently (images one grey level apart).
        pil_twin = getattr(transformers, type(self.processor.image_processor).__name__ + "Pil", None)
        if pil_twin is not None:
            self.processor.image_processor = pil_twin.from_pretrained(path)
        self.tokenizer = self.processor.tokenizer
        self.tokenizer.padding_side = "left"
        model_cls = getattr(transformers, self.model_class)
        self.model = model_cls.from_pretrained(path, dtype=self.weights_dtype(dtype), use_safetensors=True)
        self.setup_tuning()

    def prepare_image(self, image: Any) -> Any:
        return image

    def render(self, prompt: str, num_images: int) -> str:
        content = [{"type": "image"} for _ in range(num_images)] + [{"type": "text", "text": prompt}]
        system = [{"role": "system", "content": [{"type": "text", "text": self.system_prompt}]}]
        messages = (system if self.system_prompt else []) + [{"role": "user", "content": content}]
        return self.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def encode_inputs(self, texts: list[str], images: list[list[Any]]) -> dict[str, torch.Tensor]:
        flat = [self.prepare_image(im.convert("RGB")) for imgs in images for im in imgs]
        out = self.processor(text=texts, images=flat or None, padding=True, return_tensors="pt")
        return dict(out)
