"""`python -m mqeval.evaluation.worker PLAN`: one of the K generation processes a launch started (under torchrun).

It reads the plan the launcher resolved (mqeval.evaluation.worker_plan), generates its share of the images and
ends like the command line does: a failure is one `Error:` line and a non-zero exit code.
"""
from __future__ import annotations

import sys
from pathlib import Path


def _work(plan_path: str) -> None:
    from mqeval.evaluation.images import generate_images
    from mqeval.evaluation.worker_plan import read_worker_plan

    plan, job = read_worker_plan(Path(plan_path))
    report = generate_images(plan, job)
    if report.rank == 0:
        print(report.describe(), file=sys.stderr)


def main(argv: list[str]) -> None:
    from mqeval.cli_errors import call_cli

    if len(argv) != 1:
        print("usage: python -m mqeval.evaluation.worker PLAN.json", file=sys.stderr)
        raise SystemExit(2)
    call_cli(lambda standalone_mode: _work(argv[0]))


if __name__ == "__main__":
    main(sys.argv[1:])
