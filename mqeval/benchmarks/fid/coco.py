"""COCO-30K data: the Hugging Face dataset sayakpaul/coco-30-val-2014 (30,000 val2014 image-caption pairs,
split "train"), fetched at a pinned revision and read with the `datasets` library as MetaQuery's eval_coco.py does,
or a local folder: `metadata.jsonl` lines {"file_name", "caption"} (the Hugging Face imagefolder convention) beside
the images."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from mqeval.errors import DataIntegrityError, UserError

REPO = "sayakpaul/coco-30-val-2014"
HUB_FILES = ("*.parquet", "*.json", "README.md")  # the data shards and what `datasets` reads to find them


@dataclass(frozen=True)
class CocoData:
    captions: list[str]
    images: list[Callable[[], Any]]  # loaders, in caption order
    content_sha256: Callable[[], str]  # reads every image: only scoring needs it


def _local(folder: Path) -> CocoData:
    meta = folder / "metadata.jsonl"
    rows = [json.loads(line) for line in meta.read_text(encoding="utf-8").splitlines() if line.strip()]
    paths = [folder / row["file_name"] for row in rows]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise DataIntegrityError(f"{meta}: {len(missing)} images are missing, e.g. {missing[0]}")

    def content() -> str:
        digest = hashlib.sha256()
        for row, path in zip(rows, paths):
            digest.update(f"{row['file_name']}\0{row['caption']}\0".encode())
            digest.update(hashlib.sha256(path.read_bytes()).digest())
        return digest.hexdigest()

    return CocoData([r["caption"] for r in rows], [_opener(p) for p in paths], content)


def _opener(path: Path) -> Callable[[], Any]:
    from PIL import Image

    return lambda: Image.open(path)


def _hub(revision: str, cache_dir: Optional[Path]) -> CocoData:
    try:
        import datasets
    except ImportError:
        raise UserError(
            "COCO-30K from the Hugging Face hub needs the `datasets` package (pip install 'mqeval[coco]'), or pass "
            "a local copy with --data-dir (metadata.jsonl + images)."
        ) from None
    from mqeval.hub_download import fetch

    # The repository's files come through the one hub code path (fast failure offline); `datasets` only reads them.
    folder = fetch(REPO, "COCO-30K reference data", revision=revision, repo_type="dataset",
                   allow_patterns=HUB_FILES, elsewhere="or pass a local copy with --data-dir")
    ds = datasets.load_dataset(str(folder), split="train",
                               cache_dir=str(cache_dir / "hf-datasets") if cache_dir else None)
    raw = ds.cast_column("image", datasets.Image(decode=False))
    def content() -> str:
        digest = hashlib.sha256(f"{REPO}@{revision}\0".encode())
        for row in raw:  # one pass over the bytes; images are decoded later, one batch at a time
            digest.update(f"{row['caption']}\0".encode())
            digest.update(hashlib.sha256(row["image"]["bytes"]).digest())
        return digest.hexdigest()

    return CocoData(list(raw["caption"]), [_row_opener(raw, i) for i in range(len(raw))], content)


def _row_opener(rows: Any, index: int) -> Callable[[], Any]:
    import io

    from PIL import Image

    return lambda: Image.open(io.BytesIO(rows[index]["image"]["bytes"]))


def load_coco(revision: str, data_dir: Optional[Path], cache_dir: Optional[Path]) -> CocoData:
    if data_dir is not None:
        if not (Path(data_dir) / "metadata.jsonl").is_file():
            raise DataIntegrityError(f"{data_dir}: no metadata.jsonl (lines of {{\"file_name\", \"caption\"}})")
        return _local(Path(data_dir))
    return _hub(revision, cache_dir)
