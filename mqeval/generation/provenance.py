"""Content-based provenance of a run's images: `<run>/images.sha256`, one `<sha256>  <path>` line per image.

The generation runner appends a line right after it renames an image into place (one short O_APPEND write, so
processes of a multi-process run can share the file and a killed run leaves at most an image without a line, which
the next run simply generates again). The file has `sha256sum` format: `sha256sum -c images.sha256` in the run
folder checks it. An image whose bytes no longer match its line (replaced by hand, copied over, edited) is not the
card's output: `generate` makes it again and `score` refuses to label it with the card.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional

from mqeval.fileio import atomic_open, sha256_file
from mqeval.run_folder import LEDGER_NAME



@dataclass(frozen=True)
class ImageAudit:
    """Which of a run's images are the generated ones."""

    changed: tuple[str, ...] = ()  # recorded with other content
    unrecorded: tuple[str, ...] = ()  # present but never recorded
    matching: frozenset = field(default_factory=frozenset)  # paths (as given) whose content is the recorded one

    @property
    def foreign(self) -> tuple[str, ...]:
        return self.changed + self.unrecorded

    def describe(self, limit: int = 5) -> str:
        parts = []
        for what, paths in (("changed after generation", self.changed), ("not recorded", self.unrecorded)):
            if paths:
                more = f" and {len(paths) - limit} more" if len(paths) > limit else ""
                parts.append(f"{len(paths)} {what} ({', '.join(paths[:limit])}{more})")
        return "; ".join(parts)


class ImageLedger:
    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LEDGER_NAME

    def _key(self, image: Path) -> str:
        try:
            return str(Path(image).resolve().relative_to(self.run_dir.resolve()))
        except ValueError:
            return str(Path(image).resolve())

    def exists(self) -> bool:
        return self.path.is_file()

    def read(self) -> dict[str, str]:
        """path -> sha256; the last line of a path wins; malformed lines (a torn write) are ignored."""
        entries: dict[str, str] = {}
        if not self.path.is_file():
            return entries
        for line in self.path.read_text(encoding="utf-8", errors="replace").splitlines():
            digest, sep, name = line.partition("  ")
            if sep and len(digest) == 64 and name and all(c in "0123456789abcdef" for c in digest):
                entries[name] = digest
        return entries

    def record(self, image: Path, content: Optional[Path] = None) -> str:
        """Append `image`'s sha256, read from `content` when given (the file it is about to be renamed from)."""
        digest = sha256_file(content or image)
        line = f"{digest}  {self._key(image)}\n".encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
        return digest

    def audit(self, images: Iterable[Path]) -> ImageAudit:
        """Compare the existing files among `images` with their recorded sha256."""
        recorded = self.read()
        changed, unrecorded, matching = [], [], set()
        for image in images:
            if not Path(image).is_file():
                continue
            key = self._key(image)
            if key not in recorded:
                unrecorded.append(key)
            elif sha256_file(image) != recorded[key]:
                changed.append(key)
            else:
                matching.add(Path(image))
        return ImageAudit(tuple(changed), tuple(unrecorded), frozenset(matching))

    def adopt(self, images: Iterable[Path]) -> int:
        """Record existing images of a folder generated before mqeval kept this file; returns how many."""
        count = 0
        for image in images:
            if Path(image).is_file():
                self.record(image)
                count += 1
        return count

    def compact(self) -> None:
        """Rewrite the file with one line per recorded image that still exists (atomic)."""
        recorded = self.read()
        with atomic_open(self.path, "w", encoding="utf-8") as handle:
            for key, digest in sorted(recorded.items()):
                if (self.run_dir / key).is_file():
                    handle.write(f"{digest}  {key}\n")

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


def trusted_images(ledger: ImageLedger, valid: Iterable[Path], is_main: bool) -> set[Path]:
    """The valid images that are the ones generated. The main rank prints what is made again and why, and records
    the images of a folder whose generation.json predates the ledger (they passed the settings check, and hashing
    them once records and trusts them); it calls this before the other ranks read the ledger."""
    if is_main and not ledger.exists():
        valid = list(valid)
        ledger.adopt(valid)
        return set(valid)
    audit = ledger.audit(valid)
    if is_main and audit.foreign:
        import sys

        print(f"WARNING: {len(audit.foreign)} image(s) in {ledger.run_dir} are not the ones this run generated: "
              f"{audit.describe()}; generating them again", file=sys.stderr)
    return set(audit.matching)
