"""Training checkpoints hold no pickle: state round-trips through safetensors + JSON, and a folder holding a pickle
(old format or crafted) is refused with one `Error:` line without unpickling anything."""
from __future__ import annotations

import json
import pickle
import random
import shutil

import numpy as np
import pytest
import torch
from helpers_cli import mqeval
from helpers_train import tiny_train_config

from mqeval.errors import DataIntegrityError, UserError
from mqeval.train.checkpoint import latest_checkpoint, rng_state, set_rng_state
from mqeval.train.loop import Trainer, train
from mqeval.train.safe_state import load_state, save_state


class CreatesMarker:
    """Unpickling this calls open(path, "w"): the file appears iff the pickle was loaded."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.fixture(scope="module")
def checkpoint_template(tmp_path_factory):
    out = tmp_path_factory.mktemp("ckpt")
    train(tiny_train_config(out, max_steps=2), progress=False)
    return latest_checkpoint(out)


def copy_run(template, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(template, out / "checkpoints" / template.name)
    return out, out / "checkpoints" / template.name


def test_optimizer_and_rng_states_round_trip_without_pickle(tmp_path, checkpoint_template):
    trainer = Trainer(tiny_train_config(tmp_path / "t", max_steps=2))
    trainer.fit(progress=False)
    state = trainer.optimizer.state_dict()
    save_state(tmp_path / "opt.safetensors", state)
    back = load_state(tmp_path / "opt.safetensors")
    assert back["param_groups"] == state["param_groups"] and back["state"].keys() == state["state"].keys()
    for index, entry in state["state"].items():
        assert entry.keys() == back["state"][index].keys()
        assert all(torch.equal(entry[k], back["state"][index][k]) for k in entry)

    random.random(), np.random.rand(), torch.rand(1)
    save_state(tmp_path / "rng.safetensors", rng_state())
    expected = (random.random(), float(np.random.rand()), float(torch.rand(1)))
    set_rng_state(load_state(tmp_path / "rng.safetensors"))
    assert (random.random(), float(np.random.rand()), float(torch.rand(1))) == expected
    assert sorted(p.name for p in checkpoint_template.iterdir()) == [
        "config.json", "model.safetensors", "optimizer.safetensors", "rng-rank-0.safetensors", "state.json"]


def test_a_crafted_pickle_in_a_checkpoint_is_refused_and_never_runs(tmp_path, checkpoint_template):
    out, ckpt = copy_run(checkpoint_template, tmp_path)
    marker = tmp_path / "pwned"
    (ckpt / "rng.pt").write_bytes(pickle.dumps(CreatesMarker(marker)))
    config = tmp_path / "train.yaml"
    config.write_text(_config_yaml(out))
    result = mqeval("train", config, "--max-steps", "3")
    assert result.returncode == 2, result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "rng.pt" in errors[0] and "never unpickles" in errors[0], result.stderr
    assert "Traceback" not in result.stderr
    assert not marker.exists()
    pickle.loads((ckpt / "rng.pt").read_bytes()).close()  # control: unpickling this file does run its code
    assert marker.exists()


def _config_yaml(out) -> str:  # JSON is YAML
    return json.dumps({"model": "metaquery-tiny", "output_dir": str(out), "max_steps": 2, "batch_size": 4,
                       "trackers": [], "data": {"kind": "shapes", "resolution": 32, "images_per_caption": 2,
                                                "num_examples": 400}})


def test_a_pickle_under_a_safetensors_name_is_refused_and_never_runs(tmp_path, checkpoint_template):
    out, ckpt = copy_run(checkpoint_template, tmp_path)
    marker = tmp_path / "pwned"
    (ckpt / "rng-rank-0.safetensors").write_bytes(pickle.dumps(CreatesMarker(marker), protocol=4))
    trainer = Trainer(tiny_train_config(out, max_steps=2))
    with pytest.raises(UserError, match="rng-rank-0.safetensors.*never unpickles"):
        trainer.resume()
    assert not marker.exists()
    pickle.loads((ckpt / "rng-rank-0.safetensors").read_bytes()).close()
    assert marker.exists()


def test_a_damaged_state_file_is_a_clear_error(tmp_path, checkpoint_template):
    out, ckpt = copy_run(checkpoint_template, tmp_path)
    (ckpt / "optimizer.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all")
    trainer = Trainer(tiny_train_config(out, max_steps=2))
    with pytest.raises(DataIntegrityError, match="optimizer.safetensors is not a valid mqeval state file"):
        trainer.resume()


def test_an_old_format_checkpoint_says_the_format_changed(tmp_path, checkpoint_template):
    out, ckpt = copy_run(checkpoint_template, tmp_path)
    for name in ("optimizer.safetensors", "rng-rank-0.safetensors"):
        (ckpt / name).unlink()
    torch.save({"state": {}, "param_groups": []}, ckpt / "optimizer.pt")
    torch.save({}, ckpt / "scheduler.pt")
    state = json.loads((ckpt / "state.json").read_text())
    (ckpt / "state.json").write_text(json.dumps({k: v for k, v in state.items() if k != "format_version"}))
    trainer = Trainer(tiny_train_config(out, max_steps=2))
    with pytest.raises(UserError, match=r"optimizer\.pt, scheduler\.pt.*format changed"):
        trainer.resume()
    (ckpt / "optimizer.pt").unlink()
    (ckpt / "scheduler.pt").unlink()
    with pytest.raises(UserError, match="format version 1, this mqeval reads version 2"):
        trainer.resume()
