"""The shapes benchmark end to end: prompt set, GenEval layout, and drawn right/wrong images judged correctly."""
from __future__ import annotations

import copy
import dataclasses
import json
from collections import Counter

import numpy as np
import pytest
from mqeval.downloads import DataFile
from mqeval.benchmarks.geneval.rules import TASKS, evaluate_image
from mqeval.benchmarks.catalog import load_benchmark
from mqeval.benchmarks.shapes.detector import detect
from mqeval.benchmarks.shapes.prompts import canonical_jsonl, standard_prompt_set
from mqeval.benchmarks.shapes.world import COLORS, SHAPES, draw_scene, scene_for_metadata
from mqeval.contract.scoring import ScoreOptions
from mqeval.errors import ConfigError, DataIntegrityError, UnknownNameError

OPPOSITE = {"left of": "right of", "right of": "left of", "above": "below", "below": "above"}


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("shapes")


@pytest.fixture(scope="module")
def samples(bench):
    return bench.samples()


def test_prompt_set_is_geneval_shaped_and_deterministic(bench, samples):
    assert len(samples) == 116 and [s.index for s in samples] == list(range(116))
    assert Counter(s.metadata["tag"] for s in samples) == {
        "single_object": 4, "two_object": 12, "counting": 12, "colors": 24, "position": 32, "color_attr": 32,
    }
    assert [s.metadata["tag"] for s in samples] == sorted((s.metadata["tag"] for s in samples), key=TASKS.index)
    assert len({s.sample_id for s in samples}) == 116 and len({s.prompt for s in samples}) == 116
    assert canonical_jsonl(standard_prompt_set()) == canonical_jsonl([s.metadata for s in samples])
    assert bench.generation.images_per_prompt == 4 and bench.generation.seed == 42
    for s in samples:
        meta = s.metadata
        assert list(meta) == (["tag", "include", "exclude", "prompt"] if "exclude" in meta
                              else ["tag", "include", "prompt"])
        assert meta["prompt"] == s.prompt
        if meta["tag"] == "counting":
            (inc,), (exc,) = meta["include"], meta["exclude"]
            assert exc == {"class": inc["class"], "count": inc["count"] + 1} and 2 <= inc["count"] <= 4
        if meta["tag"] == "position":
            reference, subject = meta["include"]
            assert subject["position"][1] == 0 and s.prompt.endswith(f"{subject['position'][0]} a {reference['class']}")
    assert samples[0].sample_id == "single_object-a-circle"


def test_a_changed_generator_or_bad_spec_is_caught(bench):
    wrong = dataclasses.replace(bench.spec, data={"prompts": DataFile(sha256="0" * 64)})
    with pytest.raises(DataIntegrityError, match="prompt generator changed"):
        type(bench)(wrong).samples()
    with pytest.raises(ConfigError, match="data.prompts"):
        type(bench)(dataclasses.replace(bench.spec, data={})).samples()
    with pytest.raises(UnknownNameError, match="standard"):
        type(bench)(dataclasses.replace(bench.spec, options={"prompt_set": "standrd"}))
    with pytest.raises(ConfigError):
        type(bench)(dataclasses.replace(bench.spec, options={"prompt_sets": "standard"}))


def _correct_scene(meta, seed, size):
    return scene_for_metadata(meta, np.random.default_rng(seed), size)


def test_correct_drawings_of_every_prompt_score_one(bench, samples, tmp_path):
    generation = dataclasses.replace(bench.generation, images_per_prompt=2)
    two_images = type(bench)(dataclasses.replace(bench.spec, generation=generation))
    samples = two_images.samples()
    two_images.finalize(tmp_path, samples)
    two_images.finalize(tmp_path, samples)  # idempotent
    for s in samples:
        for j, size in enumerate((32, 64)):
            path = two_images.image_path(tmp_path, s, j)
            path.parent.mkdir(parents=True, exist_ok=True)
            draw_scene(_correct_scene(s.metadata, 1000 * s.index + j, size)).save(path)
    assert (tmp_path / "00115" / "samples" / "0001.png").is_file()
    assert json.loads((tmp_path / "00007" / "metadata.jsonl").read_text()) == samples[7].metadata

    result = two_images.score(tmp_path, samples, ScoreOptions())
    assert result.metrics == {**{task: 1.0 for task in TASKS}, "overall": 1.0}, [
        (r["sample_id"], r["reasons"]) for r in result.per_sample if r["accuracy"] < 1
    ]
    assert all(result.higher_is_better.values())
    record = dict(result.per_sample[0])
    # 32 and 64 px images in one folder of unknown origin: one size is resized to the other, and that is recorded
    assert {i["issue"] for i in record.pop("image_issues")} == {"resized"} and result.image_issues["resized"] == 116
    assert record == {"sample_id": "single_object-a-circle", "tag": "single_object", "correct": [True, True],
                      "accuracy": 1.0, "reasons": ["", ""]}
    assert two_images.aggregate(result.per_sample) == result.metrics

    # Replace image 1 of every counting prompt by one object too many: counting drops to 0.5, overall by 0.5/6.
    for s in samples:
        if s.metadata["tag"] == "counting":
            (inc,) = s.metadata["include"]
            more = {"tag": "counting", "include": [{**inc, "count": inc["count"] + 1}], "prompt": ""}
            draw_scene(_correct_scene(more, s.index, 64)).save(two_images.image_path(tmp_path, s, 1))
    metrics = two_images.score(tmp_path, samples, ScoreOptions()).metrics
    assert metrics["counting"] == 0.5 and metrics["overall"] == pytest.approx(1 - 0.5 / 6)

    # A missing image is left out (GenEval's scorer reads the images that exist), counted, named, and marks the
    # result incomplete.
    two_images.image_path(tmp_path, samples[3], 1).unlink()
    result = two_images.score(tmp_path, samples, ScoreOptions())
    assert result.image_issues["missing"] == 1 and result.incomplete == ["1 image(s) missing"]
    assert result.per_sample[3]["image_issues"][0]["image"] == "00003/samples/0001.png"
    assert any("00003/samples/0001.png" in w for w in result.warnings)


