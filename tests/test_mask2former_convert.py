"""mmdet -> transformers Mask2Former conversion: layouts checked against mmdet's own formulas, strictness."""
from __future__ import annotations

import pytest
import torch

from mqeval.errors import ConfigError
from mqeval.scorers import mask2former_convert as C


def mmdet_relative_index(window: int) -> torch.Tensor:
    """mmdet 2.x WindowMSA's buffer: double_step_seq(2W - 1, W, 1, W), plus its transpose, flipped."""
    step = 2 * window - 1
    seq = (torch.arange(0, step * window, step)[:, None] + torch.arange(window)[None]).reshape(1, -1)
    return (seq + seq.T).flip(1)


def test_mmdet_relative_position_index_is_swins():
    for window in (2, 7, 12):
        assert torch.equal(mmdet_relative_index(window), C._swin_relative_index(window))


def test_patch_merging_reorder_matches_mmdets_unfold_merging():
    from transformers.models.swin.modeling_swin import SwinPatchMerging

    torch.manual_seed(0)
    channels, height, width = 3, 4, 6
    x = torch.randn(2, height * width, channels)
    norm, reduction = torch.nn.LayerNorm(4 * channels), torch.nn.Linear(4 * channels, 2 * channels, bias=False)
    torch.nn.init.normal_(norm.weight)
    torch.nn.init.normal_(norm.bias)
    # mmdet: nn.Unfold(2, stride=2) on B,C,H,W -> channel c of kernel offset k at c * 4 + k
    unfolded = torch.nn.Unfold(kernel_size=2, stride=2)(x.view(2, height, width, channels).permute(0, 3, 1, 2))
    reference = reduction(norm(unfolded.transpose(1, 2)))
    merging = SwinPatchMerging(channels)
    merging.norm.weight.data = C._unfold_to_concat(norm.weight.data)
    merging.norm.bias.data = C._unfold_to_concat(norm.bias.data)
    merging.reduction.weight.data = C._unfold_to_concat(reduction.weight.data)
    torch.testing.assert_close(merging(x, (height, width)), reference, rtol=1e-5, atol=1e-6)


def test_every_key_family_has_one_rule():
    assert C.map_key("backbone.norm3.weight")[0][0] == (
        "model.pixel_level_module.encoder.hidden_states_norms.stage4.weight")
    assert C.map_key("panoptic_head.mask_embed.4.bias")[0][0] == (
        "model.transformer_module.decoder.mask_predictor.mask_embedder.2.0.bias")
    assert C.map_key("panoptic_head.pixel_decoder.lateral_convs.0.conv.weight")[0][0] == (
        "model.pixel_level_module.decoder.adapter_1.0.weight")
    qkv = [name for name, _ in C.map_key("backbone.stages.2.blocks.17.attn.w_msa.qkv.weight")]
    assert qkv == [f"model.pixel_level_module.encoder.swin.encoder.layers.2.blocks.17.attention.{p}_proj.weight"
                   for p in "qkv"]
    assert C.map_key("backbone.stages.0.blocks.1.attn.w_msa.relative_position_index") == []
    with pytest.raises(KeyError):
        C.map_key("panoptic_head.something_new.weight")


def test_split_in_proj_keeps_q_k_v_order():
    weight = torch.arange(12.0).reshape(6, 2)
    key = "panoptic_head.transformer_decoder.layers.0.attentions.1.attn.in_proj_weight"
    parts = [fn(weight) for _, fn in C.map_key(key)]
    assert [p[0, 0].item() for p in parts] == [0.0, 4.0, 8.0]


def test_conversion_names_every_problem():
    shapes = {"class_predictor.weight": (81, 8), "class_predictor.bias": (81,), "criterion.empty_weight": (81,)}
    good = {"panoptic_head.cls_embed.weight": torch.zeros(81, 8), "panoptic_head.cls_embed.bias": torch.zeros(81)}
    out = C.convert_state_dict(good, shapes)
    assert out["criterion.empty_weight"][-1].item() == pytest.approx(0.1) and out["criterion.empty_weight"][0] == 1
    with pytest.raises(ConfigError, match="mmdet keys without a rule \\(1\\): panoptic_head.extra"):
        C.convert_state_dict({**good, "panoptic_head.extra": torch.zeros(1)}, shapes)
    with pytest.raises(ConfigError, match="wrong target name or shape"):
        C.convert_state_dict({**good, "panoptic_head.cls_embed.bias": torch.zeros(80)}, shapes)
    with pytest.raises(ConfigError, match="left without a source \\(1\\): class_predictor.bias"):
        C.convert_state_dict({"panoptic_head.cls_embed.weight": torch.zeros(81, 8)}, shapes)
    index = "backbone.stages.0.blocks.0.attn.w_msa.relative_position_index"
    with pytest.raises(ConfigError, match="relative_position_index unlike Swin's"):
        C.convert_state_dict({**good, index: torch.zeros(49, 49, dtype=torch.long)}, shapes)
    assert C.convert_state_dict({**good, index: C._swin_relative_index(7)}, shapes).keys() == out.keys()


def test_checkpoint_classes_must_be_mmdets_coco_order():
    assert C.checkpoint_classes({"meta": {"CLASSES": C.MMDET_COCO_CLASSES}}) == C.MMDET_COCO_CLASSES
    assert C.checkpoint_classes({"state_dict": {}}) == C.MMDET_COCO_CLASSES
    with pytest.raises(ConfigError, match="80 COCO things"):
        C.checkpoint_classes({"meta": {"CLASSES": C.MMDET_COCO_CLASSES[::-1]}})


