"""What software produced a result: package versions, git commit, Python and platform (no heavy imports)."""
from __future__ import annotations

import platform
import subprocess
import sys
from importlib import metadata
from typing import Optional

from mqeval.paths import SOURCE_CHECKOUT

# Distributions whose versions can change generated images or scores.
TRACKED_PACKAGES = (
    "mqeval", "torch", "torchvision", "transformers", "diffusers", "accelerate", "peft", "safetensors",
    "open-clip-torch", "torch-fidelity", "torchmetrics", "numpy", "pillow", "pandas", "tokenizers", "gguf",
    "lmms-eval",
)


def package_versions(names: tuple[str, ...] = TRACKED_PACKAGES) -> dict[str, Optional[str]]:
    """Installed version of each distribution, None if it is not installed (read from metadata, nothing imported)."""
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_state(repo: str | None = None) -> tuple[Optional[str], Optional[bool]]:
    """(commit hash, has uncommitted changes to tracked files) of the mqeval checkout; (None, None) outside git."""
    cwd = repo or (str(SOURCE_CHECKOUT) if SOURCE_CHECKOUT else None)
    if cwd is None:  # installed from a wheel: no checkout to ask
        return None, None
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd, capture_output=True, text=True,
            timeout=10, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None, None
    return head or None, bool(dirty)


def collect_environment(device: str, num_processes: int) -> dict:
    git_hash, git_dirty = git_state()
    return {
        "packages": package_versions(),
        "git_hash": git_hash,
        "git_dirty": git_dirty,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "device": device,
        "num_processes": num_processes,
    }