def _other(options, value):
    return next(o for o in options if o != value)


def _wrong_variants(meta):
    """(description, metadata to draw, expected failure kind, index of the clause expected to fail) for a prompt."""
    tag, inc = meta["tag"], meta["include"]
    out = []
    if tag == "single_object":
        other_shape = [{**inc[0], "class": _other(SHAPES, inc[0]["class"])}]
        out.append(("wrong shape", {"include": other_shape}, "missing", ("include", 0)))
    if tag == "two_object":
        out.append(("missing second", {"include": [inc[0]]}, "missing", ("include", 1)))
        out.append(("missing first", {"include": [inc[1]]}, "missing", ("include", 0)))
    if tag == "counting":
        n = inc[0]["count"]
        out.append(("one too few", {"include": [{**inc[0], "count": n - 1}]}, "missing", ("include", 0)))
        out.append(("one too many", {"include": [{**inc[0], "count": n + 1}]}, "excluded", ("exclude", 0)))
    if tag == "colors":
        other_colour = [{**inc[0], "color": _other(COLORS, inc[0]["color"])}]
        out.append(("wrong colour", {"include": other_colour}, "color", ("include", 0)))
    if tag == "position":
        relation = inc[1]["position"][0]
        flipped = [inc[0], {**inc[1], "position": [OPPOSITE[relation], 0]}]
        out.append(("opposite relation", {"include": flipped}, "position", ("include", 1)))
    if tag == "color_attr":
        swapped = [{**inc[0], "color": inc[1]["color"]}, {**inc[1], "color": inc[0]["color"]}]
        out.append(("swapped colours", {"include": swapped}, "color", ("include", 0)))
        out.append(("missing second", {"include": [inc[0]]}, "missing", ("include", 1)))
    return [(what, {"tag": tag, "prompt": "", **draw}, kind, where) for what, draw, kind, where in out]


@pytest.mark.parametrize("size", [32, 64])
def test_wrong_drawings_fail_on_the_right_clause(samples, size):
    checked = Counter()
    for s in samples:
        for what, draw, kind, (section, index) in _wrong_variants(s.metadata):
            image = draw_scene(_correct_scene(draw, s.index + size, size))
            judgement = evaluate_image(s.metadata, detect(image), image=image)
            assert not judgement.correct, (s.prompt, what)
            assert judgement.failure_kind == kind, (s.prompt, what, judgement.reason)
            assert judgement.failed_clause == s.metadata[section][index], (s.prompt, what, judgement.reason)
            checked[s.metadata["tag"]] += 1
    assert set(checked) == set(TASKS) and sum(checked.values()) == 4 + 24 + 24 + 24 + 32 + 64


def test_benchmark_metadata_is_not_mutated_by_sampling(samples):
    before = copy.deepcopy([s.metadata for s in samples])
    for s in samples[:10]:
        _correct_scene(s.metadata, 0, 32)
    assert [s.metadata for s in samples] == before


def test_oracle_writes_the_layout_and_scores_one(bench, tmp_path):
    from mqeval.benchmarks.shapes.oracle import main

    main([str(tmp_path), "--size", "32", "--limit", "30"])
    samples = bench.samples()[:30]
    images = sorted(p.name for p in (tmp_path / "00029" / "samples").iterdir())
    assert images == ["0000.png", "0001.png", "0002.png", "0003.png"]
    assert (tmp_path / "00029" / "metadata.jsonl").is_file() and not (tmp_path / "00030").exists()
    result = bench.score(tmp_path, samples, ScoreOptions())
    assert (result.metrics["overall"] == 1.0
            and set(result.metrics) == {"single_object", "two_object", "counting", "colors", "overall"})
