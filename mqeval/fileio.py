"""Atomic writes and content hashes: every file a run writes goes through here."""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import uuid
from pathlib import Path
from typing import IO, Any, Iterator, Optional

from mqeval.errors import DataIntegrityError


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A unique name the writer creates itself (not mkstemp, whose 0600 file would keep the result private
    # regardless of the user's umask). The suffix keeps the extension so PIL and friends pick the format.
    tmp_path = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:12]}.tmp{path.suffix}")
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


# Temporaries: `.<name>.<pid>.<12 hex>.tmp<suffix>` (atomic_path), and `.<name>.<random>.tmp<suffix>` of earlier
# mqeval versions; a user's `.notes.tmp` does not match.
TEMPORARY_NAME = re.compile(r"^\..+\.[^.]+\.tmp(\.[A-Za-z0-9]+)?$")


def remove_stale_temporaries(folder: str | Path) -> int:
    """Delete the temporaries of killed writers under `folder` (recursively); returns how many. Call it only while
    no other process writes there (under the run folder's lock)."""
    removed = 0
    if Path(folder).is_dir():
        for path in Path(folder).rglob(".*.tmp*"):
            if path.is_file() and TEMPORARY_NAME.match(path.name):
                path.unlink(missing_ok=True)
                removed += 1
    return removed


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w", **kwargs: Any) -> Iterator[IO]:
    with atomic_path(path) as tmp:
        with open(tmp, mode, **kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())


def write_json(path: str | Path, data: Any) -> None:
    with atomic_open(path, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, sort_keys=False, default=str)
        handle.write("\n")


def read_json_or_none(path: str | Path) -> Any:
    """A JSON file's content; None when it is missing or damaged (for records that can be rebuilt)."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def image_sha256(image: Any) -> str:
    """Content hash of a decoded PIL image: mode, size and pixel bytes (not the file's encoding)."""
    digest = hashlib.sha256(f"{image.mode}:{image.size}".encode())
    digest.update(image.tobytes())
    return digest.hexdigest()


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_sha256(path: str | Path, expected: str | None) -> str:
    """Check a file against its expected sha256 (or a prefix of at least 8 hex digits); return the full hash."""
    path = Path(path)
    if not path.is_file():
        raise DataIntegrityError(f"Missing file: {path}")
    actual = sha256_file(path)
    if expected and not actual.startswith(expected.lower()):
        raise DataIntegrityError(
            f"{path} has sha256 {actual}, expected {expected}. The file is corrupt or a different version; "
            "delete it and download it again."
        )
    return actual


def checkpoint_sha256(checkpoint: Optional[Path]) -> Optional[str]:
    """sha256 of a checkpoint folder's model.safetensors (None: no folder, or no such file in it)."""
    if checkpoint is None:
        return None
    weights = checkpoint / "model.safetensors"
    return sha256_file(weights) if weights.is_file() else None
