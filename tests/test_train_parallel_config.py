"""The accelerate set-up must agree with the training config: accumulation, clipping, ZeRO stage, FSDP params.

DeepSpeed and FSDP on GPUs cannot run here; these checks run on stand-ins carrying what accelerate exposes
(`distributed_type`, `gradient_accumulation_steps`, the plugins' settings)."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
from accelerate.utils import DistributedType
from helpers_train import tiny_train_config

from mqeval.errors import ConfigError
from mqeval.train import parallel


def deepspeed(ds_config: dict, accumulation: int = 1):
    return SimpleNamespace(distributed_type=DistributedType.DEEPSPEED, num_processes=8,
                           gradient_accumulation_steps=accumulation,
                           state=SimpleNamespace(deepspeed_plugin=SimpleNamespace(deepspeed_config=ds_config)))


def test_deepspeed_auto_values_come_from_the_training_config(tmp_path):
    ds = {"zero_optimization": {"stage": 2}, "train_micro_batch_size_per_gpu": "auto", "gradient_clipping": "auto"}
    parallel.configure(deepspeed(ds), tiny_train_config(tmp_path, global_batch_size=64))
    assert ds["train_micro_batch_size_per_gpu"] == 8 and ds["gradient_clipping"] == 0.2
    assert not parallel.can_skip_steps(deepspeed(ds)) and parallel.optimizer_is_sharded(deepspeed(ds))


@pytest.mark.parametrize("ds, accumulation, message", [
    ({"zero_optimization": {"stage": 3}}, 1, "ZeRO stage 3 is not supported"),
    ({"zero_optimization": {"stage": 0}}, 1, "ZeRO stage 0 is not supported"),
    ({"zero_optimization": {"stage": 2}, "gradient_clipping": 1.0}, 1, "at 1.0 .* optim.grad_clip: 0.2"),
    ({"zero_optimization": {"stage": 1}}, 4, "gradient accumulation to 4.* grad_accum: 1"),
])
def test_disagreeing_deepspeed_set_ups_are_refused(tmp_path, ds, accumulation, message):
    with pytest.raises(ConfigError, match=message):
        parallel.configure(deepspeed(ds, accumulation), tiny_train_config(tmp_path))


def test_fsdp_needs_original_parameters(tmp_path):
    def fsdp(use_orig_params: bool):
        return SimpleNamespace(distributed_type=DistributedType.FSDP, num_processes=2, gradient_accumulation_steps=1,
                               is_fsdp2=False, state=SimpleNamespace(
                                   fsdp_plugin=SimpleNamespace(use_orig_params=use_orig_params)))

    parallel.configure(fsdp(True), tiny_train_config(tmp_path))
    with pytest.raises(ConfigError, match="fsdp_use_orig_params: true"):
        parallel.configure(fsdp(False), tiny_train_config(tmp_path))


def test_a_global_batch_that_does_not_split_evenly_is_refused(tmp_path):
    config = tiny_train_config(tmp_path, global_batch_size=12, grad_accum=2)
    assert config.micro_batch_size(1) == 6 and config.micro_batch_size(3) == 2
    with pytest.raises(ConfigError, match="global_batch_size 12 does not split into 4 process"):
        config.micro_batch_size(4)
