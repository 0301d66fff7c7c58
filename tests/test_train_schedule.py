"""The learning-rate schedule: linear warmup, cosine to a floor, per-group scales, resumed from its JSON state.

The reference below is the schedule's definition; a library schedule may replace mqeval.train.optim's only if these
tests still pass (they did not for transformers' cosine-with-min-lr schedules, off by one step, nor for torch's
CosineAnnealingLR, whose floor is one absolute lr for every group)."""
import json
import math

import pytest
import torch

from mqeval.train.train_config import OptimConfig
from mqeval.train.optim import build_scheduler

SCALES = (1.0, 10.0)  # a group at the base lr and one with a 10x lr multiplier


def reference_lr(step: int, config: OptimConfig, max_steps: int) -> float:
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress = min(1.0, (step - config.warmup_steps) / max(1, max_steps - config.warmup_steps))
    return config.min_lr + 0.5 * (config.lr - config.min_lr) * (1 + math.cos(math.pi * progress))


def optimizer(config: OptimConfig) -> torch.optim.Optimizer:
    groups = [{"params": [torch.nn.Parameter(torch.zeros(2))], "lr": config.lr * s, "lr_scale": s} for s in SCALES]
    return torch.optim.AdamW(groups, lr=config.lr)


def lrs_over(scheduler, steps: int) -> list[list[float]]:
    seen = []
    for _ in range(steps):
        seen.append([group["lr"] for group in scheduler.optimizer.param_groups])
        scheduler.optimizer.step()
        scheduler.step()
    return seen


@pytest.mark.parametrize("warmup, max_steps", [(4, 12), (0, 7), (1, 5), (2, 3)])
def test_schedule_follows_the_reference_in_every_group(warmup, max_steps):
    config = OptimConfig(lr=1e-3, min_lr=1e-4, warmup_steps=warmup)
    seen = lrs_over(build_scheduler(optimizer(config), config, max_steps), max_steps + 1)
    for step, lrs in enumerate(seen):
        expected = [s * reference_lr(step, config, max_steps) for s in SCALES]
        assert lrs == pytest.approx(expected, rel=1e-6), step
    assert seen[-1] == pytest.approx([s * config.min_lr for s in SCALES], rel=1e-6)  # each group's own floor


def test_warmup_starts_above_zero_and_holds_the_peak_for_two_steps():
    config = OptimConfig(lr=1e-3, min_lr=1e-4, warmup_steps=4)
    seen = [lrs[0] for lrs in lrs_over(build_scheduler(optimizer(config), config, 12), 6)]
    assert seen[:5] == pytest.approx([2.5e-4, 5e-4, 7.5e-4, 1e-3, 1e-3], rel=1e-6) and seen[5] < 1e-3


def test_schedule_resumes_from_its_json_state():
    config = OptimConfig(lr=1e-3, min_lr=1e-4, warmup_steps=3)
    whole = lrs_over(build_scheduler(optimizer(config), config, 10), 10)
    first = build_scheduler(optimizer(config), config, 10)
    before = lrs_over(first, 4)
    state = json.loads(json.dumps(first.state_dict()))  # as the checkpoint's state.json holds it
    opt = optimizer(config)
    resumed = build_scheduler(opt, config, 10)
    resumed.load_state_dict(state)
    for group, lr in zip(opt.param_groups, first.get_last_lr(), strict=True):
        group["lr"] = lr  # the optimizer's own state (restored from its file in a real resume) carries the lr
    assert before + lrs_over(resumed, 6) == whole
