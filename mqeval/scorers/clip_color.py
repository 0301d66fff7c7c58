"""GenEval's colour classifier: CLIP zero-shot over ten colours on a masked, cropped object.

Matches djghosh13/geneval @ af4902f (`evaluation/evaluate_images.py`, with clip-benchmark 1.4.0's zero-shot
helpers): the object's instance mask is pasted onto a #999999 canvas (the original pixels inside the mask, grey
outside), the result is cropped to the detection box (PIL rounds the float box), passed through the CLIP model's
evaluation transform, and classified against one text embedding per colour: the mean of the L2-normalised
embeddings of three templates, normalised again. Logits are 100 x cosine similarity; the argmax is the colour.
On CUDA the official code runs text and image towers under fp16 autocast; so does this one.

The official model is open_clip ViT-L-14 with OpenAI weights. Those weights use QuickGELU; open_clip >= 2.29 only
builds that activation when asked, hence the architecture name `ViT-L-14-quickgelu`.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

from mqeval.errors import ConfigError

COLORS = ("red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "black", "white")
TEMPLATES = ("a photo of a {c} {cls}", "a photo of a {c}-colored {cls}", "a photo of a {c} object")
BACKGROUND = "#999999"  # the official default "#999"
# open_clip keeps a tag's weights in a hub repository under this name; no public source showing a commit id of that
# repository (timm/vit_large_patch14_clip_224.openai for the official model) was found: unpinned.
CLIP_HUB_FILE = "open_clip_model.safetensors"
CLIP_HUB_REVISION: Optional[str] = None


@dataclass(frozen=True)
class ClipColorConfig:
    model: str = "ViT-L-14-quickgelu"
    pretrained: Optional[str] = "openai"  # an open_clip tag or a local weights file
    background: str = BACKGROUND
    crop: bool = True
    batch_size: int = 16


def resolve_clip_source(config: ClipColorConfig, weights_dir: Optional[Path]) -> tuple[str, Optional[str]]:
    """(model name, pretrained) for open_clip, preferring local weights under `weights_dir` when present.

    `<weights_dir>/clip/open_clip_config.json` (+ weights) loads as open_clip's `local-dir:` schema;
    `<weights_dir>/ViT-L-14.pt` (OpenAI's released file) loads as the pretrained file of the named architecture.
    """
    if weights_dir is not None:
        local = Path(weights_dir) / "clip"
        if (local / "open_clip_config.json").is_file():
            return f"local-dir:{local}", None
        openai_file = Path(weights_dir) / "ViT-L-14.pt"
        if openai_file.is_file():
            return config.model, str(openai_file)
    return config.model, config.pretrained


def hub_weights(name: str, pretrained: Optional[str]) -> Optional[tuple[str, str]]:
    """(hub repository, file) of an open_clip pretrained tag's weights; None for a local file or a tag without any."""
    import open_clip

    if not pretrained or Path(pretrained).is_file() or name.startswith(("local-dir:", "hf-hub:")):
        return None
    where = (open_clip.get_pretrained_cfg(name, pretrained) or {}).get("hf_hub", "").strip("/")
    if not where:
        return None
    parts = where.split("/")
    return "/".join(parts[:2]), "/".join(parts[2:]) or CLIP_HUB_FILE


def masked_crop(image: Any, box: Sequence[float], mask: Any, background: str = BACKGROUND, crop: bool = True):
    """The object's pixels inside its mask on a flat background, cropped to its box (the official crop)."""
    from PIL import Image
    import numpy as np

    rgb = image.convert("RGB")
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != (rgb.height, rgb.width):
            raise ValueError(f"mask shape {mask.shape} does not match image size {(rgb.height, rgb.width)}")
        canvas = rgb.copy() if background == "original" else Image.new("RGB", rgb.size, color=background)
        rgb = Image.composite(rgb, canvas, Image.fromarray(mask))
    if crop:
        rgb = rgb.crop(tuple(float(v) for v in box[:4]))
    return rgb


class ClipColorClassifier:
    """Callable as the rule engine's ColorClassifier: (image, detections, classname) -> colour names."""

    def __init__(self, model: Any, preprocess: Any, tokenizer: Any, device: str = "cpu",
                 config: ClipColorConfig = ClipColorConfig(), colors: Sequence[str] = COLORS,
                 templates: Sequence[str] = TEMPLATES):
        self.model = model.eval()
        self.preprocess = preprocess
        self.tokenizer = tokenizer
        self.device = device
        self.config = config
        self.colors = tuple(colors)
        self.templates = tuple(templates)
        self._class_weights: dict[str, Any] = {}  # text classifier per object class, built on first use

    @classmethod
    def load(cls, config: ClipColorConfig = ClipColorConfig(), device: str = "cpu",
             weights_dir: Optional[Path] = None) -> "ClipColorClassifier":
        import open_clip

        name, pretrained = resolve_clip_source(config, weights_dir)
        hub = hub_weights(name, pretrained)
        if hub is not None:  # fetched through mqeval's hub code path (fast failure offline), then opened as a file
            from mqeval.hub_download import fetch

            elsewhere = "or put OpenAI's ViT-L-14.pt in the scorer weights folder (--weights-path)"
            pretrained = str(fetch(hub[0], "GenEval colour classifier (CLIP) weights", revision=CLIP_HUB_REVISION,
                                   filename=hub[1], elsewhere=elsewhere))
        try:
            model, _, preprocess = open_clip.create_model_and_transforms(name, pretrained=pretrained, device=device)
        except RuntimeError as exc:
            raise ConfigError(
                f"Could not load the CLIP colour model {name} ({pretrained}): {exc}. Offline, put OpenAI's "
                "ViT-L-14.pt in the scorer weights folder (--weights-path)."
            ) from None
        return cls(model, preprocess, open_clip.get_tokenizer(name), device, config)

    def _autocast(self):
        import torch

        if str(self.device).startswith("cuda"):
            return torch.autocast("cuda", dtype=torch.float16)
        return contextlib.nullcontext()

    def prompts(self, classname: str) -> list[list[str]]:
        """Per colour, the three template sentences."""
        return [[t.format(c=color, cls=classname) for t in self.templates] for color in self.colors]

    def class_weights(self, classname: str):
        """[embed_dim, num_colours] zero-shot weights for one object class."""
        import torch
        import torch.nn.functional as F

        if classname not in self._class_weights:
            columns = []
            with torch.no_grad(), self._autocast():
                for sentences in self.prompts(classname):
                    tokens = self.tokenizer(sentences).to(self.device)
                    emb = F.normalize(self.model.encode_text(tokens), dim=-1).mean(dim=0)
                    columns.append(emb / emb.norm())
            self._class_weights[classname] = torch.stack(columns, dim=1)
        return self._class_weights[classname]

    def logits(self, image: Any, detections: Sequence[Any], classname: str):
        import torch
        import torch.nn.functional as F

        if image is None:
            raise ValueError("CLIP colour classification needs the image")
        weights = self.class_weights(classname)
        crops = [masked_crop(image, d.box, d.mask, self.config.background, self.config.crop) for d in detections]
        out = []
        for start in range(0, len(crops), self.config.batch_size):
            batch = torch.stack([self.preprocess(c) for c in crops[start:start + self.config.batch_size]])
            with torch.no_grad(), self._autocast():
                feats = F.normalize(self.model.encode_image(batch.to(self.device)), dim=-1)
                out.append((100.0 * feats @ weights).float().cpu())
        return torch.cat(out) if out else torch.zeros(0, len(self.colors))

    def __call__(self, image: Any, detections: Sequence[Any], classname: str) -> list[str]:
        if not detections:
            return []
        return [self.colors[i] for i in self.logits(image, detections, classname).argmax(dim=1).tolist()]
