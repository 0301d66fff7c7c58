"""Save finished images on a background thread, so PNG/JPEG encoding and the rename overlap the next batch.

Memory stays bounded: `submit` blocks while `max_pending` images wait. A failed save (disk full, permissions) is
raised in the generating thread at the next `submit` or at `close`; the images queued after it are dropped, and a
rerun regenerates them (nothing half-written is left: `save` writes to a temporary name and renames).
"""
from __future__ import annotations

import queue
import threading
from pathlib import Path
from typing import Any, Callable, Optional

_STOP = object()


class ImageWriter:
    def __init__(self, save: Callable[[Any, Path], None], max_pending: int = 16):
        self._save = save
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, max_pending))
        self._error: Optional[BaseException] = None
        self._thread = threading.Thread(target=self._work, name="mqeval-image-writer", daemon=True)
        self._thread.start()
        self.written = 0

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            if self._error is None:
                try:
                    self._save(*item)
                    self.written += 1
                except BaseException as exc:  # re-raised in the generating thread
                    self._error = exc

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    def submit(self, image: Any, path: Path) -> None:
        self._raise_error()
        self._queue.put((image, path))

    def close(self) -> None:
        """Wait until every queued image is on disk; raise the first save error."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join()
        self._raise_error()

    def __enter__(self) -> "ImageWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:  # keep the original error; still finish what was queued (those images are complete)
            try:
                self.close()
            except BaseException:
                pass
