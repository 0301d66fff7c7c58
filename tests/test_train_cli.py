"""`mqeval train --num-processes K`: the launcher command of the issue, 2 processes vs 1, and its log."""
from __future__ import annotations

import json

import pytest
import torch
from helpers_cli import REPO, mqeval
from safetensors.torch import load_file

CONFIG = REPO / "model_zoo" / "metaquery-tiny.train.yaml"
TIME_SPLIT = ("time_data_s", "time_backbone_s", "time_decoder_s", "time_optimizer_s")


@pytest.mark.slow
def test_two_processes_export_the_weights_of_one(tmp_path):
    exported = {}
    for k in (1, 2):
        run = mqeval("train", CONFIG, "--max-steps", "4", "--num-processes", k, "--output-dir", tmp_path / f"D{k}",
                     "--export", tmp_path / f"E{k}", timeout=600)
        assert run.returncode == 0, run.stderr[-3000:]
        assert f"weights: {tmp_path / f'E{k}'}" in run.stdout and run.stdout.count("trained to step 4") == 1
        exported[k] = load_file(str(tmp_path / f"E{k}" / "model.safetensors"))
        log = [json.loads(line) for line in (tmp_path / f"D{k}" / "train_log.jsonl").read_text().splitlines()]
        assert [r["step"] for r in log] == [1, 2, 3, 4] and all(r["num_processes"] == k for r in log)
        for record in log:
            assert record["images_per_s"] > 0 and record["tokens_per_s"] > 0
            assert record["step_time_s"] == pytest.approx(sum(record[key] for key in TIME_SPLIT))
    assert exported[1].keys() == exported[2].keys()
    for name, tensor in exported[1].items():
        torch.testing.assert_close(exported[2][name], tensor, rtol=1e-5, atol=1e-6, msg=name)


def test_num_processes_must_be_positive(tmp_path):
    run = mqeval("train", CONFIG, "--num-processes", "0", "--output-dir", tmp_path)
    assert run.returncode == 2 and run.stderr.strip() == "Error: --num-processes must be at least 1, got 0"
