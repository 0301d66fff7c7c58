"""Run the real `mqeval` command line in a subprocess (as a user would, without installing the package)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def mqeval(*args: str, cwd: Path | None = None, timeout: float = 300,
           unset: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """`unset`: environment variables the command runs without (e.g. the test session's thread limits)."""
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    for name in unset:
        env.pop(name, None)
    return subprocess.run([sys.executable, "-m", "mqeval.cli", *map(str, args)], cwd=cwd or REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)
