"""Model kinds: how a card of each `kind` becomes a TextToImage (mqeval.contract.text_to_image).

Each kind is a `ModelKind` registered by name (lazily, so listing cards never imports torch), and it is the only
place that knows about its kind:
- `check_card(card)`: what a card of this kind may hold (called when the card is built);
- `capabilities(card)` and `default_resolution(card)`, known before loading, so settings are checked at plan time;
- `resolve_weights(card, override)`: the `Weights` a run uses (folder, sha256 hashed once, pinned sha256 checked
  once), or one UserError at once when they are not here and cannot be fetched (no minutes of retries);
- `fingerprint(card, weights)`: what determines the images (stored with them, so a resume never mixes models);
- `recorded_checkpoint(card, checkpoint)`: the folder the results record names;
- `summary(card)`: one line of what the model is, for the paper tables;
- `check_understanding(card, suite)`: whether lmms-eval can ask this model's MLLM (a refusal otherwise);
- `load(card, weights, device)`: the TextToImage object.
A new kind is a module here with a `ModelKind` subclass, registered in `KINDS` below, and its config block in
kind_configs.py (and mqeval.model.card's KIND_BLOCKS / block field).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Sequence

from mqeval.contract.text_to_image import Capabilities, images_of
from mqeval.errors import ConfigError, UserError
from mqeval.registry import Registry

if TYPE_CHECKING:
    from mqeval.model.card import ModelCard

KINDS: Registry = Registry("model kind")
KINDS.register("metaquery", "mqeval.model.kinds.metaquery:KIND")
KINDS.register("diffusers", "mqeval.model.kinds.diffusers_pipeline:KIND")
KINDS.register("transformers", "mqeval.model.kinds.transformers_family:KIND")
KINDS.register("python", "mqeval.model.kinds.python_factory:KIND")


@dataclass(frozen=True)
class Weights:
    """What a run loads: the folder (None: random-init test cards, or weights a kind fetches at load time) and the
    sha256 of its model.safetensors (None where the folder has none), hashed once when the run is planned."""

    path: Optional[Path] = None
    sha256: Optional[str] = None


class ModelKind:
    """Defaults shared by the kinds; a kind overrides what differs."""

    def check_card(self, card: "ModelCard") -> None:
        """Raises ValueError for what a card of this kind may not hold (the card loader reports it as a card error)."""

    def resolve_weights(self, card: "ModelCard", override: Optional[Path]) -> Weights:
        """The kinds other than metaquery: their weights folder, found (or refused at once) by `locate_weights`."""
        from mqeval.fileio import checkpoint_sha256

        if override is not None:
            raise ConfigError(f"--checkpoint applies to MetaQuery cards; '{card.name}' is a {card.kind} card "
                              "(point its model_id at a local folder instead)")
        path = self.locate_weights(card)
        return Weights(path, checkpoint_sha256(path))

    def recorded_checkpoint(self, card: "ModelCard", checkpoint: Optional[Path]) -> Optional[Path]:
        return checkpoint

    def summary(self, card: "ModelCard") -> str:
        config = card.kind_config
        return f"{card.kind}: {getattr(config, 'model_id', None) or getattr(config, 'factory', '')}"

    def check_understanding(self, card: "ModelCard", suite: str) -> None:
        raise UserError(f"{suite} asks a model's MLLM through lmms-eval; '{card.name}' is a {card.kind} card, and "
                        "lmms-eval 0.7.3 has no adapter for it (its generators: Janus, Emu3, Show-o, ... have none); "
                        "run the model's own lmms-eval adapter, or a MetaQuery card")

    def capabilities(self, card: "ModelCard") -> Capabilities:
        return card.capabilities or Capabilities()

    def default_resolution(self, card: "ModelCard") -> Optional[int]:
        return None

    def locate_weights(self, card: "ModelCard") -> Optional[Path]:
        return None

    def fingerprint(self, card: "ModelCard", weights: Optional[Path]) -> dict[str, Any]:
        from mqeval.dataclass_io import to_dict

        return {"card": card.name, "kind": card.kind, "config": to_dict(card.kind_config)}

    def load(self, card: "ModelCard", weights: Optional[Path], device: str) -> Any:
        raise NotImplementedError


def kind_of(card: "ModelCard") -> ModelKind:
    return KINDS.get(card.kind)


def load_text_to_image(card: "ModelCard", weights: Optional[Path], device: str) -> "CheckedModel":
    kind = kind_of(card)
    return CheckedModel(kind.load(card, weights, device), kind.capabilities(card))


@dataclass
class GeneratedImages:
    images: list  # PIL images, one per prompt (the runner reads `.images`, as from MetaQueryPipeline)


class CheckedModel:
    """Holds a loaded model to its capabilities: negative prompts it cannot use are dropped (the plan recorded that
    deviation), a scheduler it does not accept falls back to its default, input images it cannot take are an error,
    and it must return one image per prompt."""

    def __init__(self, model: Any, capabilities: Capabilities):
        if not callable(model):
            raise ConfigError(f"{type(model).__name__} is not callable: a model must implement TextToImage")
        self.model = model
        self.capabilities = capabilities

    def prepare(self, **call: Any) -> None:
        """Work the model can do ahead of a call (a MetaQuery tokenises), given what `__call__` will pass it."""
        prepare = getattr(self.model, "prepare", None)
        if prepare is not None:
            prepare(**{**call, "negative_prompts": call.get("negative_prompts") if self.capabilities.negative_prompt
                       else None})

    def __call__(self, prompts: Sequence[str], *, negative_prompts: Optional[Sequence[str]], generators: Sequence[Any],
                 guidance_scale: float, num_inference_steps: int, resolution: int, scheduler: str = "default",
                 input_images: Optional[list] = None, image_guidance_scale: float = 1.0) -> GeneratedImages:
        caps = self.capabilities
        kwargs: dict[str, Any] = dict(
            negative_prompts=negative_prompts if caps.negative_prompt else None, generators=generators,
            guidance_scale=guidance_scale, num_inference_steps=num_inference_steps, resolution=resolution,
        )
        if scheduler != "default" and scheduler in caps.schedulers:
            kwargs["scheduler"] = scheduler
        if input_images is not None:
            if not caps.input_images:
                raise ConfigError("this benchmark gives input images, and the model does not take any")
            kwargs.update(input_images=input_images, image_guidance_scale=image_guidance_scale)
        output = self.model(list(prompts), **kwargs)
        images = images_of(output)
        if len(images) != len(prompts):
            raise RuntimeError(f"the model returned {len(images)} images for {len(prompts)} prompts")
        return GeneratedImages(images)
