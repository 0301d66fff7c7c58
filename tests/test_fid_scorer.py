"""FID scorer: MetaQuery's preprocessing, float64 statistics, the distance, and the full-size Inception path
against torch-fidelity called directly."""
from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest
import torch
from PIL import Image

from helpers_fid import random_image, torch_fidelity_fid
from mqeval.scorers import fid as F


def test_preprocessing_is_bicubic_short_side_256_then_centre_crop():
    rng = np.random.default_rng(0)
    image = random_image(rng, (300, 200))
    out = F.preprocess(image)
    assert out.dtype == torch.uint8 and out.shape == (3, 256, 256)
    expected = np.asarray(image.resize((384, 256), Image.BICUBIC).crop((64, 0, 320, 256)))
    assert np.array_equal(out.permute(1, 2, 0).numpy(), expected)
    assert F.preprocess(random_image(rng, (256, 256))).shape == (3, 256, 256)
    assert F.preprocess(image.convert("L")).shape == (3, 256, 256)  # RGB first


def test_statistics_and_distance_match_torch_fidelity():
    from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric

    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(40, 16)), rng.normal(0.3, 1.2, size=(30, 16))
    sa, sb = F.FeatureStats(16), F.FeatureStats(16)
    sa.update(a[:25]), sa.update(a[25:]), sb.update(b)
    mu, cov = sa.mean_cov()
    np.testing.assert_allclose(mu, a.mean(0)), np.testing.assert_allclose(cov, np.cov(a, rowvar=False))
    ref = fid_statistics_to_metric(fid_features_to_statistics(torch.from_numpy(a)),
                                   fid_features_to_statistics(torch.from_numpy(b)), False)
    ours = F.frechet_distance(*sa.mean_cov(), *sb.mean_cov())
    assert ours == pytest.approx(ref["frechet_inception_distance"], rel=1e-9)
    assert F.frechet_distance(mu, cov, mu, cov) == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError):
        F.FeatureStats(16).mean_cov()


@pytest.mark.slow
def test_full_size_inception_matches_torch_fidelity(tmp_path, inception_weights):
    rng = np.random.default_rng(5)
    gen, ref = [random_image(rng) for _ in range(6)], [random_image(rng) for _ in range(6)]
    feats = F.InceptionFeatures(str(inception_weights))
    stats = [feats.stats_by_group([("", im) for im in images])[""] for images in (gen, ref)]
    ours = F.frechet_distance(*stats[1].mean_cov(), *stats[0].mean_cov())
    assert ours == pytest.approx(torch_fidelity_fid(gen, ref, inception_weights, tmp_path), rel=1e-5)
