"""MJHQ-30K data (Hugging Face dataset playgroundai/MJHQ-30K): `meta_data.json` (id -> {category, prompt}) and
`mjhq30k_imgs.zip` (`<category>/<id>.jpg`, 10 categories x 3,000). A `--data-dir` may hold either file and/or the
extracted `<category>/` folders."""
from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from mqeval.downloads import DataFile
from mqeval.downloads import resolve_data_file
from mqeval.errors import DataIntegrityError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


@dataclass(frozen=True)
class MJHQImages:
    """The reference images: (category, loader) pairs and a hash of their content."""

    items: list[tuple[str, Callable[[], Any]]]
    content_sha256: str


def resolve(key: str, entry: DataFile, data_dir: Optional[Path], cache_root: Optional[Path]) -> Path:
    return resolve_data_file(entry, key, local_dir=data_dir, cache_root=cache_root, what=f"MJHQ-30K {key}").path


def read_meta(path: Path) -> list[tuple[str, dict[str, Any]]]:
    meta = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(meta, dict):
        raise DataIntegrityError(f"{path}: expected a mapping id -> {{category, prompt}}")
    return list(meta.items())


def _folder_images(root: Path, categories: set[str]) -> Optional[MJHQImages]:
    files = sorted(p for c in categories if (root / c).is_dir() for p in (root / c).iterdir()
                   if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        return None
    digest = hashlib.sha256()
    for p in files:
        digest.update(f"{p.parent.name}/{p.name}\0".encode())
        digest.update(hashlib.sha256(p.read_bytes()).digest())

    def loader(p: Path) -> Callable[[], Any]:
        from PIL import Image

        return lambda: Image.open(p)

    return MJHQImages([(p.parent.name, loader(p)) for p in files], digest.hexdigest())


def _zip_images(path: Path, zip_sha256: str) -> MJHQImages:
    archive = zipfile.ZipFile(path)
    names = sorted(n for n in archive.namelist() if n.lower().endswith(IMAGE_SUFFIXES) and "/" in n
                   and not n.startswith("__MACOSX"))

    def loader(name: str) -> Callable[[], Any]:
        import io

        from PIL import Image

        return lambda: Image.open(io.BytesIO(archive.read(name)))

    return MJHQImages([(Path(n).parent.name, loader(n)) for n in names], f"zip:{zip_sha256}")


def reference_images(data: dict[str, DataFile], categories: set[str], data_dir: Optional[Path],
                     cache_root: Optional[Path]) -> MJHQImages:
    if data_dir is not None:
        found = _folder_images(Path(data_dir), categories)
        if found is not None:
            return found
    resolved = resolve_data_file(data["images"], "images", local_dir=data_dir, cache_root=cache_root,
                                 what="MJHQ-30K images")
    return _zip_images(resolved.path, resolved.sha256)
