"""generation.json: what produced the images of a run folder, so that a resume never mixes two configurations."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mqeval.errors import UserError
from mqeval.fileio import write_json

MANIFEST_NAME = "generation.json"


class StaleImagesError(UserError):
    """The run folder holds images made with other settings."""


def read_manifest(run_dir: Path) -> dict[str, Any] | None:
    path = Path(run_dir) / MANIFEST_NAME
    if not path.is_file():
        return None
    return json.loads(path.read_text())


def check_manifest(run_dir: Path, fingerprint: dict[str, Any]) -> None:
    """Raise if the folder's images were made with a different fingerprint (JSON-normalised comparison)."""
    old = read_manifest(run_dir)
    if old is None:
        return
    new = json.loads(json.dumps(fingerprint, default=str))
    if old != new:
        diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        raise StaleImagesError(
            f"{run_dir} holds images generated with different {', '.join(diff)}; pass another --out, "
            f"or --overwrite to regenerate every image there."
        )


def write_manifest(run_dir: Path, fingerprint: dict[str, Any]) -> None:
    write_json(Path(run_dir) / MANIFEST_NAME, fingerprint)
