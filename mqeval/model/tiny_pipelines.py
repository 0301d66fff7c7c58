"""Builders of tiny complete text-to-image models for the non-MetaQuery kinds (see mqeval.model.tiny): a diffusers
StableDiffusionPipeline (UNet + VAE + CLIP text encoder), a diffusers SanaPipeline (flow-matching DiT + DC-AE + Gemma2
text encoder) and a transformers Janus. Saved as the real repos are laid out, so the real loaders open them."""
from __future__ import annotations

from pathlib import Path


def _tokenizer(max_length: int, padding_side: str = "right"):
    from mqeval.model.tiny import tiny_tokenizer

    tokenizer = tiny_tokenizer(())
    tokenizer.model_max_length = max_length
    tokenizer.padding_side = padding_side
    return tokenizer


def build_sd15_pipeline(out: Path) -> None:
    import torch
    from diffusers import AutoencoderKL, DDPMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from mqeval.model.tiny_builders import build_sd15

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

    from mqeval.model.tiny_builders import build_sana

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


BUILDERS = {"sd15_pipeline": build_sd15_pipeline, "sana_pipeline": build_sana_pipeline}
