"""The real CLI on the tiny random model: run + score, 1 vs 2 processes, resume after a killed run, batch sizes."""
from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from helpers_cli import REPO, mqeval
from helpers_runner import png_bytes

from mqeval.results.run import read_run

TINY = ("shapes", "--model", "metaquery-tiny")
LIMIT = ("--limit", "16", "--batch-size", "2", "--no-progress")  # 64 images: a few seconds of sampling


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted single-process generation that other tests compare against."""
    out = tmp_path_factory.mktemp("reference")
    result = mqeval("generate", *TINY, *LIMIT, "--out", out)
    assert result.returncode == 0, result.stderr
    return png_bytes(out / "images")


def test_run_generates_scores_records_and_prints_a_table(tmp_path):
    result = mqeval("run", *TINY, "--limit", "3", "--out", tmp_path, "--no-progress")
    assert result.returncode == 0, result.stderr
    assert "random weights" in result.stderr and "meaningless" in result.stderr
    assert "overall" in result.stdout and "shapes | metaquery-tiny | 3 samples" in result.stdout
    run = read_run(tmp_path)
    assert run.record.model.random_init and any("random weights" in w for w in run.record.warnings)
    assert run.record.benchmark.limit == 3 and len(run.samples) == 3
    assert run.record.generation["num_inference_steps"] == 4 and run.record.generation["resolution"] == 32
    printed = float(next(line.split()[1] for line in result.stdout.splitlines() if line.startswith("overall")))
    assert printed == pytest.approx(run.record.metrics["overall"], abs=1e-4)
    assert f"image grid: {tmp_path / 'grid.png'}" in result.stderr
    with Image.open(tmp_path / "grid.png") as grid:  # 3 prompts x 4 images, each 96 px + 4 px gaps
        assert grid.size == (300 + 100 * 4, 4 + 100 * 3)

    rescored = mqeval("score", "shapes", "--images", tmp_path, "--limit", "3")
    assert rescored.returncode == 0, rescored.stderr
    again = read_run(tmp_path)
    assert again.record.metrics == run.record.metrics and again.record.run_id != run.record.run_id
    assert again.record.model.card == "metaquery-tiny" and again.record.generation["seed"] == 42


@pytest.mark.slow
def test_two_processes_write_byte_identical_images(tmp_path, reference):
    result = mqeval("generate", *TINY, *LIMIT, "--num-processes", "2", "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    assert png_bytes(tmp_path / "images") == reference


@pytest.mark.slow
def test_resume_after_a_killed_run_keeps_finished_images_and_matches(tmp_path, reference):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "mqeval.cli", "generate", *TINY, *LIMIT, "--out", str(tmp_path)]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    # count finished images only, as the assertion does (a temporary image being written also ends in .png)
    while len(list((tmp_path / "images").rglob("[0-9]*.png"))) < 8 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = {p: p.stat().st_mtime_ns for p in (tmp_path / "images").rglob("[0-9]*.png")}
    assert 8 <= len(finished) < 64, "the run should have been killed part-way"
    time.sleep(0.05)  # so that a rewritten file would get a later mtime
    result = mqeval("generate", *TINY, *LIMIT, "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"({64 - len(finished)} generated, {len(finished)} already there)" in result.stderr
    assert all(p.stat().st_mtime_ns == t for p, t in finished.items()), "finished images were rewritten"
    assert png_bytes(tmp_path / "images") == reference


@pytest.mark.slow
def test_batch_size_changes_images_at_most_by_float_rounding(tmp_path):
    """Byte-identity across batch sizes needs a batch-invariant model; the tiny one is, up to one grey level."""
    from helpers_runner import FakeGroup

    from mqeval.generation.sharded_writer import generate
    from mqeval.model.loading import load_model
    from mqeval.evaluation.plan import plan_run

    plan = plan_run("shapes", "metaquery-tiny", limit=5)
    model = load_model(plan.card, None, device="cpu").eval()
    outputs = {}
    for batch_size in (1, 3, 8):
        generate(plan.benchmark, plan.samples, model, plan.settings, tmp_path / str(batch_size),
                 batch_size=batch_size, group=FakeGroup(), progress=False)
        outputs[batch_size] = png_bytes(tmp_path / str(batch_size) / "images")
    for batch_size in (3, 8):
        assert outputs[batch_size].keys() == outputs[1].keys()
        for name, data in outputs[1].items():
            a = np.asarray(Image.open(io.BytesIO(data)), dtype=int)
            b = np.asarray(Image.open(io.BytesIO(outputs[batch_size][name])), dtype=int)
            assert np.abs(a - b).max() <= 1, name


def test_score_of_a_plain_folder_writes_nothing_into_it(tmp_path):
    """A folder mqeval did not generate is only read: its results go to a run folder of their own under runs/."""
    from mqeval.benchmarks.shapes.oracle import main as draw_oracle

    folder = tmp_path / "theirs"
    draw_oracle([str(folder), "--size", "32"])
    before = sorted(p.relative_to(folder) for p in folder.rglob("*"))
    result = mqeval("score", "shapes", "--images", folder, "--limit", "2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert sorted(p.relative_to(folder) for p in folder.rglob("*")) == before
    [results] = (tmp_path / "runs" / "shapes").glob("scored-theirs-*/results.json")
    assert f"results: {results.relative_to(tmp_path)}" in result.stderr
    assert read_run(results.parent).record.metrics["overall"] == 1.0
