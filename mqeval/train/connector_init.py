"""Data-dependent connector initialisation: standardise the frozen backbone's outputs per channel.

A frozen LLM's last hidden states share a large common component (a few channels of huge, nearly constant
activation), so at a random init the connector's output barely changes from one prompt to another and the decoder
learns to ignore the condition (measured on metaquery-smol: loss with true and shuffled captions equal to 1e-5
after 50 steps). Folding the per-channel mean and standard deviation of the backbone's outputs, measured on training
prompts, into the connector's first linear layer (W' = W / sigma, b' = b - W' mu) makes every channel start at
zero mean and unit variance. It changes no architecture and the saved weights load as usual. Proj-Enc only (its
first operation is that linear layer; Enc-Proj starts with a per-token RMSNorm, where a channel shift cannot fold).
"""
from __future__ import annotations

from typing import Sequence

from mqeval.errors import ConfigError


def backbone_statistics(model, prompts: Sequence[str], batch_size: int = 32):
    """Per-channel mean and std of the backbone outputs the connector sees, over the real tokens of `prompts`."""
    import torch

    rows = []
    with torch.no_grad():
        for start in range(0, len(prompts), batch_size):
            out = model.backbone_states(prompts[start:start + batch_size])
            rows.append(out.hidden[out.mask].float())
    states = torch.cat(rows)
    return states.mean(0), states.std(0)


def standardize_connector_input(model, prompts: Sequence[str]) -> dict[str, float]:
    import torch

    if model.config.connector.architecture != "proj-enc":
        raise ConfigError("connector_init 'standardize' needs connector.architecture 'proj-enc'")
    first = model.connector.projector[0]
    mean, std = backbone_statistics(model, prompts)
    std = std + 1e-2 * std.mean()
    with torch.no_grad():
        weight = first.weight.float() / std[None, :]
        first.bias.copy_((first.bias.float() - weight @ mean).to(first.bias.dtype))
        first.weight.copy_(weight.to(first.weight.dtype))
    return {"mean_abs": float(mean.abs().mean()), "std_mean": float(std.mean()), "std_max": float(std.max()),
            "num_prompts": len(prompts)}


def standardize_on_training_captions(model, dataset, images_per_caption: int, count: int) -> dict[str, float]:
    """standardize_connector_input over the first `count` captions of a training set (one per caption group)."""
    group = max(1, images_per_caption)
    count = min(count, len(dataset) // group)
    return standardize_connector_input(model, [dataset[i * group].caption for i in range(count)])
