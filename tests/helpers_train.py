"""Tiny training configs shared by the training tests (the metaquery-tiny card on 32 px shapes scenes)."""
from __future__ import annotations

from mqeval.dataclass_io import from_dict
from mqeval.train.train_config import TrainConfig

STEPS = 4


def tiny_train_config(out, **over) -> TrainConfig:
    raw = {
        "model": "metaquery-tiny", "output_dir": str(out), "max_steps": STEPS, "batch_size": 4, "seed": 3,
        "data": {"kind": "shapes", "resolution": 32, "images_per_caption": 2, "num_examples": 400},
        "optim": {"lr": 3e-3, "min_lr": 3e-4, "warmup_steps": 2, "grad_clip": 0.2},  # clips every step
        "save_every": 100, "trackers": [], "condition_cache_size": 64,
    }
    raw.update(over)
    return from_dict(TrainConfig, raw)
