"""Build tiny MetaQuery models with the authors' own classes (facebookresearch/metaquery @ 206f6de) and record what
they compute, for mqeval to load and compare (scripts/check_official_metaquery.py, tests/test_official_checkpoint.py).

    PYTHONPATH=.official/metaquery:.official/metaquery-code python scripts/official_metaquery_reference.py OUT
    ... official_metaquery_reference.py --load-check FOLDER OUT/VARIANT   (the official classes load FOLDER, e.g.
                                                 written by `mqeval convert-checkpoint to-official`)
    ... official_metaquery_reference.py --time-geneval FOLDER PROMPTS_JSON OUT_JSON   (the sample_geneval.py loop,
                                                 timed: scripts/bench_official_sampling.py runs it)

Runs only in the side environment of docs/official-code.md (transformers 4.49.0, diffusers 0.33.1 and
huggingface-hub 0.29.1 in front of the lock's torch): mqeval is not imported. Nothing is downloaded: the base
models are tiny random models built here from small configs and saved as local folders whose names contain what
the official code looks for ("Qwen2.5-VL", "Sana", "stable-diffusion-v1-5"), standing in for the hub ids. The two
official families: Qwen2.5-VL + Sana (flow loss) and LLaVA-OneVision + SD1.5 (diff loss). OUT receives

    base/<four stand-in base models>/
    <variant>/run/checkpoint-1/, checkpoint-2/    MetaQuery.save_pretrained, as the Trainer writes them (checkpoint-1
                                                  without weights: it is there for the newest-checkpoint rule)
    <variant>/reference.safetensors, .json        conditions, images, loss the official code computed from the
                                                  newest checkpoint, and its seconds per image
"""
from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

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
    "{% if part['type'] == 'image' %}IMAGE_SLOT"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>",
            "<|video_pad|>", "<image>", "<video>"]
NUM_QUERIES = 8
STEPS = 30


def tiny_tokenizer(image_slot: str):
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
    fast.chat_template = CHAT_TEMPLATE.replace("IMAGE_SLOT", image_slot)
    return fast


def text_config(tokenizer) -> dict:
    pad = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    return dict(vocab_size=len(tokenizer) + 5,  # embedding rows beyond the tokenizer, as the real models have
                hidden_size=128, intermediate_size=128, num_hidden_layers=1, num_attention_heads=4,
                num_key_value_heads=2, max_position_embeddings=4096, rope_theta=10000.0, tie_word_embeddings=False,
                pad_token_id=pad, eos_token_id=pad, bos_token_id=pad)


def build_qwen2_5_vl(out: Path) -> None:
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLProcessor
    from transformers import Qwen2VLImageProcessor

    tokenizer = tiny_tokenizer("<|vision_start|><|image_pad|><|vision_end|>")
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIALS}
    config = Qwen2_5_VLConfig(
        **text_config(tokenizer), rope_scaling={"type": "mrope", "mrope_section": [4, 6, 6]},
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
                        chat_template=tokenizer.chat_template).save_pretrained(out)


