"""Process group handling: rank and world size come from accelerate's PartialState (training: its Accelerator).

Multi-process runs are started by `torchrun` (or `accelerate launch --multi_gpu`, or any launcher that sets the
torch.distributed environment variables). `accelerate launch --cpu` cannot start several CPU processes without MPI,
so `mqeval ... --num-processes K` launches its workers through torchrun (`python -m torch.distributed.run
--standalone`, wrapped by mqeval.generation.torchrun so that a failing worker ends in its own Error line, not
torchrun's traceback); on CPU PartialState(cpu=True) then joins a gloo group. The re-launched torchrun runs in its
own process group (session), which the launcher stops as a whole when it is interrupted or terminated; on Linux
torchrun also gets SIGTERM when the launcher dies without a chance to clean up (SIGKILL), and then stops its
workers itself.
"""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from typing import Mapping, Optional, Sequence

from mqeval.errors import UserError


def in_distributed_launch() -> bool:
    """True inside torchrun / accelerate launch (they set LOCAL_RANK and WORLD_SIZE for every process)."""
    return "LOCAL_RANK" in os.environ or int(os.environ.get("WORLD_SIZE", "1")) > 1


def is_main_process() -> bool:
    """Rank 0 of a distributed launch, or the only process (read before any process group exists)."""
    return os.environ.get("RANK", "0") == "0"


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


def relaunch_argv(program: Sequence[str], num_processes: int) -> list[str]:
    """The command that runs `python <program>` (e.g. ["-m", "mqeval.cli", "train", ...]) in `num_processes`
    processes on this machine."""
    return [
        sys.executable, "-m", "mqeval.generation.torchrun", "--standalone", f"--nproc_per_node={num_processes}",
        *program,
    ]


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the launcher dies (Linux prctl PR_SET_PDEATHSIG; elsewhere nothing)."""
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


def stop_process_group(process: subprocess.Popen, grace_s: float = 10.0) -> None:
    """SIGTERM to the child's whole process group; SIGKILL to whatever is left of it after `grace_s`."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=grace_s)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5.0)


def _terminate(signum, frame):  # SIGTERM in the launcher: unwind like Ctrl-C, so the group is stopped
    raise KeyboardInterrupt(f"signal {signum}")


def relaunch(program: Sequence[str], num_processes: int, what: str = "generation",
             extra_env: Optional[Mapping[str, str]] = None) -> None:
    """Run `python <program>` under torchrun and wait; a failing worker becomes a UserError with its exit code.
    Interrupting or terminating this process stops torchrun and its workers."""
    env = {**os.environ, **(extra_env or {})}
    # Share the cores between the processes (torchrun alone would give each one thread); an explicit
    # OMP_NUM_THREADS is kept, which is how the tests run 1 and 2 processes with the same CPU kernels.
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // num_processes)))
    process = subprocess.Popen(relaunch_argv(program, num_processes), env=env, start_new_session=True,
                               preexec_fn=_die_with_parent)
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if main_thread else None
    try:
        returncode = process.wait()
    except BaseException:
        stop_process_group(process)
        raise
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
    if returncode != 0:
        raise UserError(f"the {num_processes}-process {what} failed with exit code {returncode} (see above)")
