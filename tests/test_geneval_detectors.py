"""Detector backends: mmdet-style post-processing by hand, mmdet result conversion, a tiny random HF Mask2Former."""
from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest
import torch
from PIL import Image

from helpers_geneval import save_tiny_mask2former
from mqeval.errors import ConfigError, DataIntegrityError, UserError
from mqeval.scorers import detectors as D

CLASSES = [line.strip() for line in open(D.__file__.replace("mqeval/scorers/detectors.py",
                                                               "benchmarks/geneval/object_names.txt"))]


def test_masks_to_boxes_uses_mmdet_convention():
    masks = torch.zeros(2, 6, 8, dtype=torch.bool)
    masks[0, 1:4, 2:7] = True  # rows 1..3, cols 2..6
    boxes = D.masks_to_boxes(masks)
    assert boxes[0].tolist() == [2.0, 1.0, 7.0, 4.0]  # x0, y0, last x + 1, last y + 1
    assert boxes[1].tolist() == [0.0, 0.0, 0.0, 0.0]  # empty mask


def test_instance_postprocess_by_hand():
    # two queries, two classes (+ no-object); query 0 says class 1, query 1 says class 0
    class_logits = torch.log(torch.tensor([[0.1, 0.6, 0.3], [0.5, 0.2, 0.3]]))
    mask_logits = torch.full((2, 4, 4), -5.0)
    mask_logits[0, :2, :2] = 2.0  # query 0: top-left 2x2
    mask_logits[1, 2:, 1:4] = 1.0  # query 1: bottom rows, cols 1..3
    labels, scores, masks, boxes = D.instance_postprocess(class_logits, mask_logits, max_per_image=2)
    got = sorted(zip(labels.tolist(), scores.tolist(), boxes.tolist()), key=lambda r: -r[1])
    s0 = 0.6 * torch.sigmoid(torch.tensor(2.0)).item()
    s1 = 0.5 * torch.sigmoid(torch.tensor(1.0)).item()
    assert got[0][0] == 1 and got[0][1] == pytest.approx(s0, rel=1e-5) and got[0][2] == [0, 0, 2, 2]
    assert got[1][0] == 0 and got[1][1] == pytest.approx(s1, rel=1e-5) and got[1][2] == [1, 2, 4, 4]
    assert masks.dtype == torch.bool and masks.shape == (2, 4, 4)


def test_detections_from_mmdet_result():
    bbox = [np.zeros((0, 5), np.float32) for _ in CLASSES]
    bbox[CLASSES.index("dog")] = np.array([[1, 2, 30, 40, 0.95], [5, 5, 9, 9, 0.2]], np.float32)
    segm = [[] for _ in CLASSES]
    segm[CLASSES.index("dog")] = [np.ones((48, 64), bool), np.zeros((48, 64), bool)]
    dets = D.detections_from_mmdet((bbox, segm), CLASSES)
    assert [(d.label, round(d.score, 2), d.box) for d in dets] == [("dog", 0.95, (1, 2, 30, 40)),
                                                                   ("dog", 0.2, (5, 5, 9, 9))]
    assert dets[0].mask.shape == (48, 64) and dets[0].mask.all()
    assert D.detections_from_mmdet(bbox, CLASSES)[0].mask is None  # box-only results
    with pytest.raises(ValueError):
        D.detections_from_mmdet(bbox[:3], CLASSES)


def test_mmdet_input_matches_the_test_pipeline():
    assert D.rescale_size(512, 512) == (800, 800)
    assert D.rescale_size(1024, 512) == (1333, 667)  # long edge binds
    img = Image.new("RGB", (50, 30), (123, 116, 103))
    pixels, resized, original = D.mmdet_input(img, max_size=(100, 60))
    assert (resized, original) == ((60, 100), (30, 50))
    assert pixels.shape == (3, 64, 128) and pixels.dtype == torch.float32  # padded to multiples of 32
    # mmcv.imnormalize: float32 (x - mean), times the float64 1 / std, rounded to float32 (not a division)
    stdinv = 1 / np.float64(np.float32(58.395))
    assert pixels[0, 0, 0].item() == np.float32(np.float64(np.float32(123) - np.float32(123.675)) * stdinv)
    assert pixels[0, -1, -1].item() == np.float32(np.float64(np.float32(128) - np.float32(123.675)) * stdinv)


