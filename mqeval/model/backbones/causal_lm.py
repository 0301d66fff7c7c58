"""Any causal language model (text only), from a folder, a hub id, or a GGUF file (`gguf_file=`)."""
from __future__ import annotations

from typing import Any

import torch

from mqeval.model.backbones.base import Backbone, backbone_folder, text_position_ids
from mqeval.model.metaquery_config import BackboneConfig


class CausalLMBackbone(Backbone):
    family = "causal_lm"
    supports_images = False

    def __init__(self, config: BackboneConfig, dtype: torch.dtype | None = None):
        super().__init__(config)
        path = backbone_folder(config)  # before the heavy imports
        from transformers import AutoModelForCausalLM, AutoTokenizer

        common: dict[str, Any] = {}
        if config.gguf_file:  # transformers dequantizes GGUF tensors on load; no pickle involved
            common["gguf_file"] = config.gguf_file
        self.tokenizer = AutoTokenizer.from_pretrained(path, **common)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        weights = {} if config.gguf_file else {"use_safetensors": True}
        self.model = AutoModelForCausalLM.from_pretrained(
            path, dtype=self.weights_dtype(dtype), **common, **weights
        )
        self.setup_tuning()

    def render(self, prompt: str, num_images: int) -> str:
        if not getattr(self.tokenizer, "chat_template", None):
            return f"{self.system_prompt}\n\n{prompt}" if self.system_prompt else prompt
        user = [{"role": "user", "content": prompt}]
        if not self.system_prompt:
            return self.tokenizer.apply_chat_template(user, tokenize=False, add_generation_prompt=True)
        try:
            messages = [{"role": "system", "content": self.system_prompt}] + user
            return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        except Exception:  # templates without a system role (e.g. Gemma): put it at the start of the user turn
            merged = [{"role": "user", "content": f"{self.system_prompt}\n\n{prompt}"}]
            return self.tokenizer.apply_chat_template(merged, tokenize=False, add_generation_prompt=True)

    def encode_inputs(self, texts: list[str], images: list[list[Any]]) -> dict[str, torch.Tensor]:
        return dict(self.tokenizer(texts, padding=True, add_special_tokens=False, return_tensors="pt"))

    def run(self, input_ids, inputs_embeds, attention_mask, extras) -> torch.Tensor:
        out = self.model.base_model(
            inputs_embeds=inputs_embeds, attention_mask=attention_mask.long(),
            position_ids=text_position_ids(attention_mask), use_cache=False,
        )
        return out.last_hidden_state
