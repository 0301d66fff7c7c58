"""Instance detectors for GenEval: image files in, rule-engine Detections (COCO class names) out.

Two backends of the same architecture (Mask2Former, Swin-S, COCO instance segmentation):
- `mmdet-mask2former`: the official scorer's model, mmdetection 2.x config
  `mask2former_swin-s-p4-w7-224_lsj_8x2_50e_coco` and its released checkpoint, run through mmdet's own
  `init_detector` / `inference_detector` exactly as djghosh13/geneval @ af4902f does. Needs mmdet 2.x + mmcv-full
  1.7 (not installable beside torch 2.x here, so this path has not been run in this project).
- `hf-mask2former`: transformers' Mask2Former (default `facebook/mask2former-swin-small-coco-instance`). Same
  architecture, but its weights were converted from the Detectron2 Mask2Former release, not mmdet's checkpoint,
  so scores can differ from the official ones. Pre- and post-processing here follow mmdet 2.x (keep-ratio resize
  into 1333x800, pad to 32, masks upsampled to the padded input, cropped, resized to the original image, top-100
  query x class pairs, score = class prob x mean mask prob, boxes from masks) rather than transformers' helper
  (which always rescales masks through 384x384).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Protocol, Sequence

from mqeval.benchmarks.geneval_rules import Detection
from mqeval.errors import ConfigError, UserError
from mqeval.registry import Registry

MMDET_MODEL = "mask2former_swin-s-p4-w7-224_lsj_8x2_50e_coco"
MMDET_CHECKPOINT_URL = (
    "https://download.openmmlab.com/mmdetection/v2.0/mask2former/mask2former_swin-s-p4-w7-224_lsj_8x2_50e_coco/"
    "mask2former_swin-s-p4-w7-224_lsj_8x2_50e_coco_20220504_001756-743b7d99.pth"
)
MMDET_CHECKPOINT_SHA256 = "743b7d99"  # openmmlab names checkpoints by the first 8 hex digits of their sha256
HF_MODEL = "facebook/mask2former-swin-small-coco-instance"
HF_NOTE = (
    f"hf-mask2former runs transformers' Mask2Former with the {HF_MODEL} weights (or a local copy), NOT the official "
    f"mmdetection checkpoint {MMDET_MODEL}: GenEval scores can differ from officially scored ones"
)
# mmdet's img_norm_cfg for this config (RGB order)
PIXEL_MEAN = (123.675, 116.28, 103.53)
PIXEL_STD = (58.395, 57.12, 57.375)


class InstanceDetector(Protocol):
    name: str
    weights: str  # id or sha256 of the weights used
    notes: tuple[str, ...]

    def detect(self, paths: Sequence[Path]) -> list[list[Detection]]: ...


@dataclass(frozen=True)
class DetectorOptions:
    weights_dir: Optional[Path] = None  # local weights folder (ScoreOptions.weights_path)
    device: str = "cpu"
    batch_size: int = 4
    cache_root: Optional[Path] = None
    max_size: tuple[int, int] = (1333, 800)  # hf-mask2former's keep-ratio resize (mmdet test pipeline's img_scale)


DETECTORS: Registry[type] = Registry("GenEval detector backend")
DETECTORS.register("mmdet-mask2former", "mqeval.scorers.detectors:MMDetMask2FormerDetector")
DETECTORS.register("hf-mask2former", "mqeval.scorers.detectors:HFMask2FormerDetector")


def mmdet_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("mmdet") is not None


def default_backend() -> str:
    return "mmdet-mask2former" if mmdet_available() else "hf-mask2former"


def load_detector(name: str, classnames: Sequence[str], options: DetectorOptions) -> InstanceDetector:
    return DETECTORS.get(name)(classnames, options)


# ---------------------------------------------------------------- shared post-processing (mmdet 2.x semantics)

def masks_to_boxes(masks):
    """[N,H,W] bool -> [N,4] float boxes (x0, y0, x1 + 1, y1 + 1) of the mask pixels; zeros for empty masks."""
    import torch

    boxes = torch.zeros((masks.shape[0], 4), dtype=torch.float32)
    cols, rows = masks.any(dim=1), masks.any(dim=2)
    for i in range(masks.shape[0]):
        xs, ys = torch.where(cols[i])[0], torch.where(rows[i])[0]
        if len(xs) and len(ys):
            boxes[i] = torch.tensor([xs[0], ys[0], xs[-1] + 1, ys[-1] + 1], dtype=torch.float32)
    return boxes


def instance_postprocess(class_logits, mask_logits, max_per_image: int = 100):
    """Mask2Former instance results from one image's logits ([Q, C+1] and [Q, H, W] at image size).

    Returns (labels [K], scores [K], masks [K,H,W] bool, boxes [K,4]) for the top-K query x class pairs.
    """
    scores = class_logits.float().softmax(-1)[:, :-1]
    num_classes = scores.shape[1]
    top_scores, top_index = scores.flatten().topk(min(max_per_image, scores.numel()), sorted=False)
    labels = top_index % num_classes
    masks = mask_logits.float()[top_index // num_classes]
    binary = masks > 0
    mask_scores = (masks.sigmoid() * binary).flatten(1).sum(1) / (binary.flatten(1).sum(1) + 1e-6)
    return labels, top_scores * mask_scores, binary, masks_to_boxes(binary)


def to_detections(labels, scores, masks, boxes, classnames: Sequence[str]) -> list[Detection]:
    out = []
    for label, score, mask, box in zip(labels.tolist(), scores.tolist(), masks, boxes.tolist()):
        out.append(Detection(classnames[label], float(score), tuple(box), mask.cpu().numpy()))
    return out


def detections_from_mmdet(result: Any, classnames: Sequence[str]) -> list[Detection]:
    """mmdet 2.x `inference_detector` output (per-class [n,5] box arrays, per-class mask lists) -> Detections."""
    import numpy as np

    bbox = result[0] if isinstance(result, tuple) else result
    segm = result[1] if isinstance(result, tuple) and len(result) > 1 else None
    if len(bbox) != len(classnames):
        raise ValueError(f"detector gave {len(bbox)} classes, expected {len(classnames)}")
    out = []
    for index, name in enumerate(classnames):
        for j, row in enumerate(np.asarray(bbox[index]).reshape(-1, 5)):
            mask = None if segm is None else np.asarray(segm[index][j], dtype=bool)
            out.append(Detection(name, float(row[4]), tuple(float(v) for v in row[:4]), mask))
    return out


# ---------------------------------------------------------------- mmdetection backend (official)

def resolve_mmdet_checkpoint(options: DetectorOptions) -> tuple[Path, str]:
    from mqeval.benchmarks.downloads import fetch_data_file

    resolved = fetch_data_file(
        f"{MMDET_MODEL}.pth", MMDET_CHECKPOINT_URL, MMDET_CHECKPOINT_SHA256,
        local_dir=options.weights_dir, cache_root=options.cache_root, what="GenEval Mask2Former checkpoint",
    )
    return resolved.path, resolved.sha256


def mmdet_config_path(package_dir: Path) -> Path:
    """The config beside a source checkout (what the official script uses) or inside a pip install's `.mim`."""
    for root in (package_dir.parent / "configs", package_dir / ".mim" / "configs"):
        config = root / "mask2former" / f"{MMDET_MODEL}.py"
        if config.is_file():
            return config
    raise ConfigError(f"mmdet config {MMDET_MODEL}.py not found near {package_dir}: "
                      "install mmdetection 2.x from source")


