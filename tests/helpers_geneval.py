"""Tiny random scorer models built from configs (no downloads): a Mask2Former and an open_clip model."""
from __future__ import annotations

import json
from pathlib import Path

TINY_CLIP_CONFIG = {
    "model_cfg": {
        "embed_dim": 16,
        "quick_gelu": True,
        "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 8},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 16, "heads": 2, "layers": 1},
    },
    "preprocess_cfg": {"mean": [0.48145466, 0.4578275, 0.40821073], "std": [0.26862954, 0.26130258, 0.27577711]},
}


def save_tiny_mask2former(folder: Path, num_labels: int = 80, seed: int = 0, boost_label: int | None = None) -> Path:
    """`boost_label`: make every query predict that class confidently (so random weights still pass 0.3)."""
    import torch
    from transformers import Mask2FormerConfig, Mask2FormerForUniversalSegmentation, SwinConfig

    torch.manual_seed(seed)
    backbone = SwinConfig(embed_dim=16, depths=[1, 1, 1, 1], num_heads=[1, 1, 1, 1], window_size=4, image_size=64,
                          out_features=["stage1", "stage2", "stage3", "stage4"])
    config = Mask2FormerConfig(backbone_config=backbone, num_labels=num_labels, hidden_dim=32, num_queries=8,
                               encoder_layers=1, decoder_layers=2, feature_size=32, mask_feature_size=32,
                               dim_feedforward=64, num_attention_heads=2, encoder_feedforward_dim=64,
                               use_pretrained_backbone=False)
    model = Mask2FormerForUniversalSegmentation(config).eval()
    if boost_label is not None:
        with torch.no_grad():
            model.class_predictor.bias[boost_label] += 30.0
    model.save_pretrained(folder)
    return folder


def save_tiny_open_clip(folder: Path, seed: int = 0) -> Path:
    import open_clip
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(seed)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "open_clip_config.json").write_text(json.dumps(TINY_CLIP_CONFIG))
    model = open_clip.create_model(f"local-dir:{folder}")
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "open_clip_model.safetensors"))
    return folder


MMDET_FIXTURE = Path(__file__).parent / "data" / "geneval"
TINY_MMDET_WEIGHTS = MMDET_FIXTURE / "mmdet_mask2former_tiny.safetensors"


def tiny_mmdet_arch():
    """The sizes of the reduced-width mmdet twin that scripts/make_geneval_mmdet_fixture.py built (from its file)."""
    from safetensors import safe_open

    from mqeval.scorers.mask2former_convert import Mask2FormerArch

    with safe_open(str(TINY_MMDET_WEIGHTS), "pt") as handle:
        t = json.loads(handle.metadata()["tiny"])
    return Mask2FormerArch(embed_dims=t["embed_dims"], depths=tuple(t["depths"]), num_heads=tuple(t["num_heads"]),
                           feat_channels=t["feat"], num_queries=t["queries"], encoder_layers=t["enc_layers"],
                           encoder_ffn=t["enc_ffn"], decoder_layers=t["dec_layers"], decoder_ffn=t["dec_ffn"])