def build_llava_onevision(out: Path) -> None:
    from transformers import LlavaOnevisionConfig, LlavaOnevisionForConditionalGeneration
    from transformers import LlavaOnevisionImageProcessor, LlavaOnevisionProcessor, LlavaOnevisionVideoProcessor

    tokenizer = tiny_tokenizer("<image>\n")
    side = 384  # the size the official code resizes and crops input images to
    config = LlavaOnevisionConfig(
        text_config={"model_type": "qwen2", **text_config(tokenizer)},
        vision_config=dict(model_type="siglip_vision_model", hidden_size=32, intermediate_size=64,
                           num_hidden_layers=1, num_attention_heads=2, image_size=side, patch_size=48),
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        video_token_index=tokenizer.convert_tokens_to_ids("<video>"),
        image_grid_pinpoints=[[side, side]], vision_feature_layer=-1, vision_feature_select_strategy="full",
        tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    LlavaOnevisionForConditionalGeneration(config).save_pretrained(out)
    image_processor = LlavaOnevisionImageProcessor(size={"height": side, "width": side},
                                                   crop_size={"height": side, "width": side},
                                                   image_grid_pinpoints=[[side, side]])
    LlavaOnevisionProcessor(image_processor=image_processor, tokenizer=tokenizer,
                            video_processor=LlavaOnevisionVideoProcessor(), chat_template=tokenizer.chat_template,
                            num_image_tokens=(side // 48) ** 2,
                            vision_feature_select_strategy="full").save_pretrained(out)


def build_sana(out: Path) -> None:
    from diffusers import AutoencoderDC, DPMSolverMultistepScheduler, SanaTransformer2DModel

    torch.manual_seed(0)
    SanaTransformer2DModel(
        in_channels=4, out_channels=4, num_attention_heads=2, attention_head_dim=8, num_layers=1,
        num_cross_attention_heads=2, cross_attention_head_dim=8, cross_attention_dim=16, caption_channels=32,
        mlp_ratio=2.0, sample_size=8, patch_size=1,
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


def build_sd15(out: Path) -> None:
    from diffusers import AutoencoderKL, PNDMScheduler, UNet2DConditionModel

    torch.manual_seed(0)
    UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(16, 32),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32, attention_head_dim=8, norm_num_groups=8,
    ).save_pretrained(out / "unet")
    AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 8, 8), layers_per_block=1,
        down_block_types=("DownEncoderBlock2D",) * 3, up_block_types=("UpDecoderBlock2D",) * 3, norm_num_groups=4,
        sample_size=32, scaling_factor=0.18215,
    ).save_pretrained(out / "vae")
    # SD1.5's own scheduler config (a PNDM one; the official code builds DDPM and DPM-Solver from it).
    PNDMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000,
                  skip_prk_steps=True, steps_offset=1, set_alpha_to_one=False).save_pretrained(out / "scheduler")


@dataclass(frozen=True)
class Variant:
    name: str
    mllm: str  # folder under base/
    decoder: str
    loss_type: str
    unfreeze: str  # the embedding the official configs unfreeze
    vae_downsample_f: int
    resolution: int


VARIANTS = (
    Variant("qwen-sana", "Qwen2.5-VL-tiny", "Sana-tiny", "flow", "model.mllm_backbone.model.embed_tokens", 4, 32),
    Variant("llava-sd15", "llava-onevision-tiny", "stable-diffusion-v1-5-tiny", "diff",
            "model.mllm_backbone.language_model.model.embed_tokens", 4, 32),
)
BUILDERS: dict[str, Callable[[Path], None]] = {
    "Qwen2.5-VL-tiny": build_qwen2_5_vl, "llava-onevision-tiny": build_llava_onevision,
    "Sana-tiny": build_sana, "stable-diffusion-v1-5-tiny": build_sd15,
}


