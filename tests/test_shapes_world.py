"""The shapes world and its analytic detector: drawing, sampling, legibility at 32/64 px, tolerance to blur/noise."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

from mqeval.benchmarks.geneval.rules import relative_position
from mqeval.benchmarks.shapes.detector import detect
from mqeval.benchmarks.shapes.prompts import counting, position
from mqeval.benchmarks.shapes.world import (
    BACKGROUND,
    COLORS,
    SHAPES,
    TRAIN_SEED_START,
    ObjectSpec,
    Scene,
    describe_scene,
    draw_scene,
    sample_example,
    sample_labelled,
    scene_for_metadata,
)


def test_draw_scene_renders_colours_on_background():
    scene = Scene((ObjectSpec("square", "red", (0.25, 0.25, 0.75, 0.75)),), size=32)
    image = draw_scene(scene)
    assert image.size == (32, 32) and image.mode == "RGB"
    pixels = np.asarray(image)
    assert tuple(pixels[16, 16]) == COLORS["red"] and tuple(pixels[1, 1]) == BACKGROUND
    assert draw_scene(scene, 64).size == (64, 64)
    # Anti-aliasing blends the edge of a box that does not fall on pixel borders.
    edge = np.asarray(draw_scene(Scene((ObjectSpec("square", "red", (0.26, 0.26, 0.74, 0.74)),)), 32))[16, 8]
    assert edge.tolist() not in (list(COLORS["red"]), list(BACKGROUND))


def test_object_spec_rejects_unknown_names():
    with pytest.raises(ValueError, match="unknown shape"):
        ObjectSpec("hexagon", "red", (0, 0, 1, 1))
    with pytest.raises(ValueError, match="unknown colour"):
        ObjectSpec("circle", "teal", (0, 0, 1, 1))


def test_sample_example_is_a_pure_function_of_the_seed():
    scene, caption = sample_example(TRAIN_SEED_START + 7)
    assert sample_example(TRAIN_SEED_START + 7) == (scene, caption)
    assert caption.startswith("a photo of ")
    captions = {sample_example(TRAIN_SEED_START + k)[1] for k in range(40)}
    assert len(captions) > 20
    scene, metadata = sample_labelled(3, tasks=("counting",))
    assert metadata["tag"] == "counting" and len(scene.objects) == metadata["include"][0]["count"]


def test_scenes_satisfy_their_metadata():
    rng = np.random.default_rng(0)
    scene = scene_for_metadata(position("circle", "above", "square"), rng)
    (square,) = [o for o in scene.objects if o.shape == "square"]
    (circle,) = [o for o in scene.objects if o.shape == "circle"]
    assert "above" in relative_position(circle.box, square.box, 0.1)
    scene = scene_for_metadata(counting("triangle", 4), rng)
    assert [o.shape for o in scene.objects] == ["triangle"] * 4
    with pytest.raises(ValueError, match="contradict"):
        scene_for_metadata({**counting("triangle", 2), "exclude": [{"class": "triangle", "count": 2}]}, rng)


def test_describe_scene():
    scene = Scene((ObjectSpec("circle", "red", (0, 0, 0.3, 0.3)), ObjectSpec("square", "orange", (0.5, 0.5, 0.8, 0.8))))
    assert describe_scene(scene) == "a photo of a red circle and an orange square"


def _recovered(image: Image.Image, scene: Scene, min_score: float) -> bool:
    found = sorted((d.label, d.color) for d in detect(image) if d.score > min_score)
    return found == sorted((o.shape, o.color) for o in scene.objects)


@pytest.mark.parametrize("size", [32, 64])
def test_detector_reads_every_drawn_object_exactly(size):
    for seed in range(40):
        scene, _ = sample_labelled(seed, size)
        assert _recovered(draw_scene(scene), scene, 0.9), seed


def test_detector_boxes_match_the_drawn_boxes():
    scene = Scene((ObjectSpec("triangle", "blue", (0.2, 0.3, 0.55, 0.65)),), size=64)
    (found,) = detect(draw_scene(scene))
    assert found.label == "triangle" and found.color == "blue" and found.score > 0.99
    assert np.allclose(found.box, [c * 64 for c in scene.objects[0].box], atol=0.3)
    assert found.mask is not None and found.mask.shape == (64, 64)


@pytest.mark.parametrize("size,blur,noise", [(32, 0.3, 8), (64, 0.6, 8), (64, 1.0, 12)])
def test_detector_tolerates_moderate_blur_and_noise(size, blur, noise):
    rng = np.random.default_rng(size)
    misses = 0
    for seed in range(30):
        scene, _ = sample_labelled(seed, size)
        image = draw_scene(scene).filter(ImageFilter.GaussianBlur(blur))
        pixels = np.asarray(image).astype(float) + rng.normal(0, noise, (size, size, 3))
        degraded = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
        misses += not _recovered(degraded, scene, 0.9)  # 0.9: even GenEval's counting threshold
    assert misses <= 1


def test_detector_gives_low_scores_to_shapes_outside_the_world():
    image = Image.new("RGB", (64, 64), BACKGROUND)
    ImageDraw.Draw(image).rectangle((8, 24, 56, 40), fill=COLORS["red"])  # a 3:1 bar
    ImageDraw.Draw(image).polygon([(12, 44), (30, 44), (21, 62)], fill=COLORS["blue"])  # upside-down triangle
    assert all(d.score < 0.3 for d in detect(image))
    assert detect(Image.new("RGB", (32, 32), BACKGROUND)) == []


def test_every_shape_and_colour_is_legible_at_32px_at_the_smallest_size():
    for k, shape in enumerate(SHAPES):
        for j, color in enumerate(COLORS):
            x0 = 0.1 + 0.07 * j
            scene = Scene((ObjectSpec(shape, color, (x0, 0.15 + 0.1 * k, x0 + 0.2, 0.35 + 0.1 * k)),), size=32)
            assert _recovered(draw_scene(scene), scene, 0.9), (shape, color)


@pytest.mark.parametrize("size", [32, 64])
def test_touching_objects_split_but_speckled_colour_does_not(size):
    touching = Scene((ObjectSpec("triangle", "red", (0.1, 0.3, 0.32, 0.52)),
                      ObjectSpec("diamond", "orange", (0.32, 0.3, 0.54, 0.52))))
    assert _recovered(draw_scene(touching, size), touching, 0.9)
    # A red circle with 45% of its pixels orange: one red circle, not a heap of fragments.
    pixels = np.asarray(draw_scene(Scene((ObjectSpec("circle", "red", (0.2, 0.2, 0.7, 0.7)),)), size)).copy()
    speckle = (pixels == COLORS["red"]).all(-1) & (np.random.default_rng(0).random((size, size)) < 0.45)
    pixels[speckle] = COLORS["orange"]
    (found,) = detect(Image.fromarray(pixels))
    assert (found.label, found.color) == ("circle", "red") and found.score > 0.9
