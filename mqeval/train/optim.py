"""AdamW over the model's trainable parameters and a cosine learning-rate schedule with warmup and a floor."""
from __future__ import annotations

import math

from mqeval.train.train_config import OptimConfig


def parameter_groups(model, config: OptimConfig) -> list[dict]:
    """The model's own decay / no-decay split (frozen parameters never appear), each further split by the
    name-prefix lr multipliers. Every group carries `lr_scale`, applied on top of the schedule."""
    names = {id(p): n for n, p in model.named_parameters()}
    groups: dict[tuple[float, float], list] = {}
    for group in model.parameter_groups(config.weight_decay):
        for param in group["params"]:
            if not param.requires_grad:
                raise AssertionError(f"frozen parameter {names.get(id(param))} in the model's parameter groups")
            name = names[id(param)]
            scale = next((m for prefix, m in config.lr_multipliers.items() if name.startswith(prefix)), 1.0)
            groups.setdefault((group["weight_decay"], scale), []).append(param)
    return [{"params": params, "weight_decay": wd, "lr_scale": scale, "lr": config.lr * scale}
            for (wd, scale), params in sorted(groups.items(), key=lambda kv: kv[0])]


def build_optimizer(model, config: OptimConfig):
    import torch

    return torch.optim.AdamW(parameter_groups(model, config), lr=config.lr, betas=tuple(config.betas),
                             eps=config.eps)


def lr_at(step: int, config: OptimConfig, max_steps: int) -> float:
    """Linear warmup from 0 to lr over warmup_steps, then cosine from lr down to min_lr at max_steps."""
    if config.warmup_steps > 0 and step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    span = max(1, max_steps - config.warmup_steps)
    progress = min(1.0, (step - config.warmup_steps) / span)
    return config.min_lr + 0.5 * (config.lr - config.min_lr) * (1 + math.cos(math.pi * progress))


def build_scheduler(optimizer, config: OptimConfig, max_steps: int):
    """A LambdaLR whose factor makes every group's lr = lr_at(step) x its lr_scale."""
    import torch

    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_at(step, config, max_steps) / config.lr)
