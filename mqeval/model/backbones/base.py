"""What every MLLM adapter shares: chat-template prompts, appended queries, tuning mode, last hidden states.

Sequence layout (rows left-padded so every row ends at the same place):

    [pad ...] <system turn> <user turn: images, prompt> <assistant>\n <begin> q_1 ... q_N <end>

The N query slots hold placeholder ids whose embeddings are replaced by the trainable query vectors (an
nn.Parameter owned by the MetaQuery module, never the embedding matrix). <begin>/<end> are the tokenizer's own
begin/end-of-image tokens when the condition asks for them (markers "tokenizer-pair") and it has a pair (Qwen:
<|vision_start|>/<|vision_end|>); otherwise two learned marker vectors (the official code's <begin_of_img> /
<end_of_img> rows). Attention is causal over the whole sequence (the LLM's own mask).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

import torch
from torch import nn

from mqeval.errors import UserError
from mqeval.hub_download import TRANSFORMERS_FILES
from mqeval.model.metaquery_config import BackboneConfig

# Begin/end-of-image token pairs known from common MLLM tokenizers, in order of preference.
MARKER_PAIRS = (
    ("<|vision_start|>", "<|vision_end|>"),
    ("<|image_start|>", "<|image_end|>"),
    ("<start_of_image>", "<end_of_image>"),
    ("<img>", "</img>"),
)

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def backbone_folder(config: BackboneConfig) -> str:
    """The local folder of the backbone's weights (downloaded now when it is a hub id not yet cached): the
    transformers files, or only the named GGUF file and the configs."""
    from mqeval.model.hub import resolve_model_path

    files = (config.gguf_file, "*.json") if config.gguf_file else TRANSFORMERS_FILES
    return resolve_model_path(config.model_id, config.revision, "backbone", allow_patterns=files)


@dataclass
class BackboneOutput:
    hidden: torch.Tensor  # [B, L, D]: the query positions (metaquery) or the prompt tokens (last-layer)
    mask: torch.Tensor  # [B, L] bool, True for real tokens


class Backbone(nn.Module):
    """Subclasses load `self.model` (a transformers model) and `self.tokenizer`, then call `self.setup_tuning()`."""

    family: str = ""
    supports_images: bool = False
    # re.fullmatch pattern (peft) restricting LoRA to the language model; "" means the whole model.
    language_scope: str = ""

    def __init__(self, config: BackboneConfig):
        super().__init__()
        self.config = config
        self.model: nn.Module
        self.tokenizer: Any

    # --- family hooks -------------------------------------------------------------------------------------------
    def render(self, prompt: str, num_images: int) -> str:
        """The chat-templated text of one prompt with `num_images` images before it, ending with the reply prefix."""
        raise NotImplementedError

    def encode_inputs(self, texts: list[str], images: list[list[Any]]) -> dict[str, torch.Tensor]:
        """Tokenize (left padding) and preprocess images: input_ids, attention_mask and family extras."""
        raise NotImplementedError

    def run(self, input_ids, inputs_embeds, attention_mask, extras: dict[str, torch.Tensor]) -> torch.Tensor:
        """Last hidden states [B, L, D] of the language model."""
        raise NotImplementedError

    # --- shared -------------------------------------------------------------------------------------------------
    @property
    def hidden_size(self) -> int:
        return self.model.config.get_text_config().hidden_size

    @property
    def device(self) -> torch.device:
        return self.input_embeddings.weight.device

    @property
    def input_embeddings(self) -> nn.Embedding:
        return self.model.get_input_embeddings()

    @property
    def pad_id(self) -> int:
        return self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0

    def weights_dtype(self, override: Optional[torch.dtype] = None) -> torch.dtype:
        """Fully tuned weights stay float32 (use autocast); frozen and LoRA-wrapped ones use the configured dtype."""
        return torch.float32 if self.config.tuning == "full" else (override or DTYPES[self.config.dtype])

    def marker_ids(self) -> Optional[tuple[int, int]]:
        """The tokenizer's begin/end-of-image ids, when the condition uses them (markers "tokenizer-pair" and the
        tokenizer has a pair); None: learned markers. Looked up once (building the vocabulary dict is not cheap)."""
        if self.markers == "learned":
            return None
        if not hasattr(self, "_marker_ids"):
            vocab = self.tokenizer.get_vocab()
            pairs = [(vocab[b], vocab[e]) for b, e in MARKER_PAIRS if b in vocab and e in vocab]
            self._marker_ids = pairs[0] if pairs else None
        return self._marker_ids

    def setup_tuning(self) -> None:
        """frozen: nothing trains. lora: only LoRA adapters (language model) train. full: everything trains."""
        self.model.requires_grad_(self.config.tuning == "full")
        if self.config.tuning == "lora":
            from peft import LoraConfig, inject_adapter_in_model

            names = "|".join(self.config.lora_target_modules)
            scope = f"{self.language_scope}.*" if self.language_scope else ""
            lora = LoraConfig(
                r=self.config.lora_rank, lora_alpha=self.config.lora_alpha, lora_dropout=0.0,
                target_modules=rf"{scope}.*\.({names})" if scope else rf"(.*\.)?({names})",
            )
            inject_adapter_in_model(lora, self.model)
            for name, param in self.model.named_parameters():
                param.requires_grad_("lora_" in name)
        if self.config.gradient_checkpointing:
            # Also useful when frozen: in metaquery mode gradients still flow through the LLM to the queries.
            self.model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if self.config.tuning == "frozen":
            self.model.eval()

    def truncate(self, prompt: str) -> str:
        limit = self.max_prompt_tokens
        ids = self.tokenizer(prompt, add_special_tokens=False)["input_ids"]
        return prompt if len(ids) <= limit else self.tokenizer.decode(ids[:limit])

    def render_prompt(self, prompt: str, num_images: int, with_queries: bool) -> str:
        """Truncated, chat-templated text; with queries the reply starts with a newline before <begin>."""
        text = self.render(self.truncate(prompt), num_images)
        return text + "\n" if with_queries else text

    def tokenize(self, prompts: list[str], input_images: Optional[list[list[Any]]] = None,
                 with_queries: bool = False) -> dict[str, Any]:
        """The model inputs of `forward` before any tensor reaches the device (CPU work that may run ahead)."""
        images = input_images if input_images is not None else [[] for _ in prompts]
        if len(images) != len(prompts):
            raise ValueError(f"{len(prompts)} prompts but {len(images)} image lists")
        if any(images) and not self.supports_images:
            raise UserError(f"backbone family '{self.family}' takes no input images (text-only model); use an MLLM "
                            "card (qwen2_5_vl, llava_onevision) for editing or reconstruction")
        texts = [self.render_prompt(p, len(imgs), with_queries) for p, imgs in zip(prompts, images)]
        return self.encode_inputs(texts, images)

    max_prompt_tokens: int = 256
    system_prompt: Optional[str] = None
    markers: str = "learned"

    def forward(
        self,
        prompts: list[str],
        input_images: Optional[list[list[Any]]] = None,
        queries: Optional[torch.Tensor] = None,
        markers: Optional[torch.Tensor] = None,
        inputs: Optional[dict[str, Any]] = None,
    ) -> BackboneOutput:
        """Queries [N, D] given -> hidden states at the N query slots; None -> hidden states of the prompt tokens.

        `inputs`: what `tokenize(prompts, input_images, queries is not None)` returns, when prepared ahead."""
        if inputs is None:
            inputs = self.tokenize(prompts, input_images, with_queries=queries is not None)
        inputs = dict(inputs)
        input_ids = inputs.pop("input_ids").to(self.device)
        mask = inputs.pop("attention_mask").to(self.device).bool()
        extras = {k: v.to(self.device) if torch.is_tensor(v) else v for k, v in inputs.items()}
        embeds = self.input_embeddings(input_ids)
        if queries is None:
            # An empty caption renders to no tokens when there is no chat template: keep one (pad) slot visible so
            # the connector's and decoder's attention always has a key.
            mask[~mask.any(dim=1), -1] = True
            hidden = self.run(input_ids, embeds, mask, extras)
            return BackboneOutput(hidden=hidden, mask=mask)

        b, n = input_ids.shape[0], queries.shape[0]
        marker_pair = self.marker_ids()
        begin, end = marker_pair if marker_pair else (self.pad_id, self.pad_id)
        suffix = torch.tensor([begin] + [self.pad_id] * n + [end], device=self.device).expand(b, -1)
        suffix_embeds = self.input_embeddings(suffix)
        query_embeds = queries.to(embeds.dtype).expand(b, -1, -1)
        if marker_pair is None:
            if markers is None:
                raise ValueError("this tokenizer has no begin/end-of-image tokens: learned markers are required")
            m = markers.to(embeds.dtype)
            suffix_embeds = torch.cat([m[0].expand(b, 1, -1), query_embeds, m[1].expand(b, 1, -1)], dim=1)
        else:
            suffix_embeds = torch.cat([suffix_embeds[:, :1], query_embeds, suffix_embeds[:, -1:]], dim=1)
        input_ids = torch.cat([input_ids, suffix], dim=1)
        embeds = torch.cat([embeds, suffix_embeds], dim=1)
        mask = torch.cat([mask, torch.ones_like(suffix, dtype=torch.bool)], dim=1)
        hidden = self.run(input_ids, embeds, mask, extras)
        query_hidden = hidden[:, -n - 1 : -1]
        return BackboneOutput(hidden=query_hidden, mask=torch.ones(query_hidden.shape[:2], dtype=torch.bool,
                                                                   device=query_hidden.device))


def unpad_rows(out: BackboneOutput) -> list[torch.Tensor]:
    """Each row's states at its real tokens, [L_i, D]."""
    return [out.hidden[row][out.mask[row]].clone() for row in range(out.hidden.shape[0])]


def stack_rows(rows: Sequence[torch.Tensor]) -> BackboneOutput:
    """Unpadded [L_i, D] rows -> one left-padded batch (zeros, masked), the layout the tokenizer gives."""
    length = max(row.shape[0] for row in rows)
    hidden = torch.stack([torch.nn.functional.pad(row, (0, 0, length - row.shape[0], 0)) for row in rows])
    mask = torch.zeros(len(rows), length, dtype=torch.bool, device=hidden.device)
    for index, row in enumerate(rows):
        mask[index, length - row.shape[0]:] = True
    return BackboneOutput(hidden=hidden, mask=mask)


def text_position_ids(mask: torch.Tensor) -> torch.Tensor:
    """Positions counting real tokens only, so left padding does not shift a row's positions."""
    return (mask.long().cumsum(-1) - 1).clamp(min=0)
