"""The tiny cards: one per backbone / decoder family, random weights, runnable offline through the runner."""
from __future__ import annotations

import pytest

from helpers_runner import png_bytes

from mqeval.zoo import card_names, load_card

TINY = [name for name in card_names() if name.startswith("metaquery-tiny")]


def test_every_backbone_and_decoder_family_has_a_tiny_random_card():
    cards = [load_card(name) for name in TINY]
    assert {c.model.backbone.family for c in cards} >= {"causal_lm", "qwen2_5_vl", "llava_onevision"}
    assert {c.model.decoder.family for c in cards} >= {"pixel", "sana", "sd15"}
    for card in cards:
        assert card.checkpoint.random_init and "tiny" in card.tags
        assert card.model.backbone.model_id.startswith("tiny://")
        assert card.model.decoder.family == "pixel" or card.model.decoder.model_id.startswith("tiny://")
        assert card.generation.num_inference_steps <= 4


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in TINY if n != "metaquery-tiny"])
def test_tiny_card_generates_a_benchmark_sample(tmp_path, name):
    from mqeval.runner import generate_images, plan_run

    plan = plan_run("shapes", name, limit=1)
    report = generate_images(plan, tmp_path, batch_size=4, progress=False)
    images = png_bytes(tmp_path / "images")
    assert report.num_written == len(images) == 4
