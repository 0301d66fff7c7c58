"""Killing the launcher of `--num-processes 2` stops torchrun and both workers (its own process group, and on
Linux a parent-death signal when the launcher is killed outright)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers_cli import REPO


def _children() -> dict[int, int]:
    """pid -> parent pid of every live (not zombie) process."""
    out = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z":
            out[int(stat.parent.name)] = int(fields[1])
    return out


def _descendants(pid: int) -> set[int]:
    parents = _children()
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_killing_the_launcher_stops_its_workers(tmp_path, sig):
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    launcher = subprocess.Popen(
        [sys.executable, "-m", "mqeval.cli", "generate", "shapes", "--model", "metaquery-tiny", "--num-processes", "2",
         "--batch-size", "1", "--out", str(tmp_path / "run"), "--no-progress"], cwd=REPO, env=env,
        stdout=subprocess.DEVNULL, stderr=(tmp_path / "launcher.log").open("w"))  # batches of 1: a long run
    try:
        deadline = time.monotonic() + 240
        workers: set[int] = set()
        while time.monotonic() < deadline and launcher.poll() is None:
            workers = _descendants(launcher.pid)
            if len(workers) >= 3 and any((tmp_path / "run" / "images").rglob("*.png")):
                break  # torchrun and two workers, writing images
            time.sleep(0.2)
        assert len(workers) >= 3, f"the workers never started: {(tmp_path / 'launcher.log').read_text()[-2000:]}"
        os.kill(launcher.pid, sig)
        launcher.wait(timeout=60)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and workers & set(_children()):
            time.sleep(0.2)
        assert not workers & set(_children()), "processes left running after the launcher was killed"
    finally:
        if launcher.poll() is None:
            launcher.kill()
        for pid in _descendants(launcher.pid):
            os.kill(pid, signal.SIGKILL)