def test_resize_is_the_identity_at_scale_one_and_keeps_uint8():
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 255, (20, 30, 3), dtype=np.uint8)
    assert D.resize_bilinear(pixels, 30, 20) is pixels
    out = D.resize_bilinear(pixels, 60, 40)
    assert out.shape == (40, 60, 3) and out.dtype == np.uint8
    assert abs(out.astype(int).mean() - pixels.astype(int).mean()) < 3


def test_unknown_weight_set_is_a_config_error():
    with pytest.raises(ConfigError, match="official, hf"):
        D.load_detector("hf-mask2former", CLASSES, D.DetectorOptions(weights="detectron2"))


def test_backend_choice_and_registry():
    assert D.default_backend() == ("mmdet-mask2former" if D.mmdet_available() else "hf-mask2former")
    assert set(D.DETECTORS.names()) == {"mmdet-mask2former", "hf-mask2former"}
    if not D.mmdet_available():
        with pytest.raises(UserError, match="mmdetection 2.x"):
            D.load_detector("mmdet-mask2former", CLASSES, D.DetectorOptions())


def test_mmdet_checkpoint_is_checked_against_its_published_hash(tmp_path):
    (tmp_path / f"{D.MMDET_MODEL}.pth").write_bytes(b"not the checkpoint")
    with pytest.raises(DataIntegrityError, match="743b7d99"):
        D.resolve_mmdet_checkpoint(D.DetectorOptions(weights_dir=tmp_path, cache_root=tmp_path / "cache"))


def test_tiny_hf_mask2former_end_to_end(tmp_path):
    folder = save_tiny_mask2former(tmp_path / D.HFMask2FormerDetector.local_folder)
    options = D.DetectorOptions(weights_dir=tmp_path, batch_size=2, max_size=(96, 64), weights="hf")
    det = D.load_detector("hf-mask2former", CLASSES, options)
    assert det.weights == f"local:{folder}" and "NOT the official" in det.notes[0]
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 255, (40, 56, 3), dtype=np.uint8)) for _ in range(3)]
    batched = det.detect_images(images)
    single = [det.detect_images([im])[0] for im in images]
    assert len(batched) == 3
    for dets, ref in zip(batched, single):
        assert len(dets) == 100  # top 100 of 8 queries x 80 classes, as mmdet's max_per_image
        np.testing.assert_allclose(sorted(d.score for d in dets), sorted(d.score for d in ref), rtol=1e-4, atol=1e-6)
        assert max(dets, key=lambda d: d.score).label == max(ref, key=lambda d: d.score).label
        for d in dets:
            assert d.label in CLASSES and 0.0 <= d.score <= 1.0
            assert d.mask.shape == (40, 56) and d.mask.dtype == bool
            if d.mask.any():
                ys, xs = np.nonzero(d.mask)
                assert d.box == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
    with pytest.raises(ConfigError, match="predicts 80 classes"):
        D.HFMask2FormerDetector(CLASSES[:10], options)


def test_mmdet_config_is_found_in_a_checkout_or_a_pip_install(tmp_path):
    checkout = tmp_path / "src" / "configs" / "mask2former"
    checkout.mkdir(parents=True)
    (checkout / f"{D.MMDET_MODEL}.py").write_text("")
    assert D.mmdet_config_path(tmp_path / "src" / "mmdet") == checkout / f"{D.MMDET_MODEL}.py"
    mim = tmp_path / "site" / "mmdet" / ".mim" / "configs" / "mask2former"
    mim.mkdir(parents=True)
    (mim / f"{D.MMDET_MODEL}.py").write_text("")
    assert D.mmdet_config_path(tmp_path / "site" / "mmdet") == mim / f"{D.MMDET_MODEL}.py"
    with pytest.raises(ConfigError, match="not found"):
        D.mmdet_config_path(tmp_path / "nowhere" / "mmdet")
