"""LLaVA-OneVision (SigLIP + Qwen2): text and image prompts; image features replace the <image> placeholders."""
from __future__ import annotations

import torch

from mqeval.model.backbones.base import text_position_ids
from mqeval.model.backbones.vlm import ProcessorBackbone


class LlavaOneVisionBackbone(ProcessorBackbone):
    family = "llava_onevision"
    model_class = "LlavaOnevisionForConditionalGeneration"

    def prepare_image(self, image):
        """Resize the short side to the vision tower's input size (384 px, the size the official code fixes) and
        center-crop a square, with the official code's torchvision transforms (bilinear, antialiased)."""
        from torchvision.transforms import v2

        side = self.model.config.vision_config.image_size
        return v2.CenterCrop(side)(v2.Resize(side)(image))

    def run(self, input_ids, inputs_embeds, attention_mask, extras) -> torch.Tensor:
        inner = self.model.model
        pixel_values = extras.get("pixel_values")
        if pixel_values is not None:
            # Merge the image features ourselves (the model's forward takes ids or embeddings, not both).
            features = inner.get_image_features(
                pixel_values, extras["image_sizes"],
                vision_feature_layer=self.model.config.vision_feature_layer,
                vision_feature_select_strategy=self.model.config.vision_feature_select_strategy,
                vision_aspect_ratio=self.model.config.vision_aspect_ratio,
                batch_num_images=extras.get("batch_num_images"), return_dict=True,
            ).pooler_output
            features = torch.cat(list(features), dim=0).to(inputs_embeds.device, inputs_embeds.dtype)
            slots = (input_ids == self.model.config.image_token_id)[..., None].expand_as(inputs_embeds)
            inputs_embeds = inputs_embeds.masked_scatter(slots, features)
        out = inner.language_model(
            inputs_embeds=inputs_embeds, attention_mask=attention_mask.long(),
            position_ids=text_position_ids(attention_mask), use_cache=False,
        )
        return out.last_hidden_state
