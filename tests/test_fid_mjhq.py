"""MJHQ-30K FID plug-in: equal to torch-fidelity called directly (overall and per category), reference cache,
missing images. Inception runs at 75 px inside (see helpers_fid.shrink_inception)."""
from __future__ import annotations

import dataclasses
import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest
from mqeval.benchmarks.catalog import load_benchmark
from mqeval.contract.scoring import ScoreOptions
from mqeval.errors import DataIntegrityError
from PIL import Image

from helpers_fid import random_image, torch_fidelity_fid

CATEGORIES = ("animals", "logo")


def make_mjhq(root, rng, per_category=10):
    """A small MJHQ-shaped data folder: meta_data.json and <category>/<id>.jpg."""
    meta = {}
    for c, cat in enumerate(CATEGORIES):
        (root / cat).mkdir(parents=True)
        for i in range(per_category):
            key = f"{c:02d}{i:06x}"
            meta[key] = {"category": cat, "prompt": f"a {cat} picture number {i}"}
            random_image(rng, (80, 64)).save(root / cat / f"{key}.jpg", quality=95)
    (root / "meta_data.json").write_text(json.dumps(meta))
    return meta


def mjhq_benchmark(n):
    bench = load_benchmark("mjhq-30k-fid")
    return type(bench)(dataclasses.replace(bench.spec, options={**bench.spec.options, "num_prompts": n}))


def test_mjhq_fid_equals_torch_fidelity(tmp_path, inception_weights, small_inception, fresh_cache):
    rng = np.random.default_rng(2)
    data = tmp_path / "mjhq"
    meta = make_mjhq(data, rng, per_category=6)
    bench = mjhq_benchmark(12)
    samples = bench.samples(data)
    assert [s.sample_id for s in samples] == list(meta) and samples[7].metadata == {"category": "logo"}
    out = tmp_path / "run"
    out.mkdir()
    generated = []
    for s in samples:
        image = random_image(rng, (64, 64))
        generated.append(image)
        image.save(bench.image_path(out, s, 0))
    assert bench.image_path(out, samples[3], 0) == out / "00003.png"
    options = ScoreOptions(weights_path=str(inception_weights), data_dir=str(data), cache_dir=tmp_path / "cache",
                           batch_size=8)
    result = bench.score(out, samples, options)
    assert set(result.metrics) == {"fid", "fid_animals", "fid_logo"} and not any(result.higher_is_better.values())
    assert result.metrics["fid"] > 0 and "computed" in result.scorer.notes[2]

    real = {key: Image.open(data / v["category"] / f"{key}.jpg").convert("RGB") for key, v in meta.items()}
    expected = torch_fidelity_fid(generated, list(real.values()), inception_weights, tmp_path / "tf-all")
    assert result.metrics["fid"] == pytest.approx(expected, rel=1e-5)
    logo = [k for k, v in meta.items() if v["category"] == "logo"]
    expected_logo = torch_fidelity_fid(generated[6:], [real[k] for k in logo], inception_weights, tmp_path / "tf-logo")
    assert result.metrics["fid_logo"] == pytest.approx(expected_logo, rel=1e-5)

    assert bench.aggregatable is False


def test_missing_images_and_counts_are_reported(tmp_path, inception_weights, small_inception, fresh_cache):
    rng = np.random.default_rng(3)
    data = tmp_path / "mjhq"
    make_mjhq(data, rng, per_category=3)
    bench = mjhq_benchmark(6)
    samples = bench.samples(data)
    out = tmp_path / "run"
    out.mkdir()
    for s in samples[:4]:
        random_image(rng).save(bench.image_path(out, s, 0))
    result = bench.score(out, samples, ScoreOptions(weights_path=str(inception_weights), data_dir=str(data),
                                                    cache_dir=tmp_path / "cache"))
    assert result.warnings[0].startswith("2 of 6 generated images are missing or unreadable; FID uses the rest")
    assert result.image_issues == {"missing": 2} and result.incomplete == ["2 image(s) missing"]
    assert "biased upward" in result.warnings[1]
    assert [r["image"] for r in result.per_sample][3:] == ["00003.png", None, None]
    assert "fid_animals" in result.metrics and "fid_logo" not in result.metrics  # 3 + 1 images: logo has < 2
    assert result.warnings[2] == "fid_logo not computed: 1 generated image(s) in that category"
    with pytest.raises(DataIntegrityError, match="expected 30000"):
        load_benchmark("mjhq-30k-fid").samples(data)


def test_reference_images_read_from_the_zip_in_place(tmp_path, fresh_cache):
    import zipfile

    import numpy as np
    from mqeval.benchmarks.fid import mjhq

    rng = np.random.default_rng(6)
    folders = tmp_path / "folders"
    meta = make_mjhq(folders, rng, per_category=2)
    packed = tmp_path / "packed"
    packed.mkdir()
    (packed / "meta_data.json").write_text((folders / "meta_data.json").read_text())
    with zipfile.ZipFile(packed / "mjhq30k_imgs.zip", "w") as archive:
        for key, v in meta.items():
            archive.write(folders / v["category"] / f"{key}.jpg", f"{v['category']}/{key}.jpg")
    data = load_benchmark("mjhq-30k-fid").spec.data
    from_dir = mjhq.reference_images(data, set(CATEGORIES), folders, fresh_cache)
    from_zip = mjhq.reference_images(data, set(CATEGORIES), packed, fresh_cache)
    assert [c for c, _ in from_zip.items] == [c for c, _ in from_dir.items] == ["animals"] * 2 + ["logo"] * 2
    for (_, a), (_, b) in zip(from_dir.items, from_zip.items):
        assert np.array_equal(np.asarray(a().convert("RGB")), np.asarray(b().convert("RGB")))
    assert from_zip.content_sha256.startswith("zip:") and from_dir.content_sha256 != from_zip.content_sha256