def test_official_config_maps_key_for_key_onto_transformers_both_ways():
    """Every entry of the official config's state dict (as mmdet 2.x builds it; fixture written by
    scripts/make_geneval_mmdet_fixture.py) lands on the transformers model built from hf_config() with its
    shape, and every transformers entry has a source except the documented unused / loss-only ones."""
    import json
    from pathlib import Path

    from transformers import Mask2FormerForUniversalSegmentation

    recorded = json.loads((Path(__file__).parent / "data/geneval/mmdet_mask2former_swin-s_params.json").read_text())
    assert recorded["config"].endswith("mask2former_swin-s-p4-w7-224_lsj_8x2_50e_coco.py")
    mmdet_state = {}
    for name, shape in recorded["state_dict"]:
        if C.CHECKED_BUFFERS.fullmatch(name):
            mmdet_state[name] = C._swin_relative_index(7).reshape(shape)
        else:
            mmdet_state[name] = torch.empty(shape, device="meta")
    with torch.device("meta"):
        model = Mask2FormerForUniversalSegmentation(C.hf_config())
    target = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    converted = C.convert_state_dict(mmdet_state, target)  # raises on any unmapped, clashing or missing key
    assert set(converted) == set(target)
    assert all(tuple(converted[k].shape) == target[k] for k in target)
    sources = sum(v.numel() for k, v in mmdet_state.items() if not C.CHECKED_BUFFERS.fullmatch(k))
    filled = sum(v.numel() for k, v in converted.items() if k not in C.UNUSED_TARGETS + C.LOSS_TARGETS)
    assert sources == filled  # nothing duplicated, nothing dropped
    assert model.config.num_labels == 80 and model.config.id2label[64] == "mouse"
    assert sum(1 for k in mmdet_state if k.endswith("relative_position_index")) == 24  # 2 + 2 + 18 + 2 blocks


def save_tiny_pth(path, **meta):
    from safetensors.torch import load_file

    from helpers_geneval import TINY_MMDET_WEIGHTS

    torch.save({"state_dict": load_file(str(TINY_MMDET_WEIGHTS)), "meta": meta}, str(path))
    return path


def test_convert_checkpoint_writes_a_checked_folder_and_the_cache_notices_tampering(tmp_path):
    from helpers_geneval import tiny_mmdet_arch
    from mqeval.fileio import sha256_file

    pth = save_tiny_pth(tmp_path / "tiny.pth", CLASSES=C.MMDET_COCO_CLASSES, mmdet_version="2.28.2")
    out = tmp_path / "converted"
    manifest = C.convert_checkpoint(pth, out, arch=tiny_mmdet_arch())
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "conversion.json", "model.safetensors"]
    assert manifest["source_sha256"] == sha256_file(pth)
    assert C.cached_conversion(out, sha256_file(pth)) == manifest
    assert C.cached_conversion(out, "0" * 64) is None  # another source
    (out / "model.safetensors").write_bytes(b"tampered")
    assert C.cached_conversion(out, sha256_file(pth)) is None
    with pytest.raises(ConfigError, match="mmdet -> transformers Mask2Former conversion failed"):
        C.convert_checkpoint(pth, tmp_path / "full", arch=C.Mask2FormerArch())  # Swin-S sizes: every shape wrong


class Arbitrary:
    """Something only full unpickling can rebuild."""


def test_a_pickled_object_is_refused_unless_it_is_the_published_file(tmp_path):
    path = tmp_path / "odd.pth"
    torch.save({"state_dict": {}, "meta": Arbitrary()}, str(path))
    with pytest.raises(ConfigError, match="weights-only load failed"):
        C.load_mmdet_checkpoint(path, trusted_sha256="743b7d99")
    (tmp_path / "junk.pth").write_bytes(b"junk")
    with pytest.raises(ConfigError):
        C.load_mmdet_checkpoint(tmp_path / "junk.pth")


def test_official_weights_from_a_converted_folder_run_in_the_detector(tmp_path):
    import json

    import numpy as np
    from PIL import Image

    from helpers_geneval import tiny_mmdet_arch
    from mqeval.scorers import detectors as D

    out = tmp_path / "converted"
    C.convert_checkpoint(save_tiny_pth(tmp_path / "tiny.pth"), out, arch=tiny_mmdet_arch())
    classes = [line.strip() for line in open(D.__file__.replace("mqeval/scorers/detectors.py",
                                                                "benchmarks/geneval/object_names.txt"))]
    options = D.DetectorOptions(weights="official", weights_dir=out, max_size=(64, 64))
    with pytest.raises(ConfigError, match="not an intact conversion of the official checkpoint"):
        D.load_detector("hf-mask2former", classes, options)
    manifest = json.loads((out / "conversion.json").read_text())
    manifest["source_sha256"] = D.MMDET_CHECKPOINT_SHA256 + manifest["source_sha256"][8:]  # as if it were
    (out / "conversion.json").write_text(json.dumps(manifest))
    detector = D.load_detector("hf-mask2former", classes, options)
    assert detector.weights == f"official-converted:{manifest['safetensors_sha256']}"
    assert "official mmdetection checkpoint" in detector.notes[0]
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 48, 3), dtype=np.uint8))
    found = detector.detect_images([image])[0]
    assert len(found) == 100 and all(d.mask.shape == (40, 48) for d in found)
