"""JanusFlow (deepseek-ai/JanusFlow-1.3B + the SDXL VAE) through DeepSeek's own code, package
`janus.janusflow.models`: the factory of model_zoo/janusflow-1.3b.yaml.

As in the text-to-image example of deepseek-ai/Janus's README (JanusFlow section): the prompt's conversation +
`<｜begin▁of▁generation｜>`, whose last token is dropped (the time embedding takes its place); the first half of the
rows is conditional, the second half the prompt replaced by pad tokens after the first and masked out of attention;
a rectified-flow ODE from noise of shape (4, 48, 48) with Euler steps of 1/steps, the velocity
cfg * v_cond - (cfg - 1) * v_uncond; the latent is decoded by the SDXL VAE and mapped to uint8 as torchvision's
save_image does (rounded). The example re-runs the language model on the whole sequence at every step (its cache of
the prompt ends up empty), which this adapter does without a cache. mqeval's addition: image i's noise is drawn from
generators[i] alone (in the model dtype, on the CPU, as the example draws it).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from mqeval.model.official import to_pil_images
from mqeval.model.official.deepseek import CLASSES, DEEPSEEK_CODE, DeepSeekTextToImage, load_deepseek

LATENT_CHANNELS = 4  # the SDXL VAE's latent channels
VAE_SCALE = 8  # pixels per latent cell


class JanusFlowOfficial(DeepSeekTextToImage):
    tag = "image_gen_tag"

    def __init__(self, model: Any, processor: Any, vae: Any, *, image_size: int = 384, device: str = "cpu"):
        super().__init__(model, processor, image_size, device)
        self.vae = vae
        self.side = image_size // VAE_SCALE
        self.grid = self.side // 2  # the generation encoder halves the latent: 24 x 24 tokens for 48 x 48

    def generate_group(self, prompt_tokens, generators: list, guidance_scale: float, steps: int) -> list:
        import torch

        model, count = self.model, len(generators)
        dtype = model.vision_gen_enc_aligner.weight.dtype
        rows = torch.cat([prompt_tokens, prompt_tokens])
        rows[count:, 1:] = self.processor.pad_id
        prefix = model.language_model.get_input_embeddings()(rows)[:, :-1]
        mask = torch.ones((2 * count, prefix.shape[1] + 1 + self.grid * self.grid), device=self.device)
        mask[count:, 1:prefix.shape[1]] = 0
        mask = mask.int()
        z = torch.stack([torch.randn((LATENT_CHANNELS, self.side, self.side), generator=generator, dtype=dtype)
                         for generator in generators]).to(self.device)
        dt = torch.full_like(z, 1.0 / steps)
        for step in range(steps):
            both = torch.cat([z, z])
            t = torch.full((2 * count,), step / steps * 1000.0, device=self.device).to(dt)
            z_emb, t_emb, skips = model.vision_gen_enc_model(both, t)[:3]
            z_emb = model.vision_gen_enc_aligner(z_emb.flatten(2).transpose(1, 2))
            sequence = torch.cat([prefix, t_emb.unsqueeze(1), z_emb], dim=1)
            hidden = model.language_model.model(inputs_embeds=sequence, attention_mask=mask,
                                                use_cache=False).last_hidden_state
            hidden = model.vision_gen_dec_aligner(model.vision_gen_dec_aligner_norm(hidden[:, -self.grid ** 2:]))
            hidden = hidden.reshape(2 * count, self.grid, self.grid, -1).permute(0, 3, 1, 2)
            v_cond, v_uncond = model.vision_gen_dec_model(hidden, skips, t_emb).chunk(2)
            z = z + dt * (guidance_scale * v_cond - (guidance_scale - 1.0) * v_uncond)
        pixels = self.vae.decode(z / self.vae.config.scaling_factor).sample
        return to_pil_images(pixels, rounding=True)


def build(*, weights: Mapping[str, Path], device: str = "cpu", dtype: str = "bfloat16",
          image_size: int = 384) -> JanusFlowOfficial:
    """The card's factory: weights={"model": folder of deepseek-ai/JanusFlow-1.3B, "vae": folder of
    stabilityai/sdxl-vae}. The VAE runs in bfloat16 too (the authors: it does not work in float16)."""
    import torch
    from diffusers import AutoencoderKL

    processor, model = load_deepseek("janus.janusflow.models", weights["model"], dtype, device)
    vae = AutoencoderKL.from_pretrained(str(weights["vae"])).to(getattr(torch, dtype)).to(device).eval()
    return JanusFlowOfficial(model, processor, vae, image_size=image_size, device=device)


def check() -> None:
    """The card's `check`: DeepSeek's code imports here (before any weights are fetched)."""
    DEEPSEEK_CODE.load("janus.janusflow.models", CLASSES)
