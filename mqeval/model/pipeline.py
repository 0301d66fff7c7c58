"""Prompts (+ optional input images) -> images with a MetaQuery model.

Noise for image i comes from generators[i] alone, and every other step is per-row, so an image does not depend on
which other prompts share its batch (up to float rounding of batched matrix products).
Guidance: with input images, the InstructPix2Pix-style three-way rule
    out = uncond + s_img * (image_only - uncond) + s_txt * (full - image_only)
where image_only = (negative prompt, real images) and uncond = (negative prompt, black images); without input images
the usual out = uncond + s_txt * (full - uncond).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

import numpy as np
import torch

from mqeval.model.condition_memo import ConditionMemo
from mqeval.model.metaquery import Condition, MetaQuery, black_like


@dataclass
class PipelineOutput:
    images: list[Any]  # PIL.Image.Image, one per prompt
    settings: dict[str, Any] = field(default_factory=dict)  # resolved scheduler, steps, guidance, resolution


def pad_and_stack(conds: Sequence[Condition]) -> Condition:
    """Concatenate conditions along the batch, right-padding token axes with masked zeros where lengths differ."""
    length = max(c.hidden.shape[1] for c in conds)
    hiddens, masks = [], []
    for c in conds:
        extra = length - c.hidden.shape[1]
        hiddens.append(torch.nn.functional.pad(c.hidden, (0, 0, 0, extra)))
        masks.append(torch.nn.functional.pad(c.mask, (0, extra), value=False))
    return Condition(hidden=torch.cat(hiddens), mask=torch.cat(masks))


def to_pil(images: torch.Tensor) -> list[Any]:
    from PIL import Image

    arrays = ((images.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    return [Image.fromarray(np.ascontiguousarray(a)) for a in arrays]


class MetaQueryPipeline:
    """Backbone states are memoised per distinct (prompt, input images) for the pipeline's life (condition_memo)."""

    def __init__(self, model: MetaQuery):
        self.model = model
        self.conditions = ConditionMemo(model)

    def prepare(self, prompts: Sequence[str], negative_prompts: Optional[Sequence[str]] = None,
                input_images: Optional[list[list[Any]]] = None, **_: Any) -> None:
        """Tokenise a coming call's texts ahead (thread-safe; optional: `__call__` does whatever is left)."""
        negatives = list(negative_prompts) if negative_prompts is not None else [""] * len(prompts)
        self.conditions.prepare(list(prompts) + negatives, None if input_images is None else input_images * 2)

    @torch.no_grad()
    def __call__(
        self,
        prompts: Sequence[str],
        negative_prompts: Optional[Sequence[str]] = None,
        input_images: Optional[list[list[Any]]] = None,
        generators: Optional[Sequence[torch.Generator]] = None,
        guidance_scale: float = 7.5,
        image_guidance_scale: float = 1.0,
        num_inference_steps: int = 30,
        scheduler: str = "default",
        resolution: Optional[int] = None,
        batch_size: Optional[int] = None,
    ) -> PipelineOutput:
        """`batch_size` splits the work into chunks; since images do not depend on their batch, the output is the
        same as one call with everything."""
        model, decoder = self.model, self.model.decoder
        model.eval()

        # 1. Check and normalise the inputs.
        prompts = list(prompts)
        b = len(prompts)
        negatives = list(negative_prompts) if negative_prompts is not None else [""] * b
        if len(negatives) != b:
            raise ValueError(f"{b} prompts but {len(negatives)} negative prompts")
        if input_images is not None and len(input_images) != b:
            raise ValueError(f"{b} prompts but {len(input_images)} input image lists")
        if generators is None:
            generators = [torch.Generator().manual_seed(int(torch.randint(0, 2**62, ()))) for _ in range(b)]
        if len(generators) != b:
            raise ValueError(f"{b} prompts but {len(generators)} generators: pass one generator per image")
        if batch_size is not None and b > batch_size:
            chunks = [
                self(prompts[i:i + batch_size], negatives[i:i + batch_size],
                     None if input_images is None else input_images[i:i + batch_size], generators[i:i + batch_size],
                     guidance_scale, image_guidance_scale, num_inference_steps, scheduler, resolution)
                for i in range(0, b, batch_size)
            ]
            return PipelineOutput(images=[im for c in chunks for im in c.images], settings=chunks[0].settings)
        resolution = resolution or decoder.default_resolution
        use_cfg = guidance_scale > 1.0
        use_image_cfg = use_cfg and input_images is not None and image_guidance_scale != 1.0

        # 2. Encode the conditions: full, then (negative prompt [+ real images]), then (negative + black images);
        # each distinct one once (memoised).
        memo = self.conditions
        branches = [model.condition_from_states(memo.states(prompts, input_images))]
        if use_cfg:
            branches.append(model.condition_from_states(memo.states(negatives, input_images)))
        if use_image_cfg:
            blacks = [[black_like(im) for im in imgs] for imgs in input_images]
            branches.append(model.condition_from_states(memo.states(negatives, blacks)))
        cond = pad_and_stack(branches)
        cond = Condition(hidden=cond.hidden.to(decoder.dtype), mask=cond.mask)

        # 3. Prepare the sampler.
        sched = decoder.make_scheduler(scheduler)
        decoder.set_timesteps(sched, num_inference_steps, decoder.device)

        # 4. Initial noise: image i from generators[i] only.
        shape = decoder.latent_shape(resolution)
        noise = [torch.randn(shape, generator=g, device=g.device, dtype=torch.float32) for g in generators]
        latents = torch.stack(noise).to(decoder.device) * getattr(sched, "init_noise_sigma", 1.0)

        # 5. Denoise with classifier-free guidance.
        n_branches = len(branches)
        for t in sched.timesteps:
            scaled = sched.scale_model_input(latents, t) if hasattr(sched, "scale_model_input") else latents
            model_in = scaled.repeat(n_branches, *[1] * (latents.dim() - 1))
            t_batch = t.expand(model_in.shape[0]).to(decoder.device)
            pred = decoder.denoise(model_in.to(decoder.dtype), t_batch, cond.hidden, cond.mask).float()
            parts = pred.chunk(n_branches)
            if n_branches == 1:
                guided = parts[0]
            elif n_branches == 2:
                full, uncond = parts
                guided = uncond + guidance_scale * (full - uncond)
            else:
                full, image_only, uncond = parts
                guided = (uncond + image_guidance_scale * (image_only - uncond)
                          + guidance_scale * (full - image_only))
            latents = sched.step(guided, t, latents).prev_sample

        # 6. Decode to images.
        images = decoder.decode(latents.to(decoder.dtype))
        settings = {
            "scheduler": decoder.scheduler_name(scheduler), "num_inference_steps": num_inference_steps,
            "guidance_scale": guidance_scale, "image_guidance_scale": image_guidance_scale, "resolution": resolution,
        }
        return PipelineOutput(images=to_pil(images), settings=settings)
