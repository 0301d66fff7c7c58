"""Workers of `--num-processes K` receive the plan the launcher resolved; they do not resolve the card again."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

from helpers_cli import REPO
from helpers_runner import png_bytes

from mqeval.evaluation.plan import plan_run
from mqeval.run_folder import PLAN_NAME
from mqeval.evaluation.worker_plan import GenerationJob, read_worker_plan, write_worker_plan
from mqeval.generation.acceleration import Acceleration
from mqeval.paths import MODEL_ZOO_DIR


def test_the_plan_round_trips_through_its_file(tmp_path):
    plan = plan_run("geneval", "metaquery-tiny", limit=5)
    job = GenerationJob(tmp_path, device="cpu", batch_size=3, overwrite=True, progress=False,
                        acceleration=Acceleration(precision="fp32"))
    path = write_worker_plan(plan, job)
    assert path == tmp_path / PLAN_NAME
    again, job_again = read_worker_plan(path)
    assert job_again == job
    assert (again.card, again.samples, again.settings, again.overrides) == (plan.card, plan.samples, plan.settings,
                                                                           plan.overrides)
    assert again.benchmark.spec == plan.benchmark.spec and type(again.benchmark) is type(plan.benchmark)
    assert again.fingerprint(3) == plan.fingerprint(3)


def test_the_checkpoint_is_hashed_once_per_plan(tmp_path, monkeypatch):
    """The kind hashes the weights when the plan is made (and checks the card's pin against that hash); the
    fingerprints reuse it."""
    import mqeval.fileio

    calls = []
    real = mqeval.fileio.checkpoint_sha256
    monkeypatch.setattr(mqeval.fileio, "checkpoint_sha256", lambda path: calls.append(path) or real(path))
    plan = plan_run("shapes", "metaquery-smol", limit=1)
    for _ in range(3):
        assert plan.fingerprint(4)["model"]["checkpoint_sha256"] == plan.checkpoint_sha256
    assert len(calls) == 1 and plan.checkpoint_sha256.startswith(plan.card.checkpoint.sha256)


def test_a_worker_generates_from_the_plan_alone(tmp_path):
    """The card file is gone when the worker starts: it can only have used the plan it was handed."""
    card = tmp_path / "my-card.yaml"
    shutil.copy(MODEL_ZOO_DIR / "metaquery-tiny.yaml", card)
    plan = plan_run("shapes", str(card), limit=2)
    card.unlink()
    path = write_worker_plan(plan, GenerationJob(tmp_path / "run", batch_size=4, progress=False))
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    result = subprocess.run([sys.executable, "-m", "mqeval.evaluation.worker", str(path)], env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "8 images in" in result.stderr and len(png_bytes(tmp_path / "run" / "images")) == 8


def test_a_damaged_plan_file_is_one_error_line(tmp_path):
    path = tmp_path / PLAN_NAME
    path.write_text("{not json")
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    result = subprocess.run([sys.executable, "-m", "mqeval.evaluation.worker", str(path)], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("Error:")
