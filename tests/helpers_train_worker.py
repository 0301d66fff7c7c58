"""Worker for the multi-process training tests: `torchrun --nproc_per_node=K helpers_train_worker.py OUT MODE`.

In one launch: an uninterrupted run of STEPS steps (OUT/full), then a run cut after CUT steps and resumed to STEPS
(OUT/cut). Each process writes its own trainable weights (rank-<r>.safetensors) and losses (rank-<r>.json).

MODE "ddp": what `mqeval train --num-processes K` does on CPU (gloo). MODE "fsdp-on-cpu": the same under torch's
FSDP (use_orig_params, full sharding), which accelerate only sets up for GPUs; here its state is forced to FSDP on
CPU, so mqeval's FSDP branches (gathered weights, one optimizer shard per process, clipping through the FSDP
module) run for real on gloo. A stand-in for the GPU set-up, not a replacement for running it.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

CUT = 2


def force_fsdp_on_cpu() -> None:
    import accelerate
    import torch
    from accelerate.utils import DistributedType, FullyShardedDataParallelPlugin

    plain_init = accelerate.Accelerator.__init__

    def init(self, *args, **kwargs):
        plain_init(self, *args, **kwargs)
        self.state.fsdp_plugin = FullyShardedDataParallelPlugin(
            fsdp_version=1, use_orig_params=True, sharding_strategy="FULL_SHARD", state_dict_type="FULL_STATE_DICT",
            sync_module_states=False, cpu_ram_efficient_loading=False)

    accelerate.Accelerator.__init__ = init
    accelerate.Accelerator.distributed_type = property(lambda self: DistributedType.FSDP)
    accelerate.Accelerator.device = property(lambda self: torch.device("cpu"))  # FSDP wants "cpu", not "cpu:0"


def dump(tensors: dict, losses: dict, out: Path, rank: int) -> None:
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    save_file({n: t.detach().cpu().contiguous() for n, t in tensors.items()}, str(out / f"rank-{rank}.safetensors"))
    (out / f"rank-{rank}.json").write_text(json.dumps({str(k): v for k, v in losses.items()}))


def trainable_weights(trainer) -> dict:
    """This process's copy of the trainable weights; under FSDP the gathered copy, which only rank 0 holds."""
    state = trainer.accelerator.get_state_dict(trainer.model)  # a collective under FSDP
    names = [name for name, _ in trainer.unwrapped.named_trainable_parameters()]
    return {name: state[name] for name in names} if state else {}


def main(out: Path, mode: str) -> None:
    if mode == "fsdp-on-cpu":
        force_fsdp_on_cpu()
    from helpers_train import tiny_train_config

    from mqeval.train.loop import Trainer, train

    trainer = Trainer(tiny_train_config(out / "full", global_batch_size=8))
    full = trainer.fit(progress=False)
    full_weights = trainable_weights(trainer)
    first = train(tiny_train_config(out / "cut", global_batch_size=8), max_steps=CUT, progress=False)
    resumed = Trainer(tiny_train_config(out / "cut", global_batch_size=8), resuming=True)
    assert resumed.resume()
    second = resumed.fit(progress=False)
    rank = trainer.accelerator.process_index
    if full_weights:
        dump(full_weights, full.losses, out / "full", rank)
        dump(trainable_weights(resumed), {**first.losses, **second.losses}, out / "cut", rank)
    else:
        trainable_weights(resumed)  # the other ranks' part of the collective
    print(f"rank={rank} world={trainer.accelerator.num_processes} backend={trainer.accelerator.distributed_type} "
          f"steps={second.final_step}", flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2])
