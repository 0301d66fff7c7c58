"""The tiny cards: one per backbone / decoder family, random weights, runnable offline through the runner."""
from __future__ import annotations

import pytest

from helpers_runner import png_bytes

from mqeval.zoo import card_names, load_card

# The seeded random tiny cards; the metaquery-tiny-official* cards load a committed checkpoint instead.
TINY = [name for name in card_names() if name.startswith("metaquery-tiny") and "official" not in name]


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
    from mqeval.evaluation.images import generate_images
    from mqeval.evaluation.plan import plan_run
    from mqeval.evaluation.worker_plan import GenerationJob

    plan = plan_run("shapes", name, limit=1)
    report = generate_images(plan, GenerationJob(tmp_path, batch_size=4, progress=False))
    images = png_bytes(tmp_path / "images")
    assert report.num_written == len(images) == 4


@pytest.mark.slow
def test_checkpoint_option_loads_saved_weights_and_records_their_hash(tmp_path):
    """Saving the seeded random model and passing it as --checkpoint gives the same images, with its sha256."""
    from mqeval.fileio import sha256_file
    from mqeval.model.loading import load_model
    from mqeval.evaluation.images import generate_images
    from mqeval.evaluation.plan import plan_run
    from mqeval.evaluation.worker_plan import GenerationJob

    random_plan = plan_run("shapes", "metaquery-tiny", limit=1)
    load_model(random_plan.card).save_pretrained(tmp_path / "ckpt")
    plan = plan_run("shapes", "metaquery-tiny", limit=1, checkpoint=tmp_path / "ckpt")
    assert plan.fingerprint()["model"]["checkpoint_sha256"] == sha256_file(tmp_path / "ckpt" / "model.safetensors")
    assert random_plan.fingerprint()["model"]["checkpoint_sha256"] is None
    generate_images(random_plan, GenerationJob(tmp_path / "random", progress=False))
    generate_images(plan, GenerationJob(tmp_path / "loaded", progress=False))
    assert png_bytes(tmp_path / "random" / "images") == png_bytes(tmp_path / "loaded" / "images")
