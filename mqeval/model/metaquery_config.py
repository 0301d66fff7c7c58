"""Typed configuration of a MetaQuery model: backbone MLLM -> queries -> connector -> diffusion decoder."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional

BackboneFamily = Literal["qwen2_5_vl", "llava_onevision", "causal_lm"]
DecoderFamily = Literal["sana", "sd15", "pixel"]


@dataclass(frozen=True)
class BackboneConfig:
    """The multimodal LLM. `model_id` is a hub id or a local folder; `gguf_file` loads a GGUF inside it."""

    family: BackboneFamily
    model_id: str
    revision: Optional[str] = None
    gguf_file: Optional[str] = None
    tuning: Literal["frozen", "full", "lora"] = "frozen"
    lora_rank: int = 16
    lora_alpha: int = 32
    lora_target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
    dtype: Literal["float32", "bfloat16", "float16"] = "bfloat16"
    gradient_checkpointing: bool = False


@dataclass(frozen=True)
class ConditionConfig:
    """`metaquery`: N learnable queries after the prompt. `last-layer`: last hidden states of the prompt tokens."""

    mode: Literal["metaquery", "last-layer"] = "metaquery"
    num_queries: int = 256
    # Prompt tokens beyond this are cut (the official code uses a fixed max length for the caption).
    max_prompt_tokens: int = 256
    # System message placed before the prompt in the chat template (the official code's default); None: no system turn.
    system_prompt: Optional[str] = (
        "You will be given an image or its caption. "
        "Please describe the content of the image in detail in your own words."
    )
    # The <begin>/<end> around the queries: two learned vectors (the official code's new <begin_of_img> /
    # <end_of_img> vocabulary rows), or the tokenizer's own begin/end-of-image pair when it has one (mqeval's first
    # layout; learned where the tokenizer has no pair).
    markers: Literal["learned", "tokenizer-pair"] = "learned"


EncodingMode = Literal["full-sequence", "frozen-prefix"]


@dataclass(frozen=True)
class ConditionEncoding:
    """How the condition encoder computes the backbone states (mqeval.model.condition_encoding): a way to compute,
    not part of the model, so it is not a field of MetaQueryConfig and is never saved with a checkpoint.
    full-sequence: one forward over prompt + queries. frozen-prefix: the frozen prompt without autograd, then the
    query positions (a training speed-up, same values and gradients up to float rounding)."""

    mode: EncodingMode = "full-sequence"
    memo_size: int = 0  # frozen-prefix: prompts whose key/values (or states) stay memoised across calls; 0: none

    def __post_init__(self) -> None:
        if self.mode not in ("full-sequence", "frozen-prefix"):
            raise ValueError(f"condition encoding mode {self.mode!r} is not one of 'full-sequence', 'frozen-prefix'")
        if self.memo_size < 0:
            raise ValueError(f"the condition memo size must be 0 (none) or more, got {self.memo_size}")
        if self.memo_size and self.mode != "frozen-prefix":
            raise ValueError(f"a condition memo (size {self.memo_size}) needs the frozen-prefix mode")


@dataclass(frozen=True)
class ConnectorConfig:
    """Enc-Proj: encoder at the MLLM width, then project. Proj-Enc: project, then encode at the decoder width."""

    # proj-enc-proj (OpenUni only): Linear to `width`, encode, Linear to the caption width.
    architecture: Literal["enc-proj", "proj-enc", "proj-enc-proj"] = "enc-proj"
    # "official": the authors' Qwen2Encoder (QK-norm with a gain per head, applied after the rotary embedding; no
    # final norm in Enc-Proj's encoder). "mqeval-v1": mqeval's first connector (one QK-norm gain shared by the
    # heads, before the rotary embedding; a final encoder norm), kept for checkpoints trained with it. "openuni":
    # OpenUni's SigLIP-style encoder between plain Linear projections (mqeval.model.openuni_connector).
    layout: Literal["official", "mqeval-v1", "openuni"] = "official"
    num_layers: int = 24
    num_heads: Optional[int] = None  # None -> encoder width / 64
    mlp_ratio: float = 4.0
    intermediate_size: Optional[int] = None  # the MLP's width; None -> encoder width x mlp_ratio
    width: Optional[int] = None  # the encoder's width where the architecture does not fix it (proj-enc-proj)
    rope_theta: float = 10000.0


@dataclass(frozen=True)
class PixelDecoderConfig:
    """A small pixel-space denoiser with a rectified-flow objective, for offline experiments (no VAE).

    architecture "dit": patch_size, width (token width), depth (blocks). "unet": width is the first level's
    channels, channel_mult the per-level multipliers, depth the residual blocks per level; patch_size is unused.
    """

    image_size: int = 32
    patch_size: int = 4
    width: int = 192
    depth: int = 6
    num_heads: int = 6
    caption_dim: int = 192
    architecture: Literal["dit", "unet"] = "dit"
    channel_mult: tuple[int, ...] = (1, 2, 2)
    # Rectified-flow sigma shift, s -> shift*s / (1 + (shift-1)*s), used both for the training sigmas and the
    # sampling schedule. Above 1 it spends more of both at high noise, where a caption decides colour and layout.
    flow_shift: float = 1.0
    # UNet only: timestep + pooled caption also scale/shift the output norm (as the DiT's final adaLN does), so a
    # caption can move the whole prediction, e.g. its colour at high noise, past the last GroupNorm.
    output_modulation: bool = False


@dataclass(frozen=True)
class DecoderConfig:
    family: DecoderFamily
    model_id: Optional[str] = None  # hub id or local folder of a diffusers pipeline (sana, sd15)
    revision: Optional[str] = None
    train: bool = False  # fine-tune the decoder's denoiser ("train DiT" in the paper's Table 2)
    prediction_type: Literal["epsilon", "v_prediction", "flow"] = "epsilon"
    resolution: int = 512
    dtype: Literal["float32", "bfloat16", "float16"] = "bfloat16"
    pixel: Optional[PixelDecoderConfig] = None


@dataclass(frozen=True)
class MetaQueryConfig:
    backbone: BackboneConfig
    decoder: DecoderConfig
    condition: ConditionConfig = field(default_factory=ConditionConfig)
    connector: ConnectorConfig = field(default_factory=ConnectorConfig)
    # Classifier-free guidance dropout in training: caption -> "" and input images -> black, each with this p.
    caption_dropout: float = 0.1
    image_dropout: float = 0.1


@dataclass(frozen=True)
class GenerationConfig:
    """Sampling settings. Benchmarks override these with their protocol's values."""

    guidance_scale: float = 7.5
    image_guidance_scale: float = 1.0
    num_inference_steps: int = 30
    scheduler: Literal["default", "dpm-solver", "euler", "ddim", "flow-euler"] = "default"
    resolution: Optional[int] = None  # None -> decoder.resolution
    negative_prompt: str = ""

    def __post_init__(self) -> None:
        from mqeval.contract.sampling_limits import check_sampling

        check_sampling(self.guidance_scale, self.image_guidance_scale, self.num_inference_steps, self.resolution)
