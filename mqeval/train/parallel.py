"""What differs between one process, DDP, FSDP and DeepSpeed ZeRO-1/2 for the trainer, in one place.

- set-up checks before `accelerator.prepare` (accumulation and clipping must come from the training config);
- the full trainable weights (gathered under FSDP) and loading them back into the wrapped model;
- this process's optimizer state in a pickle-free form, and whether it is a shard (FSDP, ZeRO) or a replica.

Only the one-process and DDP paths run in the tests (gloo on CPU); FSDP and DeepSpeed follow the documented APIs of
torch.distributed.checkpoint.state_dict and DeepSpeed's ZeRO-1/2 optimizer and need GPUs to exercise.
"""
from __future__ import annotations

from typing import Any

from mqeval.errors import ConfigError


def backend(accelerator) -> str:
    from accelerate.utils import DistributedType

    distributed = accelerator.distributed_type
    if distributed == DistributedType.FSDP:
        return "fsdp"
    if distributed == DistributedType.DEEPSPEED:
        return "deepspeed"
    return "ddp" if accelerator.num_processes > 1 else "single"


def configure(accelerator, config) -> None:
    """Fail early when the accelerate config disagrees with the training config; fill DeepSpeed's 'auto' values."""
    if accelerator.gradient_accumulation_steps != config.grad_accum:
        raise ConfigError(
            f"the accelerate config / environment sets gradient accumulation to "
            f"{accelerator.gradient_accumulation_steps} but the training config says grad_accum: {config.grad_accum}; "
            "set it only in the training config")
    strategy = backend(accelerator)
    if strategy == "fsdp" and not getattr(accelerator, "is_fsdp2", False):
        plugin = accelerator.state.fsdp_plugin
        if not plugin.use_orig_params:
            raise ConfigError("FSDP needs fsdp_use_orig_params: true (frozen and trainable parameters share "
                              "wrapped modules); see mqeval/train/accelerate_configs/fsdp.yaml")
    if strategy == "deepspeed":
        plugin = accelerator.state.deepspeed_plugin
        ds = plugin.deepspeed_config
        stage = ds.get("zero_optimization", {}).get("stage", 0)
        if stage not in (1, 2):  # stage 0's optimizers save and load differently; 3 shards the parameters
            raise ConfigError(f"DeepSpeed ZeRO stage {stage} is not supported by `mqeval train`: use ZeRO-1 or 2 "
                              "(mqeval/train/accelerate_configs/), FSDP for sharded parameters, DDP for none")
        if ds.get("train_micro_batch_size_per_gpu", "auto") == "auto":
            ds["train_micro_batch_size_per_gpu"] = config.micro_batch_size(accelerator.num_processes)
        clip = ds.get("gradient_clipping", "auto")
        if clip == "auto":
            ds["gradient_clipping"] = config.optim.grad_clip
        elif float(clip) != config.optim.grad_clip:
            raise ConfigError(f"the DeepSpeed config clips gradients at {clip} but the training config says "
                              f"optim.grad_clip: {config.optim.grad_clip}; leave gradient_clipping out of it")


def can_skip_steps(accelerator) -> bool:
    """DeepSpeed steps its optimizer inside backward(): a spike can be seen but no longer skipped."""
    return backend(accelerator) != "deepspeed"


def trainable_tensors(accelerator, model, names: list[str]) -> dict[str, Any]:
    """Full (unsharded) CPU copies of the named parameters; a collective under FSDP (call it on every rank).
    Only the main process is guaranteed a complete result."""
    state = accelerator.get_state_dict(model)
    if state is None:
        return {}
    return {name: state[name].detach().cpu().contiguous() for name in names if name in state}


def load_trainable_tensors(accelerator, model, tensors: dict[str, Any]) -> None:
    """Copy full tensors (the same on every rank) into the wrapped model's parameters."""
    import torch

    if backend(accelerator) == "fsdp":
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

        set_model_state_dict(model, tensors, options=StateDictOptions(full_state_dict=True, strict=False))
        return
    params = dict(accelerator.unwrap_model(model).named_parameters())
    with torch.no_grad():
        for name, tensor in tensors.items():
            params[name].copy_(tensor.to(params[name].dtype))


def optimizer_is_sharded(accelerator) -> bool:
    return backend(accelerator) in ("fsdp", "deepspeed")


def _zero_optimizer(optimizer):
    """DeepSpeed's ZeRO optimizer inside accelerate's wrapper."""
    return optimizer.optimizer


def optimizer_state(accelerator, optimizer) -> tuple[dict, bool]:
    """This process's optimizer state and whether values without a pickle-free form may be dropped.

    ZeRO's state also holds its loss scaler object and parameter-slice maps; both are rebuilt by the live
    optimizer, so they are left out (a dynamic fp16 loss scale restarts from its initial value; bf16 has none)."""
    if backend(accelerator) == "deepspeed":
        return _zero_optimizer(optimizer).state_dict(), True
    return optimizer.state_dict(), False


def load_optimizer_state(accelerator, optimizer, state: dict) -> None:
    if backend(accelerator) == "deepspeed":
        # ZeRO reads entry [data-parallel rank] of a per-rank list; each rank passes only its own shard.
        _zero_optimizer(optimizer).load_state_dict([state] * accelerator.num_processes,
                                                   load_optimizer_states=True, load_from_fp32_weights=True)
        return
    optimizer.load_state_dict(state)
