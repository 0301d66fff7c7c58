"""`python -m mqeval.generation.torchrun ARGS`: torchrun (torch.distributed.run) whose failure is an exit code.

A failing worker has printed its own `Error:` line; torchrun would then print a traceback of its ChildFailedError
as well. This wrapper exits with the failing worker's code instead (1 when it died of a signal).
"""
from __future__ import annotations

import sys


def main() -> int:
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import main as torchrun

    try:
        torchrun()
    except ChildFailedError as exc:
        codes = [failure.exitcode for failure in exc.failures.values()]
        return next((code for code in codes if code > 0), 1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
