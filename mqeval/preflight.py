"""Checks before the first image is generated, so that a run fails in seconds instead of after hours of generation:
room on disk for the images, and (for `run`, not `generate`) everything scoring will need: the benchmark's data
files and their checksums, the scorer's weights, the judge endpoint answering (Benchmark.preflight)."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from mqeval.errors import UserError

if TYPE_CHECKING:
    from mqeval.contract.scoring import ScoreOptions
    from mqeval.evaluation.plan import RunPlan

HEADROOM_BYTES = 64 << 20


def image_bytes_bound(plan: "RunPlan") -> int:
    """An upper bound of the images' size on disk: uncompressed RGB (PNG and JPEG files are smaller)."""
    side = plan.settings.resolution
    return len(plan.samples) * plan.settings.images_per_prompt * (side * side * 3 + 4096)


def check_disk_space(plan: "RunPlan", run_dir: Path) -> None:
    folder = Path(run_dir)
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    free = shutil.disk_usage(folder).free
    needed = image_bytes_bound(plan) + HEADROOM_BYTES
    if free < needed:
        raise UserError(f"not enough disk space for the images in {run_dir}: {free / 2**20:.0f} MiB free, up to "
                        f"{needed / 2**20:.0f} MiB needed; free some space or pass another --out")


def preflight(plan: "RunPlan", run_dir: Path, batch_size: int, options: Optional["ScoreOptions"]) -> None:
    """Raise one UserError naming the first thing that would fail; `options` None skips the scorer checks."""
    from mqeval.generation.jobs import make_batches

    make_batches([], batch_size)  # a bad --batch-size fails here, not in every worker
    check_disk_space(plan, run_dir)
    if options is None:
        return
    try:
        plan.benchmark.preflight(options)
    except UserError as exc:
        raise UserError(f"scoring {plan.benchmark.name} would fail, so nothing was generated: {exc}") from None
    except Exception as exc:  # weights that do not load raise whatever their library raises
        raise UserError(f"scoring {plan.benchmark.name} would fail, so nothing was generated: its scorer does not "
                        f"load ({type(exc).__name__}: {exc})") from None
