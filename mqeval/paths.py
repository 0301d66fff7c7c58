"""Where mqeval finds its declarative files and caches."""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
BENCHMARK_SPECS_DIR = REPO_ROOT / "benchmarks"
MODEL_ZOO_DIR = REPO_ROOT / "model_zoo"
PAPER_RESULTS_DIR = REPO_ROOT / "results" / "paper"


def cache_dir() -> Path:
    """Downloads, reference statistics, judge responses. `MQEVAL_CACHE` overrides the default."""
    return Path(os.environ.get("MQEVAL_CACHE", Path.home() / ".cache" / "mqeval"))
