"""Content-keyed scorer caches: rescoring unchanged images runs no detector, CLIP, Inception or VQA model."""
from __future__ import annotations

import numpy as np
import pytest
from mqeval.benchmarks.catalog import load_benchmark
from mqeval.benchmarks.shapes.oracle import write_oracle
from mqeval.contract.detection import Detection
from mqeval.contract.scoring import ScoreOptions
from mqeval.scorers.content_cache import ContentCache, to_bytes
from mqeval.scorers.detection_cache import (
    CachedColorClassifier,
    CachedDetector,
    arrays_to_detections,
    detections_to_arrays,
)
from PIL import Image


def test_shapes_rescoring_runs_no_detector(tmp_path, monkeypatch):
    import mqeval.benchmarks.shapes.detector as detector

    bench = load_benchmark("shapes")
    write_oracle(bench, tmp_path / "images", size=32, limit=6)
    samples = bench.samples()[:6]
    calls = []
    real = detector.detect
    monkeypatch.setattr(detector, "detect", lambda image, *a, **k: calls.append(1) or real(image, *a, **k))
    options = ScoreOptions(cache_dir=tmp_path / "cache")
    first = bench.score(tmp_path / "images", samples, options)
    assert len(calls) == 24
    again = bench.score(tmp_path / "images", samples, options)
    assert len(calls) == 24, "rescoring unchanged images must not run the detector"
    assert again.metrics == first.metrics and again.per_sample == first.per_sample
    # A changed image is detected again, and only that one.
    path = bench.image_path(tmp_path / "images", samples[0], 0)
    Image.new("RGB", (32, 32), (255, 255, 255)).save(path)
    bench.score(tmp_path / "images", samples, options)
    assert len(calls) == 25


class CountingDetector:
    name, weights, notes = "counting", "w1", ("test",)

    def __init__(self):
        self.seen = []

    def detect(self, paths):
        self.seen += list(paths)
        mask = np.zeros((4, 4), dtype=bool)
        mask[1:3, 1:3] = True
        return [[Detection("cat", 0.75, (1.0, 1.0, 3.0, 3.0), mask), Detection("dog", 0.5, (0.0, 0.0, 1.5, 2.0))]
                for _ in paths]


def test_geneval_detections_and_colours_are_cached_by_content(tmp_path):
    paths = []
    for i, colour in enumerate([(255, 0, 0), (0, 255, 0), (255, 0, 0)]):
        paths.append(tmp_path / f"{i}.png")
        Image.new("RGB", (4, 4), colour).save(paths[-1])
    inner = CountingDetector()
    detector = CachedDetector(inner, lambda identity: ContentCache(tmp_path / "cache", "det", identity), ["cat"])
    first = detector.detect(paths)
    assert len(inner.seen) == 2, "the two files with equal content are detected once"
    again = CachedDetector(CountingDetector(), lambda i: ContentCache(tmp_path / "cache", "det", i), ["cat"])
    second = again.detect(paths)
    assert again.detector.seen == [] and len(second) == 3
    for a, b in zip(first[0], second[0]):
        assert (a.label, a.score, a.box, a.color) == (b.label, b.score, b.box, b.color)
        assert (a.mask is None and b.mask is None) or np.array_equal(a.mask, b.mask)
    other = CachedDetector(CountingDetector(), lambda i: ContentCache(tmp_path / "cache", "det", i), ["cat", "x"])
    other.detect(paths[:1])
    assert len(other.detector.seen) == 1, "another class list is another detector identity"

    asked = []
    classify = CachedColorClassifier(lambda image, dets, name: asked.append(name) or ["red"] * len(dets),
                                     ContentCache(tmp_path / "cache", "colour", {"clip": "x"}))
    image = Image.open(paths[0]).convert("RGB")
    assert classify(image, first[0], "cat") == ["red", "red"] == classify(image, second[0], "cat")
    assert asked == ["cat"]
    classify(image, first[0], "dog")
    assert asked == ["cat", "dog"]


