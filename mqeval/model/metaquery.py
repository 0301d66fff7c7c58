"""MetaQuery: frozen (or tuned) MLLM -> learnable queries -> connector -> diffusion decoder.

Only the denoising loss trains the model. Trainable by default: the queries (and learned begin/end markers when the
tokenizer has no begin/end-of-image tokens) and the connector; optionally LoRA or full backbone tuning and the
decoder's denoiser. Frozen weights have requires_grad=False and never enter an optimizer's parameter groups.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import torch
from torch import nn

from mqeval.dataclass_io import from_dict, to_dict
from mqeval.errors import ConfigError, UserError
from mqeval.model.backbones import build_backbone
from mqeval.model.condition_encoding import ConditionEncoder, ConditionEncoding, build_condition_encoder
from mqeval.model.metaquery_config import MetaQueryConfig
from mqeval.model.connectors import build_connector
from mqeval.model.decoders import build_decoder
from mqeval.model.decoders.base import Generators, rand

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
FORMAT = "mqeval-metaquery"
# 2: the connector layout and the query markers are saved (version 1 predates both: its connector is "mqeval-v1"
# and its markers the tokenizer's pair, the only ones it had).
FORMAT_VERSION = 2
_VERSION_1_DEFAULTS = {"connector": {"layout": "mqeval-v1"}, "condition": {"markers": "tokenizer-pair"}}


@dataclass
class ConditionBatch:
    prompts: list[str]
    target_images: torch.Tensor  # [B, 3, H, W] in [-1, 1]
    input_images: Optional[list[list[Any]]] = None  # PIL images per sample (editing / reconstruction)


@dataclass
class LossOutput:
    loss: torch.Tensor
    caption_dropped: torch.Tensor  # [B] bool
    image_dropped: torch.Tensor  # [B] bool


@dataclass
class Condition:
    hidden: torch.Tensor  # [B, L, caption_dim] for the decoder
    mask: torch.Tensor  # [B, L] bool


class QueryTokens(nn.Module):
    """N learnable query vectors (+ optional learned begin/end markers), at the scale of the token embeddings."""

    def __init__(self, num_queries: int, width: int, std: float, learned_markers: bool):
        super().__init__()
        self.queries = nn.Parameter(torch.randn(num_queries, width) * std)
        self.markers = nn.Parameter(torch.randn(2, width) * std) if learned_markers else None


def check_base_models(config: MetaQueryConfig) -> None:
    """Fail before loading anything when a base model is neither local, cached, nor downloadable (download what
    is missing now, before the heavy imports)."""
    from mqeval.model.backbones.base import backbone_folder
    from mqeval.model.decoders.base import diffusers_source

    backbone_folder(config.backbone)
    if config.decoder.model_id:
        diffusers_source(config.decoder)


def write_config(directory: Path, config: MetaQueryConfig) -> None:
    """A checkpoint's config.json: the MetaQueryConfig, naming the base models."""
    from mqeval.fileio import write_json

    write_json(Path(directory) / CONFIG_NAME, {
        "format": FORMAT, "format_version": FORMAT_VERSION,
        "base_models": {"backbone": config.backbone.model_id, "decoder": config.decoder.model_id},
        "config": to_dict(config),
    })


def black_like(image: Any) -> Any:
    from PIL import Image

    return Image.new("RGB", image.size, (0, 0, 0))


