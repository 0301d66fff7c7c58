"""mmdetection 2.x Mask2Former (Swin backbone) state dict -> transformers' Mask2FormerForUniversalSegmentation.

GenEval's official detector is mmdet 2.x `mask2former_swin-s-p4-w7-224_lsj_8x2_50e_coco` (instance segmentation,
80 COCO thing classes, no stuff). The architecture is the one transformers implements; only names and three layouts
differ:
- Swin attention keeps q, k and v in one `qkv` Linear (mmdet) or three (transformers): split in three along rows;
- mmdet's PatchMerging gathers each 2x2 neighbourhood with nn.Unfold (channel c of kernel offset k at c * 4 + k,
  offsets in row-major order), the original Swin and transformers concatenate offsets (0,0), (1,0), (0,1), (1,1)
  (offset k' of channel c at k' * C + c): the reduction's input columns and the norm are permuted back;
- the decoder's self-attention is nn.MultiheadAttention (one in_proj) in mmdet and separate q/k/v projections in
  transformers (the cross-attention is nn.MultiheadAttention on both sides and copies as is).
Every source key is consumed exactly once and every target shape is checked; the only target entries without a
source are `swin.layernorm` (SwinModel's final norm, which the backbone never applies) and the loss buffer
`criterion.empty_weight` (set to mmdet's class weights). Swin's `relative_position_index` buffers are not copied
but checked equal to the ones transformers computes.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from mqeval.errors import ConfigError
from mqeval.fileio import sha256_file

# mmdet 2.x CocoDataset.CLASSES: the order of the classifier's 80 outputs (GenEval's object_names.txt has the same
# order with three names spelled out: computer mouse, tv remote, computer keyboard).
MMDET_COCO_CLASSES = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors", "teddy bear",
    "hair drier", "toothbrush",
)
UNUSED_TARGETS = ("model.pixel_level_module.encoder.swin.layernorm.weight",
                  "model.pixel_level_module.encoder.swin.layernorm.bias")
LOSS_TARGETS = ("criterion.empty_weight",)


@dataclass(frozen=True)
class Mask2FormerArch:
    """The sizes of an mmdet 2.x Mask2Former + Swin config (defaults: GenEval's Swin-S instance model).

    Fixed by both implementations: 3 feature levels in the pixel decoder, 4 sampling points, one head count shared
    by the deformable encoder and the masked-attention decoder, GroupNorm with 32 groups.
    """

    embed_dims: int = 96
    depths: tuple[int, ...] = (2, 2, 18, 2)
    num_heads: tuple[int, ...] = (3, 6, 12, 24)
    window_size: int = 7
    mlp_ratio: int = 4
    feat_channels: int = 256
    num_queries: int = 100
    num_classes: int = 80
    attention_heads: int = 8
    encoder_layers: int = 6
    encoder_ffn: int = 1024
    decoder_layers: int = 9
    decoder_ffn: int = 2048
    no_object_weight: float = 0.1


def hf_config(arch: Mask2FormerArch = Mask2FormerArch(), classes: tuple[str, ...] = MMDET_COCO_CLASSES):
    """The transformers config that builds the mmdet model's twin."""
    from transformers import Mask2FormerConfig, SwinConfig

    if len(classes) != arch.num_classes:
        raise ConfigError(f"{len(classes)} class names for a {arch.num_classes}-class model")
    backbone = SwinConfig(
        embed_dim=arch.embed_dims, depths=list(arch.depths), num_heads=list(arch.num_heads),
        window_size=arch.window_size, mlp_ratio=float(arch.mlp_ratio), qkv_bias=True, hidden_act="gelu",
        drop_path_rate=0.0, layer_norm_eps=1e-5, out_features=[f"stage{i + 1}" for i in range(len(arch.depths))],
    )
    return Mask2FormerConfig(
        backbone_config=backbone, feature_size=arch.feat_channels, mask_feature_size=arch.feat_channels,
        hidden_dim=arch.feat_channels, num_queries=arch.num_queries, num_attention_heads=arch.attention_heads,
        encoder_layers=arch.encoder_layers, encoder_feedforward_dim=arch.encoder_ffn,
        decoder_layers=arch.decoder_layers + 1,  # transformers counts the prediction before the first layer
        dim_feedforward=arch.decoder_ffn, no_object_weight=arch.no_object_weight, enforce_input_projection=False,
        num_labels=arch.num_classes, id2label=dict(enumerate(classes)),
        label2id={name: i for i, name in enumerate(classes)},
    )


def _unfold_to_concat(weight):
    """PatchMerging columns (or norm entries) from mmdet's unfold order to the concatenation order."""
    lead = weight.shape[:-1]
    channels = weight.shape[-1] // 4
    gathered = weight.reshape(*lead, channels, 4)[..., [0, 2, 1, 3]]
    return gathered.transpose(-1, -2).reshape(*lead, 4 * channels)


def _split3(index: int) -> Callable:
    return lambda t: t.chunk(3, dim=0)[index]


def _same(t):
    return t


SWIN = "model.pixel_level_module.encoder."
PIXEL = "model.pixel_level_module.decoder."
TRANSFORMER = "model.transformer_module."
BLOCK = SWIN + r"swin.encoder.layers.\1.blocks.\2."
ENC = PIXEL + r"encoder.layers.\1."
DEC = TRANSFORMER + r"decoder.layers.\1."

# (mmdet key pattern, [(transformers key template, transform)]); patterns are matched in full.
RULES: tuple[tuple[str, tuple[tuple[str, Callable], ...]], ...] = (
    (r"backbone\.patch_embed\.projection\.(weight|bias)",
     ((SWIN + r"swin.embeddings.patch_embeddings.projection.\1", _same),)),
    (r"backbone\.patch_embed\.norm\.(weight|bias)", ((SWIN + r"swin.embeddings.norm.\1", _same),)),
    (r"backbone\.stages\.(\d+)\.blocks\.(\d+)\.norm1\.(weight|bias)", ((BLOCK + r"layernorm_before.\3", _same),)),
    (r"backbone\.stages\.(\d+)\.blocks\.(\d+)\.norm2\.(weight|bias)", ((BLOCK + r"layernorm_after.\3", _same),)),
    (r"backbone\.stages\.(\d+)\.blocks\.(\d+)\.attn\.w_msa\.qkv\.(weight|bias)",
     tuple((BLOCK + f"attention.{p}_proj." + r"\3", _split3(i)) for i, p in enumerate("qkv"))),
    (r"backbone\.stages\.(\d+)\.blocks\.(\d+)\.attn\.w_msa\.proj\.(weight|bias)",
     ((BLOCK + r"attention.o_proj.\3", _same),)),
    (r"backbone\.stages\.(\d+)\.blocks\.(\d+)\.attn\.w_msa\.relative_position_bias_table",
     ((BLOCK + "attention.relative_position_bias.relative_position_bias_table", _same),)),
    (r"backbone\.stages\.(\d+)\.blocks\.(\d+)\.ffn\.layers\.0\.0\.(weight|bias)", ((BLOCK + r"mlp.fc1.\3", _same),)),
    (r"backbone\.stages\.(\d+)\.blocks\.(\d+)\.ffn\.layers\.1\.(weight|bias)", ((BLOCK + r"mlp.fc2.\3", _same),)),
    (r"backbone\.stages\.(\d+)\.downsample\.reduction\.weight",
     ((SWIN + r"swin.encoder.layers.\1.downsample.reduction.weight", _unfold_to_concat),)),
    (r"backbone\.stages\.(\d+)\.downsample\.norm\.(weight|bias)",
     ((SWIN + r"swin.encoder.layers.\1.downsample.norm.\2", _unfold_to_concat),)),
    (r"backbone\.norm(\d+)\.(weight|bias)", ((SWIN + r"hidden_states_norms.stage{\1+1}.\2", _same),)),
    (r"panoptic_head\.pixel_decoder\.input_convs\.(\d+)\.conv\.(weight|bias)",
     ((PIXEL + r"input_projections.\1.0.\2", _same),)),
    (r"panoptic_head\.pixel_decoder\.input_convs\.(\d+)\.gn\.(weight|bias)",
     ((PIXEL + r"input_projections.\1.1.\2", _same),)),
    (r"panoptic_head\.pixel_decoder\.encoder\.layers\.(\d+)\.attentions\.0\."
     r"(sampling_offsets|attention_weights|value_proj|output_proj)\.(weight|bias)",
     ((ENC + r"self_attn.\2.\3", _same),)),
    (r"panoptic_head\.pixel_decoder\.encoder\.layers\.(\d+)\.norms\.0\.(weight|bias)",
     ((ENC + r"self_attn_layer_norm.\2", _same),)),
    (r"panoptic_head\.pixel_decoder\.encoder\.layers\.(\d+)\.norms\.1\.(weight|bias)",
     ((ENC + r"final_layer_norm.\2", _same),)),
    (r"panoptic_head\.pixel_decoder\.encoder\.layers\.(\d+)\.ffns\.0\.layers\.0\.0\.(weight|bias)",
     ((ENC + r"fc1.\2", _same),)),
    (r"panoptic_head\.pixel_decoder\.encoder\.layers\.(\d+)\.ffns\.0\.layers\.1\.(weight|bias)",
     ((ENC + r"fc2.\2", _same),)),
    (r"panoptic_head\.pixel_decoder\.level_encoding\.weight", ((PIXEL + "level_embed", _same),)),
    (r"panoptic_head\.pixel_decoder\.lateral_convs\.(\d+)\.conv\.weight",
     ((PIXEL + r"adapter_{\1+1}.0.weight", _same),)),
    (r"panoptic_head\.pixel_decoder\.lateral_convs\.(\d+)\.gn\.(weight|bias)",
     ((PIXEL + r"adapter_{\1+1}.1.\2", _same),)),
    (r"panoptic_head\.pixel_decoder\.output_convs\.(\d+)\.conv\.weight",
     ((PIXEL + r"layer_{\1+1}.0.weight", _same),)),
    (r"panoptic_head\.pixel_decoder\.output_convs\.(\d+)\.gn\.(weight|bias)",
     ((PIXEL + r"layer_{\1+1}.1.\2", _same),)),
    (r"panoptic_head\.pixel_decoder\.mask_feature\.(weight|bias)", ((PIXEL + r"mask_projection.\1", _same),)),
    (r"panoptic_head\.transformer_decoder\.layers\.(\d+)\.attentions\.0\.attn\.(in_proj_weight|in_proj_bias)",
     ((DEC + r"cross_attn.\2", _same),)),
    (r"panoptic_head\.transformer_decoder\.layers\.(\d+)\.attentions\.0\.attn\.out_proj\.(weight|bias)",
     ((DEC + r"cross_attn.out_proj.\2", _same),)),
    (r"panoptic_head\.transformer_decoder\.layers\.(\d+)\.attentions\.1\.attn\.in_proj_weight",
     tuple((DEC + f"self_attn.{p}_proj.weight", _split3(i)) for i, p in enumerate("qkv"))),
    (r"panoptic_head\.transformer_decoder\.layers\.(\d+)\.attentions\.1\.attn\.in_proj_bias",
     tuple((DEC + f"self_attn.{p}_proj.bias", _split3(i)) for i, p in enumerate("qkv"))),
    (r"panoptic_head\.transformer_decoder\.layers\.(\d+)\.attentions\.1\.attn\.out_proj\.(weight|bias)",
     ((DEC + r"self_attn.out_proj.\2", _same),)),
    (r"panoptic_head\.transformer_decoder\.layers\.(\d+)\.norms\.0\.(weight|bias)",
     ((DEC + r"cross_attn_layer_norm.\2", _same),)),
    (r"panoptic_head\.transformer_decoder\.layers\.(\d+)\.norms\.1\.(weight|bias)",
     ((DEC + r"self_attn_layer_norm.\2", _same),)),
    (r"panoptic_head\.transformer_decoder\.layers\.(\d+)\.norms\.2\.(weight|bias)",
     ((DEC + r"final_layer_norm.\2", _same),)),
    (r"panoptic_head\.transformer_decoder\.layers\.(\d+)\.ffns\.0\.layers\.0\.0\.(weight|bias)",
     ((DEC + r"fc1.\2", _same),)),
    (r"panoptic_head\.transformer_decoder\.layers\.(\d+)\.ffns\.0\.layers\.1\.(weight|bias)",
     ((DEC + r"fc2.\2", _same),)),
    (r"panoptic_head\.transformer_decoder\.post_norm\.(weight|bias)",
     ((TRANSFORMER + r"decoder.layernorm.\1", _same),)),
    (r"panoptic_head\.query_embed\.weight", ((TRANSFORMER + "queries_embedder.weight", _same),)),
    (r"panoptic_head\.query_feat\.weight", ((TRANSFORMER + "queries_features.weight", _same),)),
    (r"panoptic_head\.level_embed\.weight", ((TRANSFORMER + "level_embed.weight", _same),)),
    (r"panoptic_head\.cls_embed\.(weight|bias)", ((r"class_predictor.\1", _same),)),
    (r"panoptic_head\.mask_embed\.([024])\.(weight|bias)",
     ((TRANSFORMER + r"decoder.mask_predictor.mask_embedder.{\1/2}.0.\2", _same),)),
)
CHECKED_BUFFERS = re.compile(r"backbone\.stages\.(\d+)\.blocks\.(\d+)\.attn\.w_msa\.relative_position_index")
_COMPILED = tuple((re.compile(pattern), targets) for pattern, targets in RULES)
_ARITH = re.compile(r"\{(\d+)([+/])(\d+)\}")


def _expand(template: str, match: re.Match) -> str:
    name = match.expand(template)
    return _ARITH.sub(lambda m: str(int(m[1]) + int(m[3]) if m[2] == "+" else int(m[1]) // int(m[3])), name)


def map_key(key: str) -> list[tuple[str, Callable]]:
    """The transformers keys (and transforms) one mmdet key becomes; [] for a checked buffer; KeyError if unknown."""
    if CHECKED_BUFFERS.fullmatch(key):
        return []
    for pattern, targets in _COMPILED:
        match = pattern.fullmatch(key)
        if match:
            return [(_expand(template, match), fn) for template, fn in targets]
    raise KeyError(key)


def _swin_relative_index(window: int):
    """Swin's relative position index for a window x window window (the buffer both libraries compute)."""
    import torch

    coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")).flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (window - 1)
    return rel[..., 0] * (2 * window - 1) + rel[..., 1]


def strip_prefix(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """An mmdet checkpoint's state dict ('state_dict' entry or the dict itself), minus a DataParallel 'module.'."""
    sd = state_dict.get("state_dict", state_dict)
    return {k[len("module."):] if k.startswith("module.") else k: v for k, v in sd.items()}


def convert_state_dict(mmdet_state: Mapping[str, Any], target_shapes: Mapping[str, tuple[int, ...]],
                       window_size: int = Mask2FormerArch.window_size,
                       no_object_weight: float = Mask2FormerArch.no_object_weight) -> dict[str, Any]:
    """Map every mmdet tensor onto `target_shapes` (the transformers model's state dict shapes).

    Raises ConfigError naming the keys that have no rule, map twice, land on an unknown name or a wrong shape,
    and the targets left without a source (other than the unused final Swin norm and the loss buffer).
    """
    import torch

    out: dict[str, Any] = {}
    unknown, clashes, wrong, bad_index = [], [], [], []
    expected_index = _swin_relative_index(window_size).flatten()
    for key, tensor in mmdet_state.items():
        try:
            targets = map_key(key)
        except KeyError:
            unknown.append(key)
            continue
        if not targets:
            if not torch.equal(tensor.flatten().long(), expected_index):
                bad_index.append(key)
            continue
        for name, fn in targets:
            value = fn(tensor).contiguous()
            if name in out:
                clashes.append(name)
            elif name not in target_shapes or tuple(value.shape) != tuple(target_shapes[name]):
                wrong.append(f"{key} -> {name} {tuple(value.shape)} (target {target_shapes.get(name)})")
            out[name] = value
    for name in UNUSED_TARGETS:
        if name in target_shapes:
            fill = torch.ones if name.endswith("weight") else torch.zeros
            out[name] = fill(target_shapes[name])
    for name in LOSS_TARGETS:
        if name in target_shapes:
            num = target_shapes[name][0]
            weights = torch.ones(num)
            weights[-1] = no_object_weight
            out[name] = weights
    missing = sorted(set(target_shapes) - set(out))
    problems = [(unknown, "mmdet keys without a rule"), (clashes, "targets mapped twice"),
                (wrong, "wrong target name or shape"), (bad_index, "relative_position_index unlike Swin's"),
                (missing, "transformers keys left without a source")]
    report = [f"{what} ({len(items)}): {', '.join(items[:5])}{' ...' if len(items) > 5 else ''}"
              for items, what in problems if items]
    if report:
        raise ConfigError("mmdet -> transformers Mask2Former conversion failed: " + "; ".join(report))
    return out


def build_converted_model(mmdet_state: Mapping[str, Any], arch: Mask2FormerArch = Mask2FormerArch(),
                          classes: tuple[str, ...] = MMDET_COCO_CLASSES):
    """A transformers Mask2FormerForUniversalSegmentation holding the mmdet weights (eval mode, float32)."""
    import torch
    from transformers import Mask2FormerForUniversalSegmentation

    config = hf_config(arch, classes)
    with torch.device("meta"):
        skeleton = Mask2FormerForUniversalSegmentation(config)
    shapes = {k: tuple(v.shape) for k, v in skeleton.state_dict().items()}
    converted = convert_state_dict(strip_prefix(mmdet_state), shapes, arch.window_size, arch.no_object_weight)
    model = Mask2FormerForUniversalSegmentation(config)
    model.load_state_dict({k: v.float() for k, v in converted.items()}, strict=True)
    return model.eval()


# ---------------------------------------------------------------- checkpoint files and the cached conversion

CONVERTER_VERSION = "1"
MANIFEST = "conversion.json"


def load_mmdet_checkpoint(path: str | Path, trusted_sha256: str | None = None) -> dict[str, Any]:
    """An mmdet .pth's state dict and meta. Loaded with torch's weights_only unpickler; only a file whose sha256
    starts with `trusted_sha256` (the published checkpoint) may fall back to full unpickling."""
    import pickle

    import torch

    try:
        ckpt = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if not (trusted_sha256 and sha256_file(path).startswith(trusted_sha256)):
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(f"{path} is not a plain mmdet checkpoint (weights-only load failed: {first})") from None
        ckpt = torch.load(str(path), map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises several types for a file that is no checkpoint at all
        raise ConfigError(f"Could not read the mmdet checkpoint {path}: {type(exc).__name__}: {exc}") from None
    if not isinstance(ckpt, dict):
        raise ConfigError(f"{path} holds a {type(ckpt).__name__}, not an mmdet checkpoint")
    return ckpt


def checkpoint_classes(ckpt: Mapping[str, Any]) -> tuple[str, ...]:
    """The class names an mmdet checkpoint records (meta.CLASSES), which must be COCO's 80 in mmdet's order."""
    recorded = (ckpt.get("meta") or {}).get("CLASSES")
    if recorded is not None and tuple(recorded) != MMDET_COCO_CLASSES:
        raise ConfigError(f"the checkpoint's classes are not mmdet's 80 COCO things in order: {tuple(recorded)[:5]}...")
    return MMDET_COCO_CLASSES


def convert_checkpoint(path: str | Path, out_dir: str | Path, trusted_sha256: str | None = None,
                       arch: Mask2FormerArch = Mask2FormerArch()) -> dict[str, str]:
    """Convert an mmdet Mask2Former .pth into a transformers folder (config.json, model.safetensors, conversion.json)
    written atomically; returns the manifest (source and output sha256)."""
    import shutil

    out_dir = Path(out_dir)
    ckpt = load_mmdet_checkpoint(path, trusted_sha256)
    model = build_converted_model(ckpt, arch, checkpoint_classes(ckpt))
    tmp = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(str(tmp), safe_serialization=True)
    manifest = {"source": Path(path).name, "source_sha256": sha256_file(path),
                "safetensors_sha256": sha256_file(tmp / "model.safetensors"), "converter_version": CONVERTER_VERSION}
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.rename(out_dir)
    return manifest


def cached_conversion(out_dir: Path, source_sha256: str) -> dict[str, str] | None:
    """The manifest of a finished conversion of that source whose safetensors still hash as recorded, else None."""
    try:
        manifest = json.loads((out_dir / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    if manifest.get("source_sha256") != source_sha256 or manifest.get("converter_version") != CONVERTER_VERSION:
        return None
    if sha256_file(out_dir / "model.safetensors") != manifest.get("safetensors_sha256"):
        return None
    return manifest


def converted_dir(root: Path, source_sha256: str) -> Path:
    """Where the conversion of the checkpoint with that sha256 is cached under `root` (the mqeval cache)."""
    from mqeval.scorers.detectors import MMDET_MODEL

    return Path(root) / "geneval-detector" / f"{MMDET_MODEL}-transformers-{source_sha256[:16]}"


def official_converted(options: Any) -> tuple[Path, str]:
    """The official GenEval checkpoint converted to transformers: (folder, safetensors sha256).

    A folder written by `mqeval convert-geneval-detector` given as the weights folder is used as it is (after
    checking that its source is the official checkpoint and its safetensors hash); otherwise the .pth is found or
    downloaded and hash-checked (resolve_mmdet_checkpoint), converted on first use and cached by its sha256.
    """
    from mqeval.paths import cache_dir
    from mqeval.scorers.detectors import MMDET_CHECKPOINT_SHA256, resolve_mmdet_checkpoint

    given = Path(options.weights_dir) if options.weights_dir is not None else None
    if given is not None and (given / MANIFEST).is_file():
        source_sha = str(json.loads((given / MANIFEST).read_text()).get("source_sha256", ""))
        manifest = cached_conversion(given, source_sha)
        if manifest is None or not source_sha.startswith(MMDET_CHECKPOINT_SHA256):
            raise ConfigError(f"{given} is not an intact conversion of the official checkpoint "
                              f"(source sha256 {source_sha[:16] or '?'}..., expected {MMDET_CHECKPOINT_SHA256}...)")
        return given, manifest["safetensors_sha256"]
    checkpoint, sha = resolve_mmdet_checkpoint(options)
    out_dir = converted_dir(Path(options.cache_root) if options.cache_root is not None else cache_dir(), sha)
    manifest = cached_conversion(out_dir, sha)
    if manifest is None:
        manifest = convert_checkpoint(checkpoint, out_dir, trusted_sha256=MMDET_CHECKPOINT_SHA256)
    return out_dir, manifest["safetensors_sha256"]