def test_detection_arrays_round_trip_without_masks_or_colours():
    dets = [Detection("a", 0.1, (0, 1, 2, 3), None, "red"), Detection("b", 0.9, (1, 1, 2, 2))]
    back = arrays_to_detections(detections_to_arrays(dets))
    assert [(d.label, d.score, d.box, d.mask, d.color) for d in back] == [
        ("a", 0.1, (0.0, 1.0, 2.0, 3.0), None, "red"), ("b", 0.9, (1.0, 1.0, 2.0, 2.0), None, None)]
    assert arrays_to_detections(detections_to_arrays([])) == []


def test_fid_features_are_cached_and_statistics_unchanged(tmp_path):
    import torch
    from mqeval.scorers.fid import InceptionFeatures

    class CheapFeatures(InceptionFeatures):
        def __init__(self):
            self.batch_size, self.workers, self.calls = 2, 1, 0

        def __call__(self, batch):
            self.calls += 1
            pooled = batch.float().mean(dim=(2, 3))  # [N, 3]
            return torch.cat([pooled, pooled ** 2], dim=1).repeat(1, 342)[:, :2048].numpy()  # [N, 2048]

    items = []
    for i in range(5):
        path = tmp_path / f"{i}.png"
        Image.fromarray(np.full((8, 8, 3), 40 * i, dtype=np.uint8)).save(path)
        items.append(("even" if i % 2 == 0 else "odd", path))
    features = CheapFeatures()
    cache = ContentCache(tmp_path / "cache", "fid", {"weights": "cheap"})
    cached = features.cached_stats_by_group(items, cache)
    plain = features.stats_by_group([(group, Image.open(path)) for group, path in items])
    calls = features.calls
    again = features.cached_stats_by_group(items, ContentCache(tmp_path / "cache", "fid", {"weights": "cheap"}))
    assert features.calls == calls, "rescoring computes no features"
    for stats in (cached, again):
        assert set(stats) == set(plain) == {"", "even", "odd"}
        for group in plain:
            assert stats[group].n == plain[group].n
            np.testing.assert_array_equal(stats[group].sum, plain[group].sum)
            np.testing.assert_array_equal(stats[group].outer, plain[group].outer)


def test_vqa_answers_are_cached_but_failures_are_retried(tmp_path):
    from mqeval.contract.scoring import ScorerInfo
    from mqeval.scorers.vqa import CachedVQA

    class Backend:
        info = ScorerInfo(name="fake-vqa", version="1")

        def __init__(self):
            self.asked = []

        def answer_many(self, pairs):
            self.asked += [q for _, q in pairs]
            return [None if q == "fails?" else "yes" for _, q in pairs]

    image = Image.new("RGB", (4, 4), (1, 2, 3))
    pairs = [(image, "is it red?"), (image, "fails?"), (image.copy(), "is it red?")]
    backend = Backend()
    first = CachedVQA(backend, ContentCache(tmp_path, "vqa", {"b": 1})).answer_many(pairs)
    second = CachedVQA(backend, ContentCache(tmp_path, "vqa", {"b": 1})).answer_many(pairs)
    assert first == second == ["yes", None, "yes"]
    assert backend.asked == ["is it red?", "fails?", "fails?"]


def test_disabled_cache_always_computes():
    cache = ContentCache(None, "x", {})
    computed = []
    assert cache.map(["k"], lambda missing: computed.append(missing) or [{"v": np.array(1)}])[0]["v"] == 1
    cache.map(["k"], lambda missing: computed.append(missing) or [{"v": np.array(1)}])
    assert computed == [[0], [0]] and cache.misses == 2


@pytest.mark.parametrize("blob", [b"not an npz", to_bytes({"v": np.arange(50)})[:-30]])
def test_a_damaged_entry_is_recomputed(tmp_path, blob):
    cache = ContentCache(tmp_path, "x", {})
    key = cache.key("a")
    cache._db.execute("INSERT INTO results (key, value) VALUES (?, ?)", (key, blob))
    assert cache.map([key], lambda missing: [{"v": np.array(2)}])[0]["v"] == 2
    assert ContentCache(tmp_path, "x", {}).get(key)["v"] == 2
