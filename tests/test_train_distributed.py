"""One model however the batch is split: 2 gloo processes vs 1, accumulation vs a larger batch, resume under DDP."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers_train import STEPS, tiny_train_config
from safetensors.torch import load_file

from mqeval.train.loop import Trainer

WORKER = Path(__file__).resolve().parent / "helpers_train_worker.py"
REPO = Path(__file__).resolve().parent.parent


def trained(config) -> tuple[dict[str, torch.Tensor], dict[int, float]]:
    trainer = Trainer(config)
    result = trainer.fit(progress=False)
    return {n: p.detach().clone() for n, p in trainer.unwrapped.named_trainable_parameters()}, result.losses


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys() and a
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-5, atol=1e-6, msg=name)


def test_accumulating_two_micro_batches_equals_one_batch_of_twice_the_size(tmp_path):
    accumulated, acc_losses = trained(tiny_train_config(tmp_path / "a", global_batch_size=8, grad_accum=2))
    whole, whole_losses = trained(tiny_train_config(tmp_path / "b", global_batch_size=8, grad_accum=1))
    assert_same_weights(accumulated, whole)
    assert acc_losses.keys() == whole_losses.keys() == set(range(STEPS))
    for step in whole_losses:
        assert acc_losses[step] == pytest.approx(whole_losses[step], rel=1e-5)
    # and the weights did move (the comparison is not between two untouched initialisations)
    initial = {n: p.detach() for n, p in Trainer(tiny_train_config(tmp_path / "c")).unwrapped
               .named_trainable_parameters()}
    assert any((whole[n] - initial[n]).abs().max() > 1e-4 for n in whole)


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    """The reference: one process, the same global batch of 8."""
    return trained(tiny_train_config(tmp_path_factory.mktemp("one"), global_batch_size=8))


def launch_two(out: Path, mode: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(WORKER),
           str(out), mode]
    run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "rank=0 world=2" in run.stdout and "rank=1 world=2" in run.stdout


def read_losses(path: Path) -> dict[int, float]:
    return {int(k): v for k, v in json.loads(path.read_text()).items()}


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["ddp", "fsdp-on-cpu"])
def test_two_gloo_processes_train_the_one_process_model_and_resume_exactly(tmp_path, one_process, mode):
    launch_two(tmp_path, mode)
    full, cut = tmp_path / "full", tmp_path / "cut"
    rank0 = load_file(str(full / "rank-0.safetensors"))
    if mode == "ddp":  # each process holds a whole copy: they must be one model
        rank1 = load_file(str(full / "rank-1.safetensors"))
        assert rank0.keys() == rank1.keys() and all(torch.equal(rank0[n], rank1[n]) for n in rank0)
    else:  # one sharded copy; rank 0 holds the gathered weights
        assert not (full / "rank-1.safetensors").exists()

    one, one_losses = one_process
    assert_same_weights(rank0, one)  # the same model as one process with the same global batch
    two_losses = read_losses(full / "rank-0.json")
    assert two_losses.keys() == one_losses.keys() == set(range(STEPS))
    for step, loss in one_losses.items():
        assert two_losses[step] == pytest.approx(loss, rel=1e-5)

    # interrupted after 2 steps and resumed by 2 new processes: the same loss curve and weights
    resumed = read_losses(cut / "rank-0.json")
    assert resumed.keys() == two_losses.keys()
    for step, loss in two_losses.items():
        assert resumed[step] == pytest.approx(loss, rel=1e-6, abs=1e-8), step
    assert_same_weights(load_file(str(cut / "rank-0.safetensors")), rank0)
    optimizer = (["optimizer.safetensors"] if mode == "ddp"
                 else ["optimizer-rank-0.safetensors", "optimizer-rank-1.safetensors"])
    assert sorted(p.name for p in (cut / "checkpoints" / "step-0000002").iterdir()) == sorted(
        ["config.json", "model.safetensors", *optimizer, "rng-rank-0.safetensors", "rng-rank-1.safetensors",
         "state.json"])
