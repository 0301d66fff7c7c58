"""Process group handling: rank and world size come from accelerate's PartialState (training: its Accelerator).

Multi-process runs are started by `torchrun` (or `accelerate launch --multi_gpu`, or any launcher that sets the
torch.distributed environment variables). `accelerate launch --cpu` cannot start several CPU processes without MPI,
so `mqeval ... --num-processes K` re-launches itself through `python -m torch.distributed.run --standalone`; on CPU
PartialState(cpu=True) then joins a gloo group.
"""
from __future__ import annotations

import os
import subprocess
import sys
from typing import Sequence

from mqeval.errors import UserError


def in_distributed_launch() -> bool:
    """True inside torchrun / accelerate launch (they set LOCAL_RANK and WORLD_SIZE for every process)."""
    return "LOCAL_RANK" in os.environ or int(os.environ.get("WORLD_SIZE", "1")) > 1


def check_device(device: str) -> None:
    if device not in ("cpu", "cuda"):
        raise UserError(f"--device must be cpu or cuda, got '{device}'")
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise UserError("--device cuda was asked for but torch sees no CUDA device; use --device cpu")


class ProcessGroup:
    """Rank, world size, device and barriers of this process (world size 1 outside a distributed launch)."""

    def __init__(self, device: str = "cpu"):
        check_device(device)
        from accelerate import PartialState

        self._state = PartialState(cpu=device == "cpu")
        self.rank = self._state.process_index
        self.world_size = self._state.num_processes
        self.device = str(self._state.device) if device == "cuda" else "cpu"

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        self._state.wait_for_everyone()


def relaunch_argv(cli_args: Sequence[str], num_processes: int) -> list[str]:
    """The command that runs `mqeval <cli_args>` in `num_processes` processes on this machine."""
    return [
        sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={num_processes}",
        "-m", "mqeval.cli", *cli_args,
    ]


def relaunch(cli_args: Sequence[str], num_processes: int, what: str = "generation") -> None:
    """Run `mqeval <cli_args>` under torchrun and wait; a failing worker becomes a UserError with its exit code."""
    env = dict(os.environ)
    # Share the cores between the processes (torchrun alone would give each one thread); an explicit
    # OMP_NUM_THREADS is kept, which is how the tests run 1 and 2 processes with the same CPU kernels.
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // num_processes)))
    result = subprocess.run(relaunch_argv(cli_args, num_processes), env=env)
    if result.returncode != 0:
        raise UserError(f"the {num_processes}-process {what} failed with exit code {result.returncode} (see above)")
