"""Show-o (showlab/show-o-512x512, the paper rows' "Show-o-512") through its authors' code (modules `models` and
`training.prompting_utils` of a showlab/Show-o checkout): the factory of model_zoo/show-o.yaml.

As inference_t2i.py (mode t2i) with configs/showo_demo_512x512.yaml does: Phi-1.5's tokenizer padded on the left;
UniversalPrompting's 't2i_gen' sequence of the prompt and 1024 masked image tokens; with guidance > 0 the
unconditional sequence is the empty prompt's, and the attention mask covers [conditional rows; unconditional rows];
Showo.t2i_generate samples (cosine mask schedule, temperature 1, its guidance (1 + w) * cond - w * uncond); the
tokens, clamped to the codebook, are decoded by MAGVIT-v2 to 512 px and truncated to uint8. t2i_generate takes one
generator for its whole batch, so each image runs alone with a generator seeded from its own (rows of a batch would
otherwise share draws): image i depends only on its prompt and generators[i].

The architecture numbers below are those of configs/showo_demo_512x512.yaml at the commit in SHOWO_CODE.
"""
from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Mapping, Sequence

from mqeval.contract.text_to_image import Capabilities
from mqeval.model.official import OfficialCode, device_generator, to_pil_images

SHOWO_CODE = OfficialCode(
    name="Show-o",
    repository="showlab/Show-o",
    commit="45a5a2de01d1ebd10cd5864d29310a76476cdf23",
    install="it is no pip package: git clone {url} && git -C Show-o checkout {commit}, put the clone on PYTHONPATH, "
            'and in an environment of its own pip install "transformers==4.41.1" "tokenizers==0.19.1" '
            '"huggingface-hub==0.23.2" "diffusers==0.30.1" "omegaconf==2.3.0" "jaxtyping==0.2.28" "typeguard==2.13.3" '
            "(pins of its requirements.txt)",
    needs="it does not import with mqeval's diffusers 0.42 / transformers 5; mqeval ran it with these versions, on "
          "tiny random weights only (docs/official-code.md)",
)
MODULES = {"models": ("Showo", "MAGVITv2", "get_mask_chedule"),
           "training.prompting_utils": ("UniversalPrompting", "create_attention_mask_predict_next")}
# The task and special tokens inference_t2i.py registers with UniversalPrompting.
SPECIAL_TOKENS = ("<|soi|>", "<|eoi|>", "<|sov|>", "<|eov|>", "<|t2i|>", "<|mmu|>", "<|t2v|>", "<|v2v|>", "<|lvg|>")
PATCH = 16  # MAGVIT-v2 pixels per token side


class ShowoOfficial:
    def __init__(self, model: Any, vq_model: Any, prompting: Any, attention_mask: Callable, schedule: Callable,
                 config: SimpleNamespace, *, temperature: float = 1.0, device: str = "cpu"):
        self.model, self.vq_model, self.prompting = model, vq_model, prompting
        self.attention_mask, self.schedule, self.config = attention_mask, schedule, config
        self.temperature, self.device = temperature, device
        side = math.isqrt(config.model.showo.num_vq_tokens) * PATCH
        # The unconditional branch is the empty prompt: no negative prompt.
        self.capabilities = Capabilities(negative_prompt=False, min_resolution=side, max_resolution=side)

    def __call__(self, prompts: Sequence[str], *, negative_prompts: Any, generators: Sequence[Any],
                 guidance_scale: float, num_inference_steps: int, resolution: int) -> list:
        import torch

        with torch.inference_mode():
            return [self._one(prompt, generator, guidance_scale, num_inference_steps)
                    for prompt, generator in zip(prompts, generators)]

    def _one(self, prompt: str, generator: Any, guidance_scale: float, steps: int):
        import torch

        showo = self.config.model.showo
        masked = torch.full((1, showo.num_vq_tokens), self.model.config.mask_token_id, dtype=torch.long,
                            device=self.device)
        input_ids, _ = self.prompting(([prompt], masked), "t2i_gen")
        uncond_ids = None
        rows = input_ids
        if guidance_scale > 0:
            uncond_ids, _ = self.prompting(([""], masked), "t2i_gen")
            rows = torch.cat([input_ids, uncond_ids], dim=0)
        ids = self.prompting.sptids_dict
        mask = self.attention_mask(rows, pad_id=int(ids["<|pad|>"]), soi_id=int(ids["<|soi|>"]),
                                   eoi_id=int(ids["<|eoi|>"]), rm_pad_in_image=True)
        tokens = self.model.t2i_generate(
            input_ids=input_ids, uncond_input_ids=uncond_ids, attention_mask=mask, guidance_scale=guidance_scale,
            temperature=self.temperature, timesteps=steps, noise_schedule=self.schedule, noise_type="mask",
            seq_len=showo.num_vq_tokens, uni_prompting=self.prompting, config=self.config,
            generator=device_generator(generator, self.device))
        tokens = torch.clamp(tokens, min=0, max=showo.codebook_size - 1)
        return to_pil_images(self.vq_model.decode_code(tokens), rounding=False)[0]


def showo_config(num_vq_tokens: int, max_seq_length: int, llm_vocab_size: int, num_new_special_tokens: int,
                 codebook_size: int) -> SimpleNamespace:
    """The parts of the authors' OmegaConf config that t2i_generate reads (by attribute)."""
    showo = SimpleNamespace(num_vq_tokens=num_vq_tokens, llm_vocab_size=llm_vocab_size,
                            num_new_special_tokens=num_new_special_tokens, codebook_size=codebook_size)
    return SimpleNamespace(model=SimpleNamespace(showo=showo),
                           dataset=SimpleNamespace(preprocessing=SimpleNamespace(max_seq_length=max_seq_length)))


def build(*, weights: Mapping[str, Path], device: str = "cpu", temperature: float = 1.0,
          mask_schedule: str = "cosine", num_vq_tokens: int = 1024, max_seq_length: int = 128,
          llm_vocab_size: int = 50295, num_new_special_tokens: int = 10, codebook_size: int = 8192) -> ShowoOfficial:
    """The card's factory: weights={"model": showlab/show-o-512x512, "vq": showlab/magvitv2, "tokenizer":
    microsoft/phi-1_5 (its tokenizer; Showo itself reads Phi-1.5's config by hub id, from the same cache)}.
    Float32, as inference_t2i.py runs it."""
    from transformers import AutoTokenizer

    models, prompting_utils = (SHOWO_CODE.load(module, names) for module, names in MODULES.items())
    tokenizer = AutoTokenizer.from_pretrained(str(weights["tokenizer"]), padding_side="left")
    prompting = prompting_utils.UniversalPrompting(tokenizer, max_text_len=max_seq_length,
                                                   special_tokens=SPECIAL_TOKENS, ignore_id=-100,
                                                   cond_dropout_prob=0.1)
    vq_model = models.MAGVITv2.from_pretrained(str(weights["vq"])).to(device)
    vq_model.requires_grad_(False)
    model = models.Showo.from_pretrained(str(weights["model"])).to(device)
    config = showo_config(num_vq_tokens, max_seq_length, llm_vocab_size, num_new_special_tokens, codebook_size)
    return ShowoOfficial(model, vq_model.eval(), prompting, prompting_utils.create_attention_mask_predict_next,
                         models.get_mask_chedule(mask_schedule), config, temperature=temperature, device=device)


def check() -> None:
    """The card's `check`: Show-o's code imports here (before any weights are fetched)."""
    for module, names in MODULES.items():
        SHOWO_CODE.load(module, names)
