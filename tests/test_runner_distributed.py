"""Real multi-process generation: torchrun + accelerate PartialState + gloo on CPU, against one process."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from helpers_runner import png_bytes

from mqeval.generation.distributed import relaunch_argv

WORKER = Path(__file__).resolve().parent / "helpers_runner_worker.py"
REPO = Path(__file__).resolve().parent.parent


def launch(out: Path, num_processes: int, batch_size: int) -> str:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    if num_processes == 1:
        cmd = [sys.executable, str(WORKER), str(out), str(batch_size)]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={num_processes}",
               str(WORKER), str(out), str(batch_size)]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_two_gloo_processes_write_the_same_images_as_one(tmp_path):
    launch(tmp_path / "one", 1, 2)
    stdout = launch(tmp_path / "two", 2, 2)
    # 7 prompts x 2 images in batches of 2 -> 7 batches; rank 0 gets batches 0,2,4,6 and rank 1 gets 1,3,5
    assert "rank=0 world=2 written=8" in stdout and "rank=1 world=2 written=6" in stdout
    one, two = png_bytes(tmp_path / "one" / "images"), png_bytes(tmp_path / "two" / "images")
    assert len(one) == 14 and one == two
    assert (tmp_path / "two" / "images" / "00006" / "metadata.jsonl").is_file()


def test_relaunch_command_runs_the_program_under_torchrun():
    argv = relaunch_argv(["-m", "mqeval.evaluation.worker", "plan.json"], 3)
    assert argv[1:5] == ["-m", "mqeval.generation.torchrun", "--standalone", "--nproc_per_node=3"]  # torchrun
    assert argv[5:] == ["-m", "mqeval.evaluation.worker", "plan.json"]


RANK_ONE_BUILD = """
import sys, torch.distributed as dist
from torch.testing._internal.distributed.fake_pg import FakeStore  # a process group with no peers to wait for
dist.init_process_group("fake", store=FakeStore(), rank=1, world_size=2)
from mqeval.model.tiny import materialize
print(sorted(p.name for p in materialize(sys.argv[1]).iterdir()))
"""


def test_a_rank_other_than_0_caches_a_complete_tiny_model(tmp_path):
    """transformers writes a model's weights on rank 0 only once a process group has started: a tiny model that
    rank 1 builds on an empty cache must still hold its config and weights."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "MQEVAL_CACHE": str(tmp_path / "cache")}
    result = subprocess.run([sys.executable, "-c", RANK_ONE_BUILD, "tiny://causal_lm"], env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "'config.json'" in result.stdout and "'model.safetensors'" in result.stdout