def official_model(base: Path, variant: Variant):
    from models.metaquery import MetaQuery, MetaQueryConfig

    decoder = str(base / variant.decoder)
    config = MetaQueryConfig(
        mllm_id=str(base / variant.mllm), diffusion_model_id=decoder, vae_id=decoder, noise_scheduler_id=decoder,
        scheduler_id=decoder, input_size=variant.resolution // variant.vae_downsample_f, in_channels=4,
        vae_downsample_f=variant.vae_downsample_f, num_metaqueries=NUM_QUERIES, connector_num_hidden_layers=1,
        max_input_text_tokens=6, loss_type=variant.loss_type, _gradient_checkpointing=False,
        modules_to_freeze=["vae", "model.mllm_backbone"], modules_to_unfreeze=[variant.unfreeze],
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


def sample(model, prompt: str, seed: int, guidance: float, **kwargs):
    return model.sample_images(caption=prompt, guidance_scale=guidance, generator=torch.Generator().manual_seed(seed),
                               num_inference_steps=STEPS, **kwargs)[0]


def images(model, variant: Variant, timing: dict) -> dict[str, torch.Tensor]:
    from diffusers import DPMSolverMultistepScheduler, FlowMatchEulerDiscreteScheduler
    from PIL import Image

    out = {}
    schedulers = {"dpm-solver": DPMSolverMultistepScheduler}
    if variant.loss_type == "flow":  # sample_images' FlowMatchEuler branch: sigmas linspace(1, 1/N, N)
        schedulers["flow-euler"] = FlowMatchEulerDiscreteScheduler
    for name, cls in schedulers.items():
        model.scheduler = cls.from_pretrained(model.config.scheduler_id, subfolder="scheduler")
        for guidance in (7.5, 3.0):
            start = time.perf_counter()
            for i, prompt in enumerate(PROMPTS[1:3]):
                out[f"image.{name}.{guidance}.{i}"] = torch.from_numpy(np.array(sample(model, prompt, 100 + i,
                                                                                       guidance)))
            timing[f"{name}.{guidance}"] = (time.perf_counter() - start) / 2
    model.scheduler = DPMSolverMultistepScheduler.from_pretrained(model.config.scheduler_id, subfolder="scheduler")
    for i, prompt in enumerate(IMAGE_PROMPTS):
        source = Image.fromarray(np.random.default_rng(i).integers(0, 256, (56, 40 + 16 * i, 3), dtype=np.uint8))
        out[f"input_image.{i}"] = torch.from_numpy(np.array(source))
        image = sample(model, prompt, 200 + i, 3.0, input_images=[source], image_guidance_scale=1.5)
        out[f"edit_image.{i}"] = torch.from_numpy(np.array(image))
    return out


def loss(model, variant: Variant) -> dict[str, torch.Tensor]:
    """model.forward on a fixed batch; the draws it makes (VAE posterior, noise, timesteps) are replayed from the
    same seed, in its order, and saved with the loss."""
    generator = torch.Generator().manual_seed(3)
    side = variant.resolution
    target = torch.rand(2, 3, side, side, generator=generator) * 2 - 1
    input_ids, attention_mask = model.get_tokenize_fn()(model.get_tokenizer(), PROMPTS[1:3])
    torch.manual_seed(4)
    if variant.loss_type == "flow":
        latents = model.vae.encode(target).latent * model.vae.config.scaling_factor
        noise = torch.randn_like(latents)
        u = torch.rand(2)  # compute_density_for_timestep_sampling("uniform") draws exactly this after the noise
        time_ = model.noise_scheduler.sigmas[(u * model.noise_scheduler.config.num_train_timesteps).long()].float()
    else:
        latents = model.vae.encode(target).latent_dist.sample() * model.vae.config.scaling_factor
        noise = torch.randn_like(latents)
        time_ = torch.randint(0, model.noise_scheduler.config.num_train_timesteps, (2,))
    torch.manual_seed(4)
    with torch.no_grad():
        value = model.forward(target=target, input_ids=input_ids, attention_mask=attention_mask)["loss"]
    return {"loss.latents": latents.contiguous(), "loss.noise": noise, "loss.time": time_,
            "loss.value": value.reshape(1).float()}


def make_variant(out: Path, base: Path, variant: Variant) -> None:
    import diffusers
    import transformers
    from diffusers import DPMSolverMultistepScheduler
    from safetensors.torch import save_file

    from pipeline_metaquery import MetaQueryPipeline  # loaded back as eval/sample_*.py and app.py load it

    folder = out / variant.name
    model = official_model(base, variant)
    model.save_pretrained(folder / "run" / "checkpoint-1")
    (folder / "run" / "checkpoint-1" / "model.safetensors").unlink()  # kept small: only the rule needs it
    perturb_trainable(model)
    model.save_pretrained(folder / "run" / "checkpoint-2")
    # float32 throughout: the official MLLMInContext builds Sana in bfloat16 (torch_dtype=torch.bfloat16), and the
    # eval scripts cast the whole pipeline to bfloat16; the comparison is made at float32.
    model = MetaQueryPipeline.from_pretrained(str(folder / "run" / "checkpoint-2"),
                                              _gradient_checkpointing=False).float().eval()
    model.scheduler = DPMSolverMultistepScheduler.from_pretrained(model.config.scheduler_id, subfolder="scheduler")
    timing: dict[str, float] = {}
    tensors = {**conditions(model), **loss(model, variant), **images(model, variant, timing)}
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(folder / "reference.safetensors"))
    (folder / "reference.json").write_text(json.dumps({
        "official_commit": "206f6de", "transformers": transformers.__version__, "diffusers": diffusers.__version__,
        "torch": torch.__version__, "variant": variant.name, "loss_type": variant.loss_type,
        "resolution": variant.resolution, "prompts": PROMPTS, "image_prompts": IMAGE_PROMPTS,
        "image_seeds": {"text": [100, 101], "edit": [200, 201]}, "steps": STEPS,
        "seconds_per_image": timing,
    }, indent=2) + "\n")
    print(f"wrote {folder}: {len(tensors)} reference tensors; {variant.loss_type} loss "
          f"{tensors['loss.value'].item():.6f}")