class MMDetMask2FormerDetector:
    name = "mmdet-mask2former"

    def __init__(self, classnames: Sequence[str], options: DetectorOptions):
        if not mmdet_available():
            raise UserError(
                "The official GenEval detector needs mmdetection 2.x (git checkout 2.x; pip install -v -e .) and "
                "mmcv-full 1.7.x, which need torch < 2.1. Use --backend hf-mask2former otherwise (not the "
                "official weights)."
            )
        import mmdet
        from mmdet.apis import init_detector

        config = mmdet_config_path(Path(mmdet.__file__).parent)
        checkpoint, sha = resolve_mmdet_checkpoint(options)
        self.classnames = tuple(classnames)
        self.model = init_detector(str(config), str(checkpoint), device=options.device)
        self.weights = sha
        self.notes = (f"official detector {MMDET_MODEL} (mmdet {mmdet.__version__})",)

    def detect(self, paths: Sequence[Path]) -> list[list[Detection]]:
        from mmdet.apis import inference_detector

        return [detections_from_mmdet(inference_detector(self.model, str(p)), self.classnames) for p in paths]


# ---------------------------------------------------------------- transformers backend (not the official weights)

def rescale_size(width: int, height: int, long_edge: int = 1333, short_edge: int = 800) -> tuple[int, int]:
    """mmcv's keep-ratio rescale: the largest scale that fits both edges, rounded half up."""
    scale = min(long_edge / max(width, height), short_edge / min(width, height))
    return int(width * scale + 0.5), int(height * scale + 0.5)