class MetaQuery(nn.Module):
    def __init__(self, config: MetaQueryConfig, dtype: Optional[torch.dtype] = None, seed: int = 0,
                 encoding: ConditionEncoding = ConditionEncoding()):
        """Loads the base models named in `config`; trainable parts are initialised from `seed`. `encoding`: how the
        condition encoder runs the backbone (a way to compute, not saved; see `set_condition_encoding`).

        The global RNG is left as it was (the seeded construction runs inside a forked RNG state)."""
        super().__init__()
        self.config = config
        check_base_models(config)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.backbone = build_backbone(config.backbone, config.condition, dtype)
            self.decoder = build_decoder(config.decoder, dtype)
            width = self.backbone.hidden_size
            self.query_tokens: Optional[QueryTokens] = None
            if config.condition.mode == "metaquery":
                if config.condition.num_queries < 1:
                    raise ConfigError("condition.num_queries must be at least 1")
                std = float(self.backbone.input_embeddings.weight.detach().float().std())
                self.query_tokens = QueryTokens(
                    config.condition.num_queries, width, std, learned_markers=self.backbone.marker_ids() is None
                )
            self.connector = build_connector(width, self.decoder.caption_dim, config.connector,
                                             output_scale=self.decoder.condition_scale)
        self.set_condition_encoding(encoding)

    # --- conditioning -----------------------------------------------------------------------------------------------
    @property
    def condition_encoding(self) -> ConditionEncoding:
        return self.condition_encoder.encoding

    def set_condition_encoding(self, encoding: ConditionEncoding) -> None:
        """Switch how the condition encoder runs the backbone (e.g. the trainer's frozen-prefix mode); any memo of
        the previous encoder is dropped. Parameters and checkpoints do not change."""
        self.condition_encoder: ConditionEncoder = build_condition_encoder(encoding)

    def backbone_states(self, prompts: Sequence[str], input_images: Optional[list[list[Any]]] = None,
                        inputs: Optional[dict[str, Any]] = None):
        """The backbone outputs the connector reads: states at the query slots, or the prompt's (last-layer mode).
        `inputs`: the backbone's `tokenize` output for these prompts, when prepared ahead."""
        tokens = self.query_tokens
        return self.condition_encoder(
            self.backbone, list(prompts), input_images,
            queries=None if tokens is None else tokens.queries,
            markers=None if tokens is None else tokens.markers,
            inputs=inputs,
        )

    def encode_condition(self, prompts: Sequence[str], input_images: Optional[list[list[Any]]] = None) -> Condition:
        needs_grad = torch.is_grad_enabled() and (
            self.query_tokens is not None or self.config.backbone.tuning != "frozen")
        with torch.set_grad_enabled(needs_grad):
            out = self.backbone_states(prompts, input_images)
        return self.condition_from_states(out)

    def condition_from_states(self, out: Any) -> Condition:
        """The connector's part of `encode_condition`: backbone outputs -> the decoder's condition."""
        hidden = out.hidden.to(next(self.connector.parameters()).dtype)
        cond = self.connector(hidden, out.mask)
        return Condition(hidden=cond, mask=out.mask)

    def forward(
        self,
        prompts: "Sequence[str] | ConditionBatch",
        target_images: Optional[torch.Tensor] = None,
        input_images: Optional[list[list[Any]]] = None,
        generator: Generators = None,
        cfg_dropout: bool = True,
    ) -> LossOutput:
        """The training loss of a batch (what DDP / FSDP / DeepSpeed wrappers call); `model(batch)` with a
        ConditionBatch works too. Random draws use `generator`: one for the batch, or one per example (then each
        example's dropout, timestep and noise do not depend on the rest of the batch)."""
        if isinstance(prompts, ConditionBatch):
            prompts, target_images, input_images = prompts.prompts, prompts.target_images, prompts.input_images
        if target_images is None:
            raise ValueError("the loss needs target images")
        prompts = list(prompts)
        b = len(prompts)
        per_example = isinstance(generator, (list, tuple))
        draws = rand((b, 2), generator, "cpu").T if per_example else rand((2, b), generator, "cpu")
        caption_dropped = draws[0] < (self.config.caption_dropout if cfg_dropout else 0.0)
        image_dropped = draws[1] < (self.config.image_dropout if cfg_dropout and input_images is not None else 0.0)
        prompts = ["" if drop else p for p, drop in zip(prompts, caption_dropped.tolist())]
        if input_images is not None:
            input_images = [
                [black_like(im) for im in imgs] if drop else list(imgs)
                for imgs, drop in zip(input_images, image_dropped.tolist())
            ]
        cond = self.encode_condition(prompts, input_images)
        images = target_images.to(self.decoder.device)
        loss = self.decoder.loss(images, cond.hidden, cond.mask, generator)
        return LossOutput(loss=loss, caption_dropped=caption_dropped, image_dropped=image_dropped)

    def loss(self, *args, **kwargs) -> LossOutput:
        """Same as calling the model (kept for callers that name it)."""
        return self(*args, **kwargs)

    # --- parameters ------------------------------------------------------------------------------------------------
    def train(self, mode: bool = True) -> "MetaQuery":
        super().train(mode)
        # A frozen backbone stays in eval mode, unless gradient checkpointing is on: transformers only checkpoints
        # in train mode (the supported MLLMs have no active dropout, so outputs do not change).
        if self.config.backbone.tuning == "frozen" and not self.config.backbone.gradient_checkpointing:
            self.backbone.eval()
        return self

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    def named_trainable_parameters(self) -> list[tuple[str, nn.Parameter]]:
        return [(n, p) for n, p in self.named_parameters() if p.requires_grad]

    def parameter_groups(self, weight_decay: float) -> list[dict]:
        """AdamW groups: decay on weight matrices only; none on norms, biases, embeddings, queries, markers."""
        no_decay_ids = set()
        for module in self.modules():
            if isinstance(module, (nn.Embedding, QueryTokens)) or "norm" in type(module).__name__.lower():
                no_decay_ids.update(id(p) for p in module.parameters(recurse=False))
        decay, no_decay = [], []
        for _, param in self.named_trainable_parameters():
            (no_decay if param.ndim < 2 or id(param) in no_decay_ids else decay).append(param)
        groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
        return [g for g in groups if g["params"]]

    def saved_parameter_names(self) -> list[str]:
        """What save_pretrained writes: everything trainable, plus decoders that have no base weights (pixel)."""
        names = []
        for name, param in self.named_parameters():
            if param.requires_grad or name.startswith(("query_tokens.", "connector.")):
                names.append(name)
            elif self.config.decoder.family == "pixel" and name.startswith("decoder."):
                names.append(name)
            elif self.config.backbone.tuning == "lora" and "lora_" in name:
                names.append(name)
        return names

    # --- persistence ---------------------------------------------------------------------------------------------
    def save_pretrained(self, directory: str | Path, tensors: Optional[dict[str, torch.Tensor]] = None) -> Path:
        """model.safetensors (trainable parts only) + config.json (the MetaQueryConfig, naming the base models).

        `tensors`: the saved parts when this module's own parameters are shards (FSDP gathers them first)."""
        from safetensors.torch import save_file

        from mqeval.fileio import atomic_path

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        if tensors is None:
            params = dict(self.named_parameters())
            tensors = {name: params[name].detach().cpu().contiguous() for name in self.saved_parameter_names()}
        with atomic_path(directory / WEIGHTS_NAME) as tmp:
            save_file(tensors, str(tmp), metadata={"format": "pt"})
        write_config(directory, self.config)
        return directory

    @classmethod
    def read_config(cls, directory: str | Path) -> MetaQueryConfig:
        directory = Path(directory)
        path = directory / CONFIG_NAME
        if not path.is_file():
            raise UserError(f"{directory} is not a MetaQuery checkpoint: {CONFIG_NAME} is missing")
        raw = json.loads(path.read_text())
        if raw.get("format") != FORMAT:
            raise UserError(f"{path} is not an mqeval MetaQuery config (format={raw.get('format')!r})")
        config = dict(raw["config"])
        if raw.get("format_version", 1) == 1:
            for block, defaults in _VERSION_1_DEFAULTS.items():
                config[block] = {**defaults, **config.get(block, {})}
        return from_dict(MetaQueryConfig, config, str(path))

    @classmethod
    def from_pretrained(
        cls, directory: str | Path, device: str | torch.device = "cpu", dtype: Optional[torch.dtype] = None,
        config: Optional[MetaQueryConfig] = None,
    ) -> "MetaQuery":
        """Rebuild from the base models + the saved trainable parts. Only safetensors are read; nothing unpickles."""
        from mqeval.model.hub import pickle_files

        directory = Path(directory)
        weights = directory / WEIGHTS_NAME
        if not weights.is_file():
            pickles = pickle_files(directory)
            if pickles:
                raise UserError(
                    f"{directory} holds {', '.join(p.name for p in pickles)} but no {WEIGHTS_NAME}. mqeval never "
                    "unpickles weights (pickle can run code); convert them to safetensors first."
                )
            raise UserError(f"{directory} has no {WEIGHTS_NAME}")
        model = cls(config or cls.read_config(directory), dtype=dtype)
        model.load_saved_parameters(weights)
        return model.to(device)

    def load_saved_parameters(self, weights: str | Path, new_parameters: Sequence[str] = ()) -> None:
        """Copy a save_pretrained safetensors file into this model. Every saved part must be there, with its shape;
        parameters named by a prefix in `new_parameters` may be absent from the file and keep their initialisation
        (a layer added to a trained model)."""
        from safetensors.torch import load_file

        state = load_file(str(weights), device="cpu")
        expected = set(self.saved_parameter_names())
        params = dict(self.named_parameters())
        missing = sorted(n for n in expected - set(state) if not n.startswith(tuple(new_parameters)))
        # Parameters beyond the trainable ones may be saved too (a checkpoint converted from the official format
        # holds the whole model); they must still be this model's parameters.
        unexpected = sorted(set(state) - set(params))
        if missing or unexpected:
            raise UserError(
                f"{weights} does not fit the model built from its config: missing {missing[:5]}, "
                f"unexpected {unexpected[:5]}"
            )
        with torch.no_grad():
            for name, tensor in state.items():
                if params[name].shape != tensor.shape:
                    raise UserError(f"{weights}: {name} has shape {tuple(tensor.shape)}, "
                                    f"the model expects {tuple(params[name].shape)}")
                params[name].copy_(tensor.to(params[name].dtype))
