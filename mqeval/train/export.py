"""Copy a training checkpoint's loadable part (model.safetensors + config.json) to a model-zoo weights folder."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Optional

from mqeval.errors import MissingCheckpointError
from mqeval.fileio import atomic_path, sha256_file


def export_weights(output_dir: Path, target: Path, checkpoint: Optional[Path] = None) -> Path:
    """Latest checkpoint of `output_dir` (or `checkpoint`) -> `target`; returns target. Prints nothing."""
    from mqeval.train.checkpoint import latest_checkpoint

    source = Path(checkpoint) if checkpoint else latest_checkpoint(Path(output_dir))
    if source is None:
        raise MissingCheckpointError(f"no checkpoint under {output_dir}/checkpoints")
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    for name in ("model.safetensors", "config.json"):
        with atomic_path(target / name) as tmp:
            shutil.copyfile(source / name, tmp)
    (target / "SHA256").write_text(f"{sha256_file(target / 'model.safetensors')}  model.safetensors\n")
    return target
