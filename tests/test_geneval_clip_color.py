"""GenEval colour classifier plumbing: masked crop on #999999, templates, zero-shot weights, batching, local load."""
from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mqeval.contract.detection import Detection
from mqeval.scorers.clip_color import (
    COLORS,
    TEMPLATES,
    ClipColorClassifier,
    ClipColorConfig,
    masked_crop,
    resolve_clip_source,
)
from PIL import Image

from helpers_geneval import save_tiny_open_clip

PALETTE = {"red": (255, 0, 0), "blue": (0, 0, 255), "green": (0, 160, 0), "white": (255, 255, 255),
           "black": (0, 0, 0), "yellow": (255, 255, 0), "orange": (255, 140, 0), "purple": (128, 0, 128),
           "pink": (255, 150, 200), "brown": (120, 70, 20)}


def scene():
    """A red square (rows 10-29, cols 20-39) on a blue background, 48x64."""
    arr = np.zeros((48, 64, 3), np.uint8)
    arr[...] = PALETTE["blue"]
    arr[10:30, 20:40] = PALETTE["red"]
    mask = np.zeros((48, 64), bool)
    mask[10:30, 20:40] = True
    return Image.fromarray(arr), mask


class ColourWordCLIP(torch.nn.Module):
    """A transparent stand-in for CLIP: text -> one-hot of the colour word it contains; image -> one-hot of the
    palette colour nearest to the crop's mean pixel. It makes the classifier's answer a function of the crop."""

    def __init__(self, tokenizer):
        super().__init__()
        self.ids = [tokenizer.encode(c)[0] for c in COLORS]
        self.seen_images = []

    def encode_text(self, tokens):
        return torch.stack([torch.tensor([float(i in row.tolist()) for i in self.ids]) for row in tokens])

    def encode_image(self, images):
        self.seen_images.append(images)
        means = images.mean(dim=(2, 3)) * 255
        palette = torch.tensor([PALETTE[c] for c in COLORS], dtype=torch.float32)
        nearest = torch.cdist(means, palette).argmin(dim=1)
        return F.one_hot(nearest, len(COLORS)).float()


def to_tensor(image):
    return torch.from_numpy(np.asarray(image.resize((8, 8)), np.float32) / 255).permute(2, 0, 1)


def stub_classifier(**config):
    import open_clip

    tokenizer = open_clip.get_tokenizer("ViT-L-14-quickgelu")
    return ClipColorClassifier(ColourWordCLIP(tokenizer), to_tensor, tokenizer, "cpu", ClipColorConfig(**config))


def test_masked_crop_pastes_object_on_grey_and_crops_to_box():
    image, mask = scene()
    box = (18.4, 8.6, 42.0, 32.0)  # PIL rounds: (18, 9, 42, 32)
    crop = np.asarray(masked_crop(image, box, mask))
    assert crop.shape == (23, 24, 3)
    assert tuple(crop[1, 2]) == PALETTE["red"]  # image row 10, col 20: inside the mask
    assert tuple(crop[0, 0]) == (153, 153, 153)  # outside the mask -> #999999, not the blue background
    assert tuple(crop[-1, -1]) == (153, 153, 153)
    whole = np.asarray(masked_crop(image, box, None, crop=False))
    assert whole.shape == (48, 64, 3) and tuple(whole[0, 0]) == PALETTE["blue"]
    with pytest.raises(ValueError):
        masked_crop(image, box, mask[:10])


def test_templates_and_colours_are_the_official_ones():
    clf = stub_classifier()
    assert COLORS == ("red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "black", "white")
    assert clf.prompts("fire hydrant")[0] == [
        "a photo of a red fire hydrant", "a photo of a red-colored fire hydrant", "a photo of a red object"]
    assert len(TEMPLATES) == 3 and ClipColorConfig().model == "ViT-L-14-quickgelu"
    assert ClipColorConfig().pretrained == "openai" and ClipColorConfig().background == "#999999"


def test_colour_comes_from_the_masked_crop():
    image, mask = scene()
    det = Detection("cup", 0.9, (20.0, 10.0, 40.0, 30.0), mask)
    assert stub_classifier()(image, [det], "cup") == ["red"]
    # the same object judged on the full, unmasked image is dominated by the blue background
    assert stub_classifier(crop=False)(image, [Detection("cup", 0.9, det.box, None)], "cup") == ["blue"]
    assert stub_classifier()(image, [], "cup") == []


def test_tiny_open_clip_weights_logits_and_batching(tmp_path):
    save_tiny_open_clip(tmp_path / "clip")
    assert resolve_clip_source(ClipColorConfig(), tmp_path)[0] == f"local-dir:{tmp_path / 'clip'}"
    assert resolve_clip_source(ClipColorConfig(), None) == ("ViT-L-14-quickgelu", "openai")
    clf = ClipColorClassifier.load(ClipColorConfig(batch_size=2), "cpu", tmp_path)
    image, mask = scene()
    dets = [Detection("cup", 0.9, (20.0, 10.0, 40.0, 30.0), mask), Detection("cup", 0.8, (0, 0, 16, 16), None),
            Detection("cup", 0.7, (30, 20, 64, 48), None)]

    # zero-shot weights: mean of normalised template embeddings, renormalised, one column per colour
    weights = clf.class_weights("cup")
    assert weights.shape == (16, 10)
    with torch.no_grad():
        emb = F.normalize(clf.model.encode_text(clf.tokenizer(clf.prompts("cup")[3])), dim=-1).mean(0)
    torch.testing.assert_close(weights[:, 3], emb / emb.norm())

    logits = clf.logits(image, dets, "cup")  # batches of 2 and 1
    with torch.no_grad():
        crops = torch.stack([clf.preprocess(masked_crop(image, d.box, d.mask)) for d in dets])
        expected = 100 * F.normalize(clf.model.encode_image(crops), dim=-1) @ weights
    torch.testing.assert_close(logits, expected, rtol=1e-4, atol=1e-4)
    assert clf(image, dets, "cup") == [COLORS[i] for i in expected.argmax(1).tolist()]
