"""Test-session environment: offline, a repo-local cache (tiny models build once), few threads.

Set at import time, before any test module imports torch or transformers.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
TEST_CACHE = REPO_ROOT / ".mqeval_cache" / "tests"  # gitignored; tiny models are keyed by a builder version

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["MQEVAL_CACHE"] = str(TEST_CACHE)
os.environ.setdefault("OMP_NUM_THREADS", "1")  # 2 shared cores; also makes 1- and N-process runs use the same kernels
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.pop("OPENAI_API_KEY", None)  # a test never talks to a real judge


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch) -> Path:
    """An empty MQEVAL_CACHE for tests that check what gets downloaded or built."""
    cache = tmp_path / "mqeval-cache"
    monkeypatch.setenv("MQEVAL_CACHE", str(cache))
    return cache


@pytest.fixture
def small_inception(monkeypatch) -> None:
    """FID tests: Inception runs at 75 px inside (helpers_fid.shrink_inception)."""
    from helpers_fid import shrink_inception

    shrink_inception(monkeypatch)


@pytest.fixture(scope="module")
def inception_weights(tmp_path_factory) -> Path:
    """FID tests: random FID-Inception weights saved once per test module (no download)."""
    from helpers_fid import save_random_inception

    return save_random_inception(tmp_path_factory.mktemp("inception") / "inception.pth")