def mmdet_preprocess(images: Sequence[Any], max_size: tuple[int, int] = (1333, 800), size_divisor: int = 32):
    """Resize (bilinear, keep ratio), pad with 0 to a multiple of 32, normalise: (pixels, pixel_mask, shapes)."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    resized, shapes = [], []
    for image in images:
        w, h = image.size
        nw, nh = rescale_size(w, h, *max_size)
        x = torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32)).permute(2, 0, 1)[None]
        x = F.interpolate(x, size=(nh, nw), mode="bilinear", align_corners=False).round().clamp(0, 255)[0]
        resized.append(x)
        shapes.append(((nh, nw), (h, w)))
    ph = -(-max(x.shape[1] for x in resized) // size_divisor) * size_divisor
    pw = -(-max(x.shape[2] for x in resized) // size_divisor) * size_divisor
    mean = torch.tensor(PIXEL_MEAN).view(3, 1, 1)
    std = torch.tensor(PIXEL_STD).view(3, 1, 1)
    pixels = torch.zeros(len(resized), 3, ph, pw)
    pixel_mask = torch.zeros(len(resized), ph, pw, dtype=torch.long)
    for i, x in enumerate(resized):
        padded = torch.zeros(3, ph, pw)
        padded[:, : x.shape[1], : x.shape[2]] = x
        pixels[i] = (padded - mean) / std
        pixel_mask[i, : x.shape[1], : x.shape[2]] = 1
    return pixels, pixel_mask, shapes


class HFMask2FormerDetector:
    name = "hf-mask2former"
    local_folder = "mask2former-swin-small-coco-instance"

    def __init__(self, classnames: Sequence[str], options: DetectorOptions, max_per_image: int = 100):
        from transformers import Mask2FormerForUniversalSegmentation

        source = HF_MODEL
        if options.weights_dir is not None:
            local = Path(options.weights_dir) / self.local_folder
            source = str(local if local.is_dir() else options.weights_dir)
        try:
            self.model = Mask2FormerForUniversalSegmentation.from_pretrained(source).to(options.device).eval()
        except OSError as exc:
            raise UserError(f"Could not load Mask2Former from {source}: {exc}") from None
        num_labels = self.model.config.num_labels
        if num_labels != len(classnames):
            raise ConfigError(f"{source} predicts {num_labels} classes; GenEval needs the {len(classnames)} COCO ones")
        self.classnames = tuple(classnames)
        self.options = options
        self.max_per_image = max_per_image
        self.weights = source if source == HF_MODEL else f"local:{source}"
        self.notes = (HF_NOTE,)

    def detect_images(self, images: Sequence[Any]) -> list[list[Detection]]:
        import torch
        import torch.nn.functional as F

        out: list[list[Detection]] = []
        for start in range(0, len(images), self.options.batch_size):
            batch = images[start:start + self.options.batch_size]
            pixels, pixel_mask, shapes = mmdet_preprocess(batch, self.options.max_size)
            with torch.no_grad():
                result = self.model(pixel_values=pixels.to(self.options.device),
                                    pixel_mask=pixel_mask.to(self.options.device))
            masks = F.interpolate(result.masks_queries_logits.float(), size=pixels.shape[-2:], mode="bilinear",
                                  align_corners=False)
            for i, ((rh, rw), (h, w)) in enumerate(shapes):
                m = F.interpolate(masks[i:i + 1, :, :rh, :rw], size=(h, w), mode="bilinear", align_corners=False)[0]
                parts = instance_postprocess(result.class_queries_logits[i], m, self.max_per_image)
                out.append(to_detections(*parts, self.classnames))
        return out

    def detect(self, paths: Sequence[Path]) -> list[list[Detection]]:
        from PIL import Image, ImageOps

        images = [ImageOps.exif_transpose(Image.open(p)).convert("RGB") for p in paths]
        return self.detect_images(images)
