"""Builders of tiny complete text-to-image models for the non-MetaQuery kinds (see mqeval.model.tiny): a diffusers
StableDiffusionPipeline (UNet + VAE + CLIP text encoder), a diffusers SanaPipeline (flow-matching DiT + DC-AE + Gemma2
text encoder) and a transformers Janus. Saved as the real repos are laid out, so the real loaders open them."""
from __future__ import annotations

from pathlib import Path


def _tokenizer(max_length: int, padding_side: str = "right"):
    from mqeval.model.tiny.tokenizer import tiny_tokenizer

    tokenizer = tiny_tokenizer(())
    tokenizer.model_max_length = max_length
    tokenizer.padding_side = padding_side
    return tokenizer


def build_sd15_pipeline(out: Path) -> None:
    import torch
    from diffusers import AutoencoderKL, DDPMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from mqeval.model.tiny.components import build_sd15

    build_sd15(out)  # unet, vae, scheduler subfolders (seeded)
    tokenizer = _tokenizer(16)
    torch.manual_seed(0)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
        max_position_embeddings=16, projection_dim=32, pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.eos_token_id,
    ))
    pipe = StableDiffusionPipeline(
        unet=UNet2DConditionModel.from_pretrained(out / "unet"), vae=AutoencoderKL.from_pretrained(out / "vae"),
        scheduler=DDPMScheduler.from_pretrained(out / "scheduler"), text_encoder=text_encoder, tokenizer=tokenizer,
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )
    pipe.save_pretrained(out)


def build_sana_pipeline(out: Path) -> None:
    import torch
    from diffusers import AutoencoderDC, FlowMatchEulerDiscreteScheduler, SanaPipeline, SanaTransformer2DModel
    from transformers import Gemma2Config, Gemma2Model

    from mqeval.model.tiny.components import build_sana

    build_sana(out)  # transformer (caption_channels 32), vae (DC-AE, 4x down), scheduler (seeded)
    tokenizer = _tokenizer(24)
    torch.manual_seed(0)
    text_encoder = Gemma2Model(Gemma2Config(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
        num_key_value_heads=1, head_dim=16, max_position_embeddings=64, pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.eos_token_id,
    ))
    pipe = SanaPipeline(
        transformer=SanaTransformer2DModel.from_pretrained(out / "transformer"),
        vae=AutoencoderDC.from_pretrained(out / "vae"), scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
        text_encoder=text_encoder, tokenizer=tokenizer,
    )
    pipe.save_pretrained(out)


def build_janus(out: Path) -> None:
    """JanusForConditionalGeneration with a 2x2 grid of image tokens decoded to 16 px, and its processor."""
    import torch
    from transformers import (
        GenerationConfig, JanusConfig, JanusForConditionalGeneration, JanusImageProcessor, JanusProcessor,
    )

    from mqeval.model.tiny.tokenizer import tiny_tokenizer

    specials = {"image_token": "<image_placeholder>", "boi_token": "<begin_of_image>", "eoi_token": "<end_of_image>"}
    tokenizer = tiny_tokenizer((), named=specials)
    ids = {name: tokenizer.convert_tokens_to_ids(token) for name, token in specials.items()}
    grid, width = 2, 32  # image tokens per side, LM width
    config = JanusConfig(
        text_config={"model_type": "llama", "vocab_size": len(tokenizer), "hidden_size": width,
                     "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
                     "num_key_value_heads": 1, "max_position_embeddings": 256,
                     "pad_token_id": tokenizer.pad_token_id, "bos_token_id": tokenizer.eos_token_id},
        vision_config={"hidden_size": width, "num_hidden_layers": 1, "num_attention_heads": 2, "image_size": 32,
                       "patch_size": 16, "projection_dim": width, "num_image_tokens": grid * grid, "depth": 1},
        vq_config={"embed_dim": 8, "num_embeddings": 64, "latent_channels": 32, "base_channels": 32,  # GroupNorm(32)
                   "channel_multiplier": [1, 1, 1, 1], "num_res_blocks": 1, "num_patches": grid,
                   "projection_dim": width, "image_token_embed_dim": width, "num_hidden_layers": 1},
        image_token_id=ids["image_token"],
    )
    torch.manual_seed(0)
    model = JanusForConditionalGeneration(config)
    model.generation_config = GenerationConfig(
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id,
        guidance_scale=5.0, generation_kwargs={"boi_token_id": ids["boi_token"], "num_image_tokens": grid * grid},
    )
    model.save_pretrained(out)
    image_processor = JanusImageProcessor(size={"height": 32, "width": 32}, image_mean=[0.5] * 3, image_std=[0.5] * 3)
    JanusProcessor(image_processor=image_processor, tokenizer=tokenizer, chat_template=tokenizer.chat_template,
                   num_image_tokens=grid * grid).save_pretrained(out)


def build_emu3(out: Path) -> None:
    """Emu3ForConditionalGeneration with 64 visual tokens, a 2x2 token grid decoded to 16 px, and its processor."""
    import torch
    from transformers import (
        Emu3Config, Emu3ForConditionalGeneration, Emu3ImageProcessor, Emu3Processor, GenerationConfig,
    )

    from mqeval.model.tiny.tokenizer import tiny_tokenizer

    named = {"image_token": "<image>", "boi_token": "<|image start|>", "eoi_token": "<|image end|>",
             "image_wrapper_token": "<|image token|>", "eof_token": "<|extra_201|>"}
    visual = tuple(f"<|visual token {i:06d}|>" for i in range(64))
    tokenizer = tiny_tokenizer(("<|extra_200|>", *visual), named=named)
    tokenizer.bos_token = "<|im_start|>"
    config = Emu3Config(
        text_config={"vocab_size": len(tokenizer), "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                     "num_attention_heads": 2, "num_key_value_heads": 1, "max_position_embeddings": 256,
                     "pad_token_id": tokenizer.pad_token_id, "bos_token_id": tokenizer.bos_token_id,
                     "eos_token_id": tokenizer.eos_token_id},
        vq_config={"codebook_size": len(visual), "embed_dim": 4, "latent_channels": 4, "base_channels": 32,
                   "channel_multiplier": [1, 1, 1, 1], "num_res_blocks": 1, "attn_resolutions": [],
                   "hidden_size": 32, "temporal_downsample_factor": 4},
        vocabulary_map=tokenizer.get_vocab(),
    )
    torch.manual_seed(0)
    model = Emu3ForConditionalGeneration(config)
    model.generation_config = GenerationConfig(
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
    )
    model.save_pretrained(out)
    image_processor = Emu3ImageProcessor(min_pixels=16 * 16, max_pixels=16 * 16, image_mean=[0.5] * 3,
                                         image_std=[0.5] * 3)
    Emu3Processor(image_processor=image_processor, tokenizer=tokenizer,
                  chat_template=tokenizer.chat_template).save_pretrained(out)


BUILDERS = {"sd15_pipeline": build_sd15_pipeline, "sana_pipeline": build_sana_pipeline, "janus": build_janus,
            "emu3": build_emu3}
