"""Instance detectors for GenEval: image files in, rule-engine Detections (COCO class names) out.

Two backends of the same architecture (Mask2Former, Swin-S, COCO instance segmentation):
- `mmdet-mask2former`: the official scorer's model, mmdetection 2.x config
  `mask2former_swin-s-p4-w7-224_lsj_8x2_50e_coco` and its released checkpoint, run through mmdet's own
  `init_detector` / `inference_detector` exactly as djghosh13/geneval @ af4902f does. Needs mmdet 2.x + mmcv-full
  1.7 (not installable beside torch 2.x here, so this path has not been run in this project).
- `hf-mask2former`: transformers' Mask2Former, with one of two weight sets (DetectorOptions.weights):
  - `official` (default): the official mmdet checkpoint converted once by mqeval.scorers.mask2former_convert
    (cached as safetensors with its sha256); checked against mmdet 2.x itself on a reduced-width twin
    (docs/benchmarks-vision.md);
  - `hf`: `facebook/mask2former-swin-small-coco-instance`, converted from the Detectron2 Mask2Former release, not
    mmdet's checkpoint, so scores can differ from the official ones.
  Pre- and post-processing follow mmdet 2.x's test pipeline (cv2 bilinear keep-ratio resize into 1333x800 when
  OpenCV is installed, pad with 128 to a multiple of 32, normalise as mmcv does, masks upsampled to the padded input,
  cropped, resized to the original image, top-100 query x class pairs, score = class prob x mean mask prob, boxes
  from masks) rather than transformers' helper (which always rescales masks through 384x384).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Protocol, Sequence

from mqeval.contract.detection import Detection
from mqeval.errors import ConfigError, UserError
from mqeval.registry import Registry

MMDET_MODEL = "mask2former_swin-s-p4-w7-224_lsj_8x2_50e_coco"
MMDET_CHECKPOINT_URL = (
    "https://download.openmmlab.com/mmdetection/v2.0/mask2former/mask2former_swin-s-p4-w7-224_lsj_8x2_50e_coco/"
    "mask2former_swin-s-p4-w7-224_lsj_8x2_50e_coco_20220504_001756-743b7d99.pth"
)
MMDET_CHECKPOINT_SHA256 = "743b7d99"  # openmmlab names checkpoints by the first 8 hex digits of their sha256
HF_MODEL = "facebook/mask2former-swin-small-coco-instance"
# No public source showing a commit id of this repository was found: unpinned; the weights id names the commit used.
HF_MODEL_REVISION: Optional[str] = None
HF_MODEL_FILES = ("*.json", "*.safetensors", "pytorch_model.bin")  # configs and weights (in either format)
HF_NOTE = (
    f"hf-mask2former runs transformers' Mask2Former with the {HF_MODEL} weights (or a local copy), NOT the official "
    f"mmdetection checkpoint {MMDET_MODEL}: GenEval scores can differ from officially scored ones"
)
OFFICIAL_NOTE = (
    f"hf-mask2former runs transformers' Mask2Former with the official mmdetection checkpoint {MMDET_MODEL}, "
    "converted by mqeval (mqeval.scorers.mask2former_convert)"
)
WEIGHT_SETS = ("official", "hf")
# mmdet's img_norm_cfg for this config (RGB order) and the test pipeline's Pad value
PIXEL_MEAN = (123.675, 116.28, 103.53)
PIXEL_STD = (58.395, 57.12, 57.375)
PAD_VALUE = 128


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
    weights: str = "official"  # hf-mask2former's weight set: "official" or "hf" (see the module docstring)


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
    from mqeval.downloads import fetch_data_file

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


def resize_bilinear(pixels, width: int, height: int):
    """uint8 HxWx3 -> uint8 (height, width, 3), as mmcv.imresize: cv2 INTER_LINEAR when OpenCV is installed.

    Without OpenCV: torch bilinear (align_corners=False) rounded to uint8, which differs from cv2's fixed-point
    arithmetic by one grey level on some pixels.
    """
    import numpy as np

    if pixels.shape[:2] == (height, width):
        return pixels
    try:
        import cv2
    except ImportError:
        import torch
        import torch.nn.functional as F

        x = torch.from_numpy(np.ascontiguousarray(pixels, dtype=np.float32)).permute(2, 0, 1)[None]
        x = F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False)
        return x.round().clamp(0, 255)[0].permute(1, 2, 0).numpy().astype(np.uint8)
    return cv2.resize(pixels, (width, height), interpolation=cv2.INTER_LINEAR)


def resize_backend() -> str:
    import importlib.util

    return "cv2" if importlib.util.find_spec("cv2") is not None else "torch (not bit-exact with mmdet's cv2)"


def mmdet_input(image: Any, max_size: tuple[int, int] = (1333, 800), size_divisor: int = 32):
    """One image through mmdet 2.x's test pipeline: (float32 3xHxW tensor, resized (h, w), original (h, w)).

    Resize (keep ratio), Pad with 128 to a multiple of 32, then Normalize as mmcv.imnormalize does it with cv2:
    float32 subtraction of the mean, then a product with the float64 1 / std rounded to float32. With OpenCV the
    tensor is bit-identical to mmdet's (tests/test_geneval_mmdet_fixture.py).
    """
    import numpy as np
    import torch

    pixels = np.asarray(image.convert("RGB"), dtype=np.uint8)
    h, w = pixels.shape[:2]
    nw, nh = rescale_size(w, h, *max_size)
    resized = resize_bilinear(pixels, nw, nh)
    ph, pw = -(-nh // size_divisor) * size_divisor, -(-nw // size_divisor) * size_divisor
    padded = np.full((ph, pw, 3), PAD_VALUE, dtype=np.uint8)
    padded[:nh, :nw] = resized
    mean = np.asarray(PIXEL_MEAN, dtype=np.float32)
    stdinv = 1 / np.asarray(PIXEL_STD, dtype=np.float32).astype(np.float64)
    normalised = ((padded.astype(np.float32) - mean).astype(np.float64) * stdinv).astype(np.float32)
    return torch.from_numpy(np.ascontiguousarray(normalised.transpose(2, 0, 1))), (nh, nw), (h, w)


def load_hf_mask2former(options: DetectorOptions, local_folder: str) -> tuple[Any, str, str]:
    """(model, weights id, note) for DetectorOptions.weights: the hub / local transformers weights or the official
    mmdet checkpoint converted (once, then cached)."""
    from transformers import Mask2FormerForUniversalSegmentation

    if options.weights not in WEIGHT_SETS:
        raise ConfigError(f"hf-mask2former weights must be one of {', '.join(WEIGHT_SETS)}, not {options.weights!r}")
    if options.weights == "official":
        from mqeval.scorers.mask2former_convert import official_converted

        folder, sha = official_converted(options)
        source, weights, note = str(folder), f"official-converted:{sha}", OFFICIAL_NOTE
    elif options.weights_dir is not None:
        local = Path(options.weights_dir) / local_folder
        source = str(local if local.is_dir() else options.weights_dir)
        weights, note = f"local:{source}", HF_NOTE
    else:
        from mqeval.hub_download import fetch

        folder = fetch(HF_MODEL, "GenEval detector weights", revision=HF_MODEL_REVISION, allow_patterns=HF_MODEL_FILES,
                       elsewhere="or pass a local copy with --weights-path")
        source, weights, note = str(folder), f"{HF_MODEL}@{folder.name}", HF_NOTE  # snapshots/<commit>
    try:
        model = Mask2FormerForUniversalSegmentation.from_pretrained(source)
    except OSError as exc:
        raise UserError(f"Could not load Mask2Former from {source}: {exc}") from None
    return model, weights, note


class HFMask2FormerDetector:
    name = "hf-mask2former"
    local_folder = "mask2former-swin-small-coco-instance"

    def __init__(self, classnames: Sequence[str], options: DetectorOptions, max_per_image: int = 100,
                 model: Any = None, weights: str = "given"):
        if model is None:
            model, weights, note = load_hf_mask2former(options, self.local_folder)
        else:
            note = f"hf-mask2former with a given model ({weights})"
        num_labels = model.config.num_labels
        if num_labels != len(classnames):
            raise ConfigError(f"{weights} predicts {num_labels} classes; GenEval needs the {len(classnames)} COCO ones")
        self.model = model.to(options.device).eval()
        self.classnames = tuple(classnames)
        self.options = options
        self.max_per_image = max_per_image
        self.weights = weights
        self.notes = (note, f"resize: {resize_backend()}")

    def detect_images(self, images: Sequence[Any]) -> list[list[Detection]]:
        """Detections per image. Images are batched only with others of the same padded size, so each one sees
        exactly the input mmdet's single-image inference would give it."""
        import torch

        inputs = [mmdet_input(image, self.options.max_size) for image in images]
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for i, (pixels, _, _) in enumerate(inputs):
            by_shape.setdefault(tuple(pixels.shape), []).append(i)
        out: list[Optional[list[Detection]]] = [None] * len(images)
        for indices in by_shape.values():
            for start in range(0, len(indices), self.options.batch_size):
                chunk = indices[start:start + self.options.batch_size]
                pixels = torch.stack([inputs[i][0] for i in chunk]).to(self.options.device)
                with torch.no_grad():
                    result = self.model(pixel_values=pixels)
                for j, i in enumerate(chunk):
                    out[i] = self.postprocess(result.class_queries_logits[j], result.masks_queries_logits[j],
                                              pixels.shape[-2:], inputs[i][1], inputs[i][2])
        return out  # type: ignore[return-value]

    def postprocess(self, class_logits, mask_logits, padded_hw, resized_hw, original_hw) -> list[Detection]:
        """mmdet's MaskFormerFusionHead path: masks to the padded input, crop, to the original size, top-K."""
        import torch.nn.functional as F

        masks = F.interpolate(mask_logits[None].float(), size=tuple(padded_hw), mode="bilinear", align_corners=False)
        (rh, rw), (h, w) = resized_hw, original_hw
        masks = F.interpolate(masks[:, :, :rh, :rw], size=(h, w), mode="bilinear", align_corners=False)[0]
        return to_detections(*instance_postprocess(class_logits, masks, self.max_per_image), self.classnames)

    def detect(self, paths: Sequence[Path]) -> list[list[Detection]]:
        from PIL import Image, ImageOps

        images = [ImageOps.exif_transpose(Image.open(p)).convert("RGB") for p in paths]
        return self.detect_images(images)
