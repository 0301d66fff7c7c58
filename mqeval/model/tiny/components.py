"""Builders of the tiny VLM and decoder test models (see mqeval.model.tiny). Layouts mirror the real repos:
VLMs as transformers folders with a processor; decoders as diffusers pipeline folders (transformer|unet, vae,
scheduler subfolders). Each builder is called under a fixed torch seed."""
from __future__ import annotations

from pathlib import Path

# A 14 px patch with 2x2 merging, as in Qwen2.5-VL; images are resized to 56x56 -> 4 image tokens.
_QWEN_PIXELS = 56 * 56


def _seed() -> None:
    import torch

    torch.manual_seed(0)


def _tiny_text_config(vocab_size: int, pad_id: int) -> dict:
    return dict(
        vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=1, max_position_embeddings=1024, pad_token_id=pad_id, bos_token_id=None,
        eos_token_id=pad_id, tie_word_embeddings=True,
    )


def build_qwen2_5_vl(out: Path) -> None:
    from transformers import (
        Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLProcessor, Qwen2VLImageProcessor,
        Qwen2VLVideoProcessor,
    )

    from mqeval.model.tiny.tokenizer import tiny_tokenizer

    specials = ("<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>")
    tokenizer = tiny_tokenizer(specials, image_slot="<|vision_start|><|image_pad|><|vision_end|>")
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in specials}
    text = _tiny_text_config(len(tokenizer), tokenizer.pad_token_id)
    text["rope_parameters"] = {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]}
    config = Qwen2_5_VLConfig(
        text_config=text,
        vision_config=dict(
            depth=1, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=32, patch_size=14,
            spatial_merge_size=2, temporal_patch_size=2, window_size=56, fullatt_block_indexes=[0], in_channels=3,
        ),
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=True,
    )
    _seed()
    Qwen2_5_VLForConditionalGeneration(config).save_pretrained(out)
    image_processor = Qwen2VLImageProcessor(
        min_pixels=_QWEN_PIXELS, max_pixels=_QWEN_PIXELS, patch_size=14, merge_size=2, temporal_patch_size=2,
    )
    processor = Qwen2_5_VLProcessor(image_processor=image_processor, tokenizer=tokenizer,
                                    video_processor=Qwen2VLVideoProcessor(), chat_template=tokenizer.chat_template)
    processor.save_pretrained(out)


def build_llava_onevision(out: Path) -> None:
    from transformers import (
        LlavaOnevisionConfig, LlavaOnevisionForConditionalGeneration, LlavaOnevisionImageProcessor,
        LlavaOnevisionProcessor, LlavaOnevisionVideoProcessor,
    )

    from mqeval.model.tiny.tokenizer import tiny_tokenizer

    tokenizer = tiny_tokenizer(("<image>", "<video>"), image_slot="<image>\n")
    image_token_id = tokenizer.convert_tokens_to_ids("<image>")
    config = LlavaOnevisionConfig(
        text_config={"model_type": "qwen2", **_tiny_text_config(len(tokenizer), tokenizer.pad_token_id)},
        vision_config=dict(
            model_type="siglip_vision_model", hidden_size=32, intermediate_size=64, num_hidden_layers=1,
            num_attention_heads=2, image_size=28, patch_size=14,
        ),
        image_token_id=image_token_id, video_token_id=tokenizer.convert_tokens_to_ids("<video>"),
        image_grid_pinpoints=[[28, 28]], vision_feature_layer=-1, vision_feature_select_strategy="full",
        tie_word_embeddings=True,
    )
    _seed()
    LlavaOnevisionForConditionalGeneration(config).save_pretrained(out)
    image_processor = LlavaOnevisionImageProcessor(
        size={"height": 28, "width": 28}, crop_size={"height": 28, "width": 28}, image_grid_pinpoints=[[28, 28]],
    )
    processor = LlavaOnevisionProcessor(
        image_processor=image_processor, tokenizer=tokenizer, video_processor=LlavaOnevisionVideoProcessor(),
        chat_template=tokenizer.chat_template,
        num_image_tokens=4, vision_feature_select_strategy="full",
    )
    processor.save_pretrained(out)


def build_sana(out: Path) -> None:
    from diffusers import AutoencoderDC, DPMSolverMultistepScheduler, SanaTransformer2DModel

    _seed()
    SanaTransformer2DModel(
        in_channels=4, out_channels=4, num_attention_heads=2, attention_head_dim=8, num_layers=1,
        num_cross_attention_heads=2, cross_attention_head_dim=8, cross_attention_dim=16, caption_channels=32,
        mlp_ratio=2.0, sample_size=16, patch_size=2,
    ).save_pretrained(out / "transformer")
    AutoencoderDC(
        in_channels=3, latent_channels=4, attention_head_dim=4,
        encoder_block_types=("ResBlock", "ResBlock", "EfficientViTBlock"),
        decoder_block_types=("ResBlock", "ResBlock", "EfficientViTBlock"),
        encoder_block_out_channels=(8, 8, 16), decoder_block_out_channels=(8, 8, 16),
        encoder_layers_per_block=(1, 1, 1), decoder_layers_per_block=(1, 1, 1),
        encoder_qkv_multiscales=((), (), (3,)), decoder_qkv_multiscales=((), (), (3,)),
        downsample_block_type="conv", upsample_block_type="interpolate", scaling_factor=0.41407,
    ).save_pretrained(out / "vae")
    DPMSolverMultistepScheduler(
        prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0,
    ).save_pretrained(out / "scheduler")


def build_sd15(out: Path) -> None:
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel

    _seed()
    UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(16, 32),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32, attention_head_dim=8, norm_num_groups=8,
    ).save_pretrained(out / "unet")
    AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 8, 8, 8), layers_per_block=1,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4, norm_num_groups=4,
        sample_size=64, scaling_factor=0.18215,
    ).save_pretrained(out / "vae")
    DDPMScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000,
        clip_sample=False, steps_offset=1,
    ).save_pretrained(out / "scheduler")


BUILDERS = {
    "qwen2_5_vl": build_qwen2_5_vl,
    "llava_onevision": build_llava_onevision,
    "sana": build_sana,
    "sd15": build_sd15,
}
