"""COCO-30K FID plug-in from a local folder: equal to torch-fidelity called directly; reference statistics cached.
Inception runs at 75 px inside (see helpers_fid.shrink_inception)."""
from __future__ import annotations

import dataclasses
import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest
from mqeval.benchmarks.catalog import load_benchmark
from mqeval.contract.scoring import ScoreOptions
from mqeval.scorers.fid import ReferenceKey
from PIL import Image

from helpers_fid import random_image, torch_fidelity_fid


def test_coco_fid_from_a_local_folder(tmp_path, inception_weights, small_inception):
    rng = np.random.default_rng(4)
    data = tmp_path / "coco"
    data.mkdir()
    lines = []
    for i in range(6):
        random_image(rng, (90, 60)).save(data / f"COCO_val2014_{i:012d}.jpg")
        lines.append(json.dumps({"file_name": f"COCO_val2014_{i:012d}.jpg", "caption": f"caption {i}"}))
    (data / "metadata.jsonl").write_text("\n".join(lines) + "\n")
    bench = load_benchmark("coco-30k-fid")
    bench = type(bench)(dataclasses.replace(bench.spec, options={"num_prompts": 6}))
    samples = bench.samples(data)
    assert [s.prompt for s in samples] == [f"caption {i}" for i in range(6)]
    assert bench.generation.guidance_scale == 3.0 and bench.generation.num_inference_steps == 30
    out = tmp_path / "run"
    out.mkdir()
    gen = [random_image(rng) for _ in samples]
    for s, image in zip(samples, gen):
        image.save(bench.image_path(out, s, 0))
    result = bench.score(out, samples, ScoreOptions(weights_path=str(inception_weights), data_dir=str(data),
                                                    cache_dir=tmp_path / "cache"))
    real = [Image.open(data / f"COCO_val2014_{i:012d}.jpg").convert("RGB") for i in range(6)]
    assert set(result.metrics) == {"fid"}
    expected = torch_fidelity_fid(gen, real, inception_weights, tmp_path / "tf")
    assert result.metrics["fid"] == pytest.approx(expected, rel=1e-5)

    again = bench.score(out, samples, ScoreOptions(weights_path=str(inception_weights), data_dir=str(data),
                                                   cache_dir=tmp_path / "cache"))
    assert "computed" in result.scorer.notes[2] and "from cache" in again.scorer.notes[2]
    assert again.metrics == result.metrics and len(list((tmp_path / "cache" / "fid").glob("*.npz"))) == 1


def test_reference_cache_key_covers_content_preprocessing_and_weights():
    base = ReferenceKey(dataset="coco-30k-fid", content_sha256="abc")
    assert base.digest() == ReferenceKey(dataset="coco-30k-fid", content_sha256="abc").digest()
    for changed in (ReferenceKey("coco-30k-fid", "abd"), ReferenceKey("coco-30k-fid", "abc", preprocess="x"),
                    ReferenceKey("coco-30k-fid", "abc", weights="sha256:0")):
        assert changed.digest() != base.digest()
