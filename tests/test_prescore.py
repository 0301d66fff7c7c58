"""`run` scores finished images while the next batch is generated, where the scorer allows it (shapes: the analytic
detector per image, into the content cache that `score` reads), and the final scores are the same."""
from __future__ import annotations

import dataclasses

from mqeval.benchmarks.shapes import detector
from mqeval.contract.scoring import ScoreOptions
from mqeval.generation.sharded_writer import images_dir_of
from mqeval.evaluation.images import generate_images
from mqeval.evaluation.plan import plan_run
from mqeval.evaluation.scoring import score_images
from mqeval.evaluation.worker_plan import GenerationJob


def test_a_run_detects_each_image_while_generating_and_score_finds_it_done(tmp_path, monkeypatch):
    plan = plan_run("shapes", "metaquery-tiny", limit=2)
    options = ScoreOptions(cache_dir=tmp_path / "cache", resolution=plan.settings.resolution)
    calls: list[int] = []
    real = detector.detect
    monkeypatch.setattr(detector, "detect", lambda image: calls.append(1) or real(image))

    generate_images(plan, GenerationJob(tmp_path / "run", batch_size=4, progress=False), options)
    assert len(calls) == 8  # 2 prompts x 4 images, each detected once, on the writer thread
    images = images_dir_of(tmp_path / "run")
    result = score_images(plan.benchmark, plan.samples, images, options)
    assert len(calls) == 8  # nothing left to detect

    fresh = score_images(plan.benchmark, plan.samples, images, dataclasses.replace(options, cache_dir=tmp_path / "c2"))
    assert len(calls) == 16 and fresh.per_sample == result.per_sample and fresh.metrics == result.metrics


def test_generate_alone_does_no_scoring_work(tmp_path, monkeypatch):
    plan = plan_run("shapes", "metaquery-tiny", limit=1)
    calls: list[int] = []
    monkeypatch.setattr(detector, "detect", lambda image: calls.append(1))
    generate_images(plan, GenerationJob(tmp_path / "run", batch_size=4, progress=False))
    assert calls == []
