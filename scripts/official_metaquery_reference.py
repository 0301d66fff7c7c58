"""Build a tiny MetaQuery with the authors' own classes (facebookresearch/metaquery @ 206f6de) and record what it
computes, for mqeval to load and compare (scripts/check_official_metaquery.py, tests/test_official_checkpoint.py).

    PYTHONPATH=.official/metaquery:.official/metaquery-code python scripts/official_metaquery_reference.py OUT
    ... official_metaquery_reference.py --load-check FOLDER OUT   (the official classes load FOLDER, e.g. written
                                                                   by `mqeval convert-checkpoint to-official`)

Runs only in the side environment of docs/official-code.md (transformers 4.49.0, diffusers 0.33.1 and
huggingface-hub 0.29.1 in front of the lock's torch): mqeval is not imported. Nothing is downloaded: the base models are tiny random models built
here from small configs and saved as local folders whose names contain what the official code looks for
("Qwen2.5-VL", "Sana"), standing in for the hub ids. OUT receives

    base/Qwen2.5-VL-tiny/, base/Sana-tiny/          the stand-in base models
    run/checkpoint-1/, run/checkpoint-2/             MetaQuery.save_pretrained, as the Trainer writes them
    reference.safetensors, reference.json            conditions, images, losses the official code computed
                                                     from checkpoint-2 (the newest, as find_newest_checkpoint takes)
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

PROMPTS = ["", "a red circle", "two blue squares left of a green star", "a photo of a cat",
           "a small yellow triangle under a big purple ring", "three", "a dog next to a house",
           "turn the apple into a cup"]
IMAGE_PROMPTS = ["a red circle", "two blue squares left of a green star"]
WORDS = ("a an the of and with on in under above below left right next to behind front photo image picture "
         "red orange yellow green blue purple pink brown black white gray circle square triangle star cross ring "
         "one two three four five six seven eight nine ten cat dog car bird tree house person apple cup table "
         "small large big tiny bright dark make it change color turn into remove add background scene").split()
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>",
            "<|video_pad|>"]
NUM_QUERIES = 8
LATENT_SIDE = 8  # 32 px images through a DC-AE that downsamples 4x


def tiny_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import Qwen2TokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=SPECIALS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator([" ".join(WORDS[i:] + WORDS[:i]) for i in range(len(WORDS))], trainer)
    fast = Qwen2TokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|endoftext|>",
                                   additional_special_tokens=SPECIALS[1:])
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_qwen2_5_vl(out: Path) -> None:
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLProcessor
    from transformers import Qwen2VLImageProcessor

    tokenizer = tiny_tokenizer()
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIALS}
    config = Qwen2_5_VLConfig(
        vocab_size=len(tokenizer) + 5,  # embedding rows beyond the tokenizer, as the real models have
        hidden_size=128, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        max_position_embeddings=1024, rope_theta=10000.0, rope_scaling={"type": "mrope", "mrope_section": [4, 6, 6]},
        tie_word_embeddings=False, pad_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|endoftext|>"],
        bos_token_id=None,
        vision_config=dict(depth=1, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=128,
                           patch_size=14, spatial_merge_size=2, temporal_patch_size=2, window_size=56,
                           fullatt_block_indexes=[0], in_chans=3),
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
    )
    torch.manual_seed(0)
    Qwen2_5_VLForConditionalGeneration(config).save_pretrained(out)
    image_processor = Qwen2VLImageProcessor(min_pixels=56 * 56, max_pixels=56 * 56, patch_size=14, merge_size=2,
                                            temporal_patch_size=2)
    Qwen2_5_VLProcessor(image_processor=image_processor, tokenizer=tokenizer,
                        chat_template=CHAT_TEMPLATE).save_pretrained(out)


def build_sana(out: Path) -> None:
    from diffusers import AutoencoderDC, DPMSolverMultistepScheduler, SanaTransformer2DModel

    torch.manual_seed(0)
    SanaTransformer2DModel(
        in_channels=4, out_channels=4, num_attention_heads=2, attention_head_dim=8, num_layers=1,
        num_cross_attention_heads=2, cross_attention_head_dim=8, cross_attention_dim=16, caption_channels=32,
        mlp_ratio=2.0, sample_size=LATENT_SIDE, patch_size=1,
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
    # Sana's own sampler config: DPM-Solver++ on flow sigmas with shift 3 (Sana_1600M_512px_diffusers).
    DPMSolverMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0,
                                algorithm_type="dpmsolver++", solver_order=2).save_pretrained(out / "scheduler")


def official_model(base: Path):
    from models.metaquery import MetaQuery, MetaQueryConfig

    sana = str(base / "Sana-tiny")
    config = MetaQueryConfig(
        mllm_id=str(base / "Qwen2.5-VL-tiny"), diffusion_model_id=sana, vae_id=sana, noise_scheduler_id=sana,
        scheduler_id=sana, input_size=LATENT_SIDE, in_channels=4, vae_downsample_f=4, num_metaqueries=NUM_QUERIES,
        connector_num_hidden_layers=2, max_input_text_tokens=6, loss_type="flow", _gradient_checkpointing=False,
        modules_to_freeze=["vae", "model.mllm_backbone"],
        modules_to_unfreeze=["model.mllm_backbone.model.embed_tokens"],
    )
    torch.manual_seed(1)
    return MetaQuery(config).float().eval()


def perturb_trainable(model) -> None:
    """What training changes, moved away from its initial values so that every weight matters (the connector's norm
    gains start at constants; a layer that ignored them would still match at initialisation)."""
    generator = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.requires_grad:
                param.add_(torch.randn(param.shape, generator=generator) * 0.2 * (param.std() if param.numel() > 1
                                                                                   else 1.0).clamp(min=0.05))


def conditions(model) -> dict[str, torch.Tensor]:
    out = {}
    tokenizer, tokenize = model.get_tokenizer(), model.get_tokenize_fn()
    with torch.no_grad():
        for i, prompt in enumerate(PROMPTS):  # each alone: the official batch would left-pad it
            input_ids, attention_mask = tokenize(tokenizer, [prompt])
            hidden, mask = model.model.encode_condition(input_ids=input_ids, attention_mask=attention_mask,
                                                        pixel_values=None, image_sizes=None)
            out[f"condition.{i}"] = hidden.contiguous()
            out[f"condition_mask.{i}"] = mask.contiguous()
    return out


def images(model, scheduler_name: str, guidance: float) -> dict[str, torch.Tensor]:
    from diffusers import FlowMatchEulerDiscreteScheduler

    sana = model.config.scheduler_id
    if scheduler_name == "flow-euler":  # sample_images' FlowMatchEuler branch: sigmas linspace(1, 1/N, N)
        model.scheduler = FlowMatchEulerDiscreteScheduler.from_pretrained(sana, subfolder="scheduler")
    out, seconds = {}, 0.0
    for i, prompt in enumerate(PROMPTS[1:3]):
        generator = torch.Generator().manual_seed(100 + i)
        start = time.perf_counter()
        image = model.sample_images(caption=prompt, guidance_scale=guidance, generator=generator,
                                    num_inference_steps=30)[0]
        seconds += time.perf_counter() - start
        out[f"image.{scheduler_name}.{guidance}.{i}"] = torch.from_numpy(np.array(image))
    return out


def image_conditioned(model) -> dict[str, torch.Tensor]:
    from PIL import Image

    out = {}
    for i, prompt in enumerate(IMAGE_PROMPTS):
        source = Image.fromarray(np.random.default_rng(i).integers(0, 256, (56, 56, 3), dtype=np.uint8))
        out[f"input_image.{i}"] = torch.from_numpy(np.array(source))
        image = model.sample_images(caption=prompt, input_images=[source], guidance_scale=3.0,
                                    image_guidance_scale=1.5, generator=torch.Generator().manual_seed(200 + i),
                                    num_inference_steps=30)[0]
        out[f"edit_image.{i}"] = torch.from_numpy(np.array(image))
    return out


def loss(model) -> dict[str, torch.Tensor]:
    """model.forward on a fixed batch; the noise and timesteps it draws are replayed from the same seed and saved."""
    generator = torch.Generator().manual_seed(3)
    target = torch.rand(2, 3, 4 * LATENT_SIDE, 4 * LATENT_SIDE, generator=generator) * 2 - 1
    input_ids, attention_mask = model.get_tokenize_fn()(model.get_tokenizer(), PROMPTS[1:3])
    latents = model.vae.encode(target).latent * model.vae.config.scaling_factor
    torch.manual_seed(4)
    noise = torch.randn_like(latents)
    u = torch.rand(2)  # compute_density_for_timestep_sampling("uniform") draws exactly this after the noise
    indices = (u * model.noise_scheduler.config.num_train_timesteps).long()
    sigmas = model.noise_scheduler.sigmas[indices]
    torch.manual_seed(4)
    with torch.no_grad():
        value = model.forward(target=target, input_ids=input_ids, attention_mask=attention_mask)["loss"]
    return {"loss.target": target, "loss.noise": noise, "loss.sigmas": sigmas.float(),
            "loss.value": value.reshape(1).float()}


def main(out: Path) -> None:
    import transformers
    import diffusers
    from safetensors.torch import save_file

    base = out / "base"
    build_qwen2_5_vl(base / "Qwen2.5-VL-tiny")
    build_sana(base / "Sana-tiny")
    model = official_model(base)
    model.save_pretrained(out / "run" / "checkpoint-1")
    # An older checkpoint, for the newest-checkpoint rule; its weights are left out to keep the fixture small.
    (out / "run" / "checkpoint-1" / "model.safetensors").unlink()
    perturb_trainable(model)
    model.save_pretrained(out / "run" / "checkpoint-2")

    from pipeline_metaquery import MetaQueryPipeline  # loaded back as eval/sample_*.py and app.py load it
    # float32 throughout: the official MLLMInContext builds Sana in bfloat16 (torch_dtype=torch.bfloat16), and the
    # eval scripts cast the whole pipeline to bfloat16; the comparison is made at float32.
    model = MetaQueryPipeline.from_pretrained(str(out / "run" / "checkpoint-2"),
                                              _gradient_checkpointing=False).float().eval()
    tensors = {**conditions(model), **loss(model)}
    timing = {}
    for scheduler_name in ("dpm-solver", "flow-euler"):
        for guidance in (7.5, 3.0):
            start = time.perf_counter()
            tensors.update(images(model, scheduler_name, guidance))
            timing[f"{scheduler_name}.{guidance}"] = time.perf_counter() - start
    from diffusers import DPMSolverMultistepScheduler
    model.scheduler = DPMSolverMultistepScheduler.from_pretrained(model.config.scheduler_id, subfolder="scheduler")
    tensors.update(image_conditioned(model))
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(out / "reference.safetensors"))
    (out / "reference.json").write_text(json.dumps({
        "official_commit": "206f6de", "transformers": transformers.__version__, "diffusers": diffusers.__version__,
        "torch": torch.__version__, "prompts": PROMPTS, "image_prompts": IMAGE_PROMPTS,
        "image_seeds": {"text": [100, 101], "edit": [200, 201]}, "steps": 30,
        "seconds_per_image": {k: v / 2 for k, v in timing.items()},
    }, indent=2) + "\n")
    print(f"wrote {out}: {len(tensors)} reference tensors; loss {tensors['loss.value'].item():.6f}")


def load_check(folder: Path, out: Path) -> int:
    """Load `folder` as the authors' eval scripts do (find_newest_checkpoint, MetaQueryPipeline.from_pretrained)
    and sample the first reference image's prompt and seed: 0 when it is identical to OUT's reference image; OUT
    ending in .png: the image is written there instead (to compare with mqeval's from the same weights)."""
    from safetensors.torch import load_file
    from trainer_utils import find_newest_checkpoint
    from pipeline_metaquery import MetaQueryPipeline

    model = MetaQueryPipeline.from_pretrained(find_newest_checkpoint(str(folder)), _gradient_checkpointing=False)
    image = model.float().eval().sample_images(caption=PROMPTS[1], guidance_scale=7.5, num_inference_steps=30,
                                               generator=torch.Generator().manual_seed(100))[0]
    if out.suffix == ".png":
        image.save(out)
        print(f"the official classes loaded {folder}: image written to {out}")
        return 0
    want = load_file(str(out / "reference.safetensors"))["image.dpm-solver.7.5.0"].numpy()
    same = np.array_equal(np.array(image), want)
    print(f"the official classes loaded {folder}: first reference image {'identical' if same else 'DIFFERENT'}")
    return 0 if same else 1


if __name__ == "__main__":
    if sys.argv[1] == "--load-check":  # ... --load-check FOLDER OUT
        sys.exit(load_check(Path(sys.argv[2]), Path(sys.argv[3])))
    main(Path(sys.argv[1]))
