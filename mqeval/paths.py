"""Where mqeval finds its shipped files (benchmark specs and data, model cards and weights, the paper's tables) and
its caches.

Shipped files are package data, found through importlib.resources, so a wheel works as well as a source checkout.
In the checkout, `mqeval/_data/<name>` are links to the top-level folders `benchmarks/`, `model_zoo/` and
`results/paper/`; building a wheel copies their content. Files a user makes (runs, checkpoints, caches) never go
there: runs and checkpoints to the working directory, caches to `cache_dir()`.
"""
from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

DATA_ROOT = Path(str(resources.files("mqeval") / "_data"))
BENCHMARK_SPECS_DIR = DATA_ROOT / "benchmarks"
MODEL_ZOO_DIR = DATA_ROOT / "model_zoo"
PAPER_RESULTS_DIR = DATA_ROOT / "paper"
# The source checkout, when mqeval runs from one (for the git hash recorded with results); None in a wheel.
SOURCE_CHECKOUT = Path(__file__).resolve().parent.parent
SOURCE_CHECKOUT = SOURCE_CHECKOUT if (SOURCE_CHECKOUT / ".git").exists() else None

# Top-level folders of the checkout that ship as package data: a relative path that starts with one of them and is
# not found in the working directory names the shipped copy (e.g. `model_zoo/weights/metaquery-smol`).
_SHIPPED_FOLDERS = {"benchmarks": BENCHMARK_SPECS_DIR, "model_zoo": MODEL_ZOO_DIR}


def locate(path: str | Path) -> Path:
    """`path` as given (absolute, or relative to the working directory) when it exists there; else the shipped file
    it names; else `path` unchanged, so that the caller's 'not found' message shows what the user wrote."""
    path = Path(os.path.expandvars(os.path.expanduser(str(path))))
    if path.is_absolute() or path.exists() or not path.parts:
        return path
    shipped_root = _SHIPPED_FOLDERS.get(path.parts[0])
    if shipped_root is not None and shipped_root.joinpath(*path.parts[1:]).exists():
        return shipped_root.joinpath(*path.parts[1:])
    return path


RUNS_DIR = Path("runs")  # relative: under the working directory


def default_run_dir(benchmark: str, name: str) -> Path:
    return RUNS_DIR / benchmark / name


def cache_dir() -> Path:
    """Downloads, reference statistics, judge responses. `MQEVAL_CACHE` overrides the default."""
    return Path(os.environ.get("MQEVAL_CACHE", Path.home() / ".cache" / "mqeval"))
