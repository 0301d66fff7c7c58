"""Training checkpoints that resume exactly, written and read without pickle, from one process or many.

Layout of <output_dir>/checkpoints/step-0000500/:
- model.safetensors + config.json: the full trainable weights (gathered under FSDP), a loadable MetaQuery checkpoint;
- state.json: format version, step, process count, scheduler state, data position, spike-guard state;
- optimizer.safetensors (a replicated state: one process, DDP) or optimizer-rank-<r>.safetensors (a shard per
  process: FSDP, DeepSpeed ZeRO), in mqeval.train.safe_state's pickle-free form;
- rng-rank-<r>.safetensors: each process's torch / CUDA / numpy / python RNG states, also pickle-free.
Every process writes into one temporary folder that the main process renames once all are done, so a folder that
exists is complete. Loading parses only safetensors and JSON; a folder holding any pickle is refused.
"""
from __future__ import annotations

import random
import shutil
from pathlib import Path
from typing import Any, Optional

from mqeval.errors import DataIntegrityError, UserError
from mqeval.fileio import write_json
from mqeval.train.safe_state import load_state, pickle_like_files, read_json, save_state

PREFIX = "step-"
FORMAT_VERSION = 2  # 1: torch.save'd optimizer.pt / scheduler.pt / rng.pt (pickles; refused since)
STATE_NAME = "state.json"


class CheckpointFormatError(UserError):
    """A checkpoint folder mqeval cannot (or will not) read."""


def checkpoint_dirs(output_dir: Path) -> list[Path]:
    root = Path(output_dir) / "checkpoints"
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith(PREFIX)
                  and (p / STATE_NAME).is_file())


def latest_checkpoint(output_dir: Path) -> Optional[Path]:
    dirs = checkpoint_dirs(output_dir)
    return dirs[-1] if dirs else None


# --- RNG states as tensors + JSON ---------------------------------------------------------------------------------
def rng_state() -> dict[str, Any]:
    import numpy as np
    import torch

    state = {"torch": torch.get_rng_state(), "python": random.getstate(), "numpy": np.random.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    import numpy as np
    import torch

    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    np.random.set_state(state["numpy"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# --- saving -------------------------------------------------------------------------------------------------------
def optimizer_file(rank: int, sharded: bool) -> str:
    return f"optimizer-rank-{rank}.safetensors" if sharded else "optimizer.safetensors"


def rng_file(rank: int) -> str:
    return f"rng-rank-{rank}.safetensors"


def save_checkpoint(accelerator, output_dir: Path, step: int, model, optimizer, scheduler, state: dict,
                    keep: int) -> Path:
    """Called on every process (the weights are gathered collectively under FSDP); returns the folder."""
    from mqeval.train import parallel

    root = Path(output_dir) / "checkpoints"
    final = root / f"{PREFIX}{step:07d}"
    tmp = root / f".{final.name}.tmp"
    rank, main = accelerator.process_index, accelerator.is_main_process
    if main:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    unwrapped = accelerator.unwrap_model(model)
    tensors = parallel.trainable_tensors(accelerator, model, unwrapped.saved_parameter_names())
    sharded = parallel.optimizer_is_sharded(accelerator)
    if main:
        unwrapped.save_pretrained(tmp, tensors=tensors)
        write_json(tmp / STATE_NAME, {**state, "format_version": FORMAT_VERSION, "step": step,
                                      "num_processes": accelerator.num_processes, "optimizer_sharded": sharded,
                                      "scheduler": scheduler.state_dict()})
    if main or sharded:
        opt_state, droppable = parallel.optimizer_state(accelerator, optimizer)
        save_state(tmp / optimizer_file(rank, sharded), opt_state, drop_unsupported=droppable)
    save_state(tmp / rng_file(rank), rng_state())
    accelerator.wait_for_everyone()
    if main:
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
        for old in checkpoint_dirs(output_dir)[:-keep] if keep > 0 else []:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


# --- loading ------------------------------------------------------------------------------------------------------
def check_checkpoint(path: Path) -> dict:
    """state.json of a checkpoint folder mqeval can read; refuses old-format folders and any pickle, unread."""
    path = Path(path)
    pickles = pickle_like_files(path)
    if pickles:
        names = ", ".join(p.name for p in pickles)
        raise CheckpointFormatError(
            f"checkpoint {path} holds pickle file(s) ({names}); mqeval never unpickles them (a pickle can run any "
            "code). If this is a checkpoint of an older mqeval: the checkpoint format changed to safetensors + JSON, "
            "so it cannot be resumed; train into a new --output-dir, optionally starting from its weights with "
            f"`init_checkpoint: {path}` (its model.safetensors is still valid)")
    state = read_json(path / STATE_NAME)
    version = state.get("format_version", 1) if isinstance(state, dict) else None
    if version != FORMAT_VERSION:
        raise CheckpointFormatError(
            f"checkpoint {path} has format version {version}, this mqeval reads version {FORMAT_VERSION}: the "
            "checkpoint format changed; train into a new --output-dir (its model.safetensors can seed "
            "`init_checkpoint`)")
    return state


def load_checkpoint(accelerator, path: Path, model, optimizer, scheduler) -> dict:
    """Restore a folder written by save_checkpoint into the live (prepared) objects; returns its state.json."""
    from safetensors.torch import load_file

    from mqeval.model.metaquery import WEIGHTS_NAME
    from mqeval.train import parallel

    path = Path(path)
    state = check_checkpoint(path)
    sharded = parallel.optimizer_is_sharded(accelerator)
    if state["optimizer_sharded"] != sharded or (sharded and state["num_processes"] != accelerator.num_processes):
        raise CheckpointFormatError(
            f"checkpoint {path} holds the optimizer state of {state['num_processes']} process(es), "
            f"{'sharded' if state['optimizer_sharded'] else 'replicated'}; this run has "
            f"{accelerator.num_processes}, {'sharded' if sharded else 'replicated'}: resume it with the same "
            "distributed set-up")
    rank = accelerator.process_index
    try:
        tensors = load_file(str(path / WEIGHTS_NAME))
    except Exception as exc:
        raise DataIntegrityError(f"{path / WEIGHTS_NAME} is not a valid safetensors file: {exc}") from None
    expected = set(accelerator.unwrap_model(model).saved_parameter_names())
    missing, unexpected = sorted(expected - set(tensors)), sorted(set(tensors) - expected)
    if missing or unexpected:
        raise DataIntegrityError(f"{path / WEIGHTS_NAME} does not fit the model: missing {missing[:5]}, "
                                 f"unexpected {unexpected[:5]}")
    optimizer_state = load_state(path / optimizer_file(rank if sharded else 0, sharded))
    own_rng = path / rng_file(rank)
    rng = load_state(own_rng if own_rng.is_file() else path / rng_file(0))
    parallel.load_trainable_tensors(accelerator, model, tensors)
    parallel.load_optimizer_state(accelerator, optimizer, optimizer_state)
    scheduler.load_state_dict(state["scheduler"])
    set_rng_state(rng)
    return state
