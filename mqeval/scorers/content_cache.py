"""Content-keyed results of the expensive scorer stages: rescoring unchanged images does no model work.

A stage (detector outputs, CLIP colour verdicts, Inception features, VQA answers) stores each result under
sha256(stage identity, input content): the identity holds everything besides the input that determines the result
(model name and weights, thresholds, preprocessing, a format number), the content is typically the image file's
sha256 plus the question asked of it. A changed image, model or setting therefore misses; nothing is keyed by a
path or a run name. Values are dicts of numpy arrays (numbers and strings), stored as .npz bytes (read without
pickle) in one SQLite file per stage under `<cache>/scores/`, so thousands of lookups cost milliseconds.
Counters: `hits` and `misses` (tests use them to check that a rescore computes nothing).
"""
from __future__ import annotations

import hashlib
import io
import json
import sqlite3
import threading
import zipfile
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np

Arrays = dict[str, np.ndarray]
FORMAT = 1


def digest(*parts: Any) -> str:
    """sha256 of JSON-serialised parts (bytes are hashed as they are)."""
    h = hashlib.sha256()
    for part in parts:
        h.update(part if isinstance(part, bytes) else json.dumps(part, sort_keys=True, default=str).encode())
        h.update(b"\x00")
    return h.hexdigest()


def to_bytes(arrays: Arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def from_bytes(blob: bytes) -> Arrays:
    with np.load(io.BytesIO(blob), allow_pickle=False) as data:
        return {name: data[name] for name in data.files}


class ContentCache:
    """One stage's results; `root=None` disables storage (every lookup misses, nothing is written)."""

    def __init__(self, root: Optional[Path], stage: str, identity: Mapping[str, Any]):
        self.stage = stage
        self._identity = digest(FORMAT, stage, dict(identity))
        self._lock = threading.Lock()
        self._db: Optional[sqlite3.Connection] = None
        if root is not None:
            path = Path(root) / "scores" / f"{stage}.sqlite"
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(path), timeout=60, check_same_thread=False)
            self._db.execute("CREATE TABLE IF NOT EXISTS results (key TEXT PRIMARY KEY, value BLOB NOT NULL)")
            self._db.commit()
        self.hits = 0
        self.misses = 0

    def key(self, *content: Any) -> str:
        return digest(self._identity, *content)

    def get(self, key: str) -> Optional[Arrays]:
        row = None
        if self._db is not None:
            with self._lock:
                row = self._db.execute("SELECT value FROM results WHERE key = ?", (key,)).fetchone()
        if row is None:
            self.misses += 1
            return None
        try:
            value = from_bytes(row[0])
        except (ValueError, OSError, EOFError, zipfile.BadZipFile):  # a damaged entry is computed again, overwritten
            self.misses += 1
            return None
        self.hits += 1
        return value

    def put_many(self, items: Sequence[tuple[str, Arrays]]) -> None:
        if self._db is None or not items:
            return
        rows = [(key, to_bytes(value)) for key, value in items]
        with self._lock:
            self._db.executemany("INSERT OR REPLACE INTO results (key, value) VALUES (?, ?)", rows)
            self._db.commit()

    def map(self, keys: Sequence[str], compute: Callable[[list[int]], Sequence[Optional[Arrays]]]) -> list[Arrays]:
        """The value of every key, in order; `compute(indices)` returns the missing ones (one call per map).
        A None from `compute` (a failed answer) is returned as it is and not stored, so a rerun retries it."""
        first = {}  # key -> index of its first occurrence; equal inputs are computed once
        for i, key in enumerate(keys):
            first.setdefault(key, i)
        found = {key: self.get(key) for key in first}
        missing = [first[key] for key, value in found.items() if value is None]
        if missing:
            computed = list(compute(missing))
            if len(computed) != len(missing):
                raise RuntimeError(f"{self.stage}: computed {len(computed)} results for {len(missing)} inputs")
            for i, value in zip(missing, computed):
                found[keys[i]] = value
            self.put_many([(keys[i], found[keys[i]]) for i in missing if found[keys[i]] is not None])
        return [found[key] for key in keys]  # type: ignore[misc]

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


def stage_cache(options: Any, stage: str, identity: Mapping[str, Any]) -> ContentCache:
    """The stage's cache under ScoreOptions.cache_dir (the mqeval cache when unset)."""
    from mqeval.paths import cache_dir

    root = getattr(options, "cache_dir", None)
    return ContentCache(Path(root) if root else cache_dir(), stage, identity)
