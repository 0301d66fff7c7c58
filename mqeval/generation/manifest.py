"""generation.json: what produced the images of a run folder, so that a resume never mixes two configurations."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mqeval.errors import DataIntegrityError, UserError
from mqeval.fileio import write_json
from mqeval.run_folder import IMAGES_DIRNAME, MANIFEST_NAME



class StaleImagesError(UserError):
    """The run folder holds images made with other settings."""


def read_manifest(run_dir: Path) -> dict[str, Any] | None:
    path = Path(run_dir) / MANIFEST_NAME
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as exc:
        raise DataIntegrityError(f"{path} is damaged ({exc}); pass --overwrite to generate the images again") from None
    if not isinstance(data, dict):
        raise DataIntegrityError(f"{path} is not a generation record; pass --overwrite to generate the images again")
    return data


def has_images(run_dir: Path) -> bool:

    images = Path(run_dir) / IMAGES_DIRNAME
    return images.is_dir() and any(p.is_file() and not p.name.startswith(".") for p in images.rglob("*"))


def check_manifest(run_dir: Path, fingerprint: dict[str, Any]) -> None:
    """Raise if the folder's images were made with a different fingerprint (JSON-normalised comparison)."""
    old = read_manifest(run_dir)
    if old is None:
        if has_images(run_dir):
            raise StaleImagesError(
                f"{run_dir} holds images but no {MANIFEST_NAME}, so nothing says how they were made; pass another "
                "--out, or --overwrite to generate every image there again."
            )
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
