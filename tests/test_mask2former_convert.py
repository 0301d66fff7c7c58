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