def main(out: Path, names: list[str]) -> None:
    base = out / "base"
    chosen = [v for v in VARIANTS if not names or v.name in names]
    for folder in sorted({f for v in chosen for f in (v.mllm, v.decoder)}):
        BUILDERS[folder](base / folder)
    for variant in chosen:
        make_variant(out, base, variant)


def load_check(folder: Path, out: Path) -> int:
    """Load `folder` as the authors' eval scripts do (find_newest_checkpoint, MetaQueryPipeline.from_pretrained)
    and sample the first reference image's prompt and seed: 0 when it is identical to the reference image in OUT
    (a variant folder); OUT ending in .png: the image is written there instead (to compare with mqeval's)."""
    from safetensors.torch import load_file
    from trainer_utils import find_newest_checkpoint
    from pipeline_metaquery import MetaQueryPipeline

    model = MetaQueryPipeline.from_pretrained(find_newest_checkpoint(str(folder)), _gradient_checkpointing=False)
    image = sample(model.float().eval(), PROMPTS[1], 100, 7.5)
    if out.suffix == ".png":
        image.save(out)
        print(f"the official classes loaded {folder}: image written to {out}")
        return 0
    want = load_file(str(out / "reference.safetensors"))["image.dpm-solver.7.5.0"].numpy()
    same = np.array_equal(np.array(image), want)
    print(f"the official classes loaded {folder}: first reference image {'identical' if same else 'DIFFERENT'}")
    return 0 if same else 1


def add_timer(owner, name: str, key: str, spent: dict[str, float]) -> None:
    """Wrap `owner.name` so that the seconds of every call add to spent[key] (scripts/bench_official_sampling.py
    times mqeval's side with it too)."""
    inner = getattr(owner, name)

    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            spent[key] += time.perf_counter() - start
    setattr(owner, name, wrapper)


def time_geneval_loop(folder: Path, prompts_file: Path, out_file: Path) -> None:
    """The sampling loop of the official eval/sample_geneval.py on `folder`: per prompt, seed_everything(42), the
    pipeline with 4 images per prompt (30 steps, guidance 7.5), each image saved as PNG. Writes its wall time and
    where it went (condition encoding, denoiser calls, VAE decoding, PNG writing) to `out_file` as JSON."""
    import tempfile

    from trainer_utils import find_newest_checkpoint, seed_everything
    from pipeline_metaquery import MetaQueryPipeline

    pipeline = MetaQueryPipeline.from_pretrained(find_newest_checkpoint(str(folder)), _gradient_checkpointing=False)
    pipeline = pipeline.float().eval()
    spent = {"condition": 0.0, "denoiser": 0.0, "vae_decode": 0.0, "png": 0.0}

    add_timer(pipeline.model, "encode_condition", "condition", spent)
    add_timer(pipeline.model, "forward", "denoiser", spent)  # MLLMInContext.forward: the Sana / UNet call
    add_timer(pipeline, "decode_latents", "vae_decode", spent)
    prompts = json.loads(prompts_file.read_text())
    images = 0
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        for i, prompt in enumerate(prompts):
            seed_everything(42)
            samples = pipeline(caption=prompt, image=None, num_inference_steps=30, guidance_scale=7.5,
                               num_images_per_prompt=4, enable_progress_bar=False).images
            saving = time.perf_counter()
            for j, image in enumerate(samples):
                image.save(Path(tmp) / f"{i:05}-{j:05}.png")
            spent["png"] += time.perf_counter() - saving
            images += len(samples)
        wall = time.perf_counter() - start
    out_file.write_text(json.dumps({"images": images, "seconds": wall, "spent": spent}) + "\n")


if __name__ == "__main__":
    if sys.argv[1] == "--load-check":  # ... --load-check FOLDER OUT
        sys.exit(load_check(Path(sys.argv[2]), Path(sys.argv[3])))
    if sys.argv[1] == "--time-geneval":  # ... --time-geneval FOLDER PROMPTS_JSON OUT_JSON
        sys.exit(time_geneval_loop(Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4])))
    main(Path(sys.argv[1]), sys.argv[2:])
