"""Open the images a scorer reads and count every one that is missing, unreadable, or not what the protocol expects.

A scorer asks an ImageReader for each image instead of opening it itself. The reader returns the RGB image (or
the file's bytes, for judged benchmarks), or None for an image that cannot be used, and keeps a list of issues:
- failures (the image is not scored; the result is marked incomplete): `missing`, `unreadable` (not decodable:
  truncated, corrupt, empty, not an image), `too_small` (under `min_side` pixels), `wrong_prompt` (the layout's
  own metadata says the image shows another prompt);
- adjustments (the image is scored after the conversion the scorer's protocol applies, and it is recorded):
  `converted` (mode other than RGB, converted with PIL's convert("RGB") as GenEval does), `resized` (another size
  than the run's resolution, where the protocol resizes), `other_format` (e.g. JPEG bytes in a .png file).
Results carry the counts per kind, samples.jsonl the issues of each sample's images, and a warning names them.
"""
from __future__ import annotations

import contextlib
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Optional

FAILURES = ("missing", "unreadable", "too_small", "wrong_prompt")
ADJUSTMENTS = ("converted", "resized", "other_format")
# The file format each extension names: what the generator writes (mqeval.generation.jobs) and a reader expects.
FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}


@dataclass(frozen=True)
class ImageRules:
    size: Optional[int] = None  # expected side in pixels (square); None: any size is the protocol's
    resize: bool = False  # the scorer resizes other sizes to `size` (area average) before judging
    min_side: int = 16  # smaller images cannot show what a prompt asks for


class ImageReader:
    def __init__(self, root: Path, rules: ImageRules = ImageRules()):
        self.root = Path(root)
        self.rules = rules
        self.issues: list[dict[str, str]] = []

    def _name(self, path: Path) -> str:
        try:
            return str(Path(path).relative_to(self.root))
        except ValueError:
            return str(path)

    def note(self, path: Path, issue: str, detail: str) -> None:
        self.issues.append({"image": self._name(path), "issue": issue, "detail": detail})

    def _decode(self, path: Path, pixels: bool = True) -> Optional[Any]:
        """The decoded image (not converted), or None after noting why it cannot be used. With `pixels` False the
        file is only checked (header, chunk checksums) and an undecoded image comes back."""
        from PIL import Image, UnidentifiedImageError

        path = Path(path)
        if not path.is_file():
            self.note(path, "missing", "no such file")
            return None
        try:
            with _truncated_images_refused(), Image.open(path) as handle:
                if pixels:
                    handle.load()
                    image, file_format = handle.copy(), handle.format
                else:
                    image, file_format = handle, handle.format
                    handle.verify()
        except (OSError, SyntaxError, ValueError, UnidentifiedImageError, Image.DecompressionBombError) as exc:
            self.note(path, "unreadable", f"{type(exc).__name__}: {exc}"[:200])
            return None
        if min(image.size) < self.rules.min_side:
            self.note(path, "too_small", f"{image.size[0]}x{image.size[1]} px, under {self.rules.min_side} px")
            return None
        expected = FORMATS.get(path.suffix.lower())
        if expected and file_format != expected:
            self.note(path, "other_format", f"{file_format} bytes in a {path.suffix} file")
        return image

    def open_rgb(self, path: Path) -> Optional[Any]:
        """The image as the scorer judges it (RGB, resized where the protocol resizes), or None."""
        from PIL import Image

        image = self._decode(path)
        if image is None:
            return None
        if image.mode != "RGB":
            self.note(path, "converted", f"mode {image.mode} converted to RGB")
            image = image.convert("RGB")
        size = self.rules.size
        if size and image.size != (size, size):
            if self.rules.resize:
                self.note(path, "resized", f"{image.size[0]}x{image.size[1]} resized to {size}x{size} (area average)")
                image = image.resize((size, size), resample=getattr(Image, "Resampling", Image).BOX)
            else:
                self.note(path, "resized", f"{image.size[0]}x{image.size[1]}, the run's images are {size}x{size}; "
                                           "scored as it is")
        return image

    def usable(self, path: Path, pixels: bool = True) -> bool:
        """Whether the file can be scored by a scorer that reads it itself (noting mode and format on the way);
        `pixels` False checks the file without decoding it (FID reads 30,000 images once more itself)."""
        image = self._decode(path, pixels)
        if image is not None and image.mode != "RGB":
            self.note(path, "converted", f"mode {image.mode}; the scorer converts it to RGB")
        return image is not None

    def read_bytes(self, path: Path) -> Optional[bytes]:
        """The file's bytes if it decodes (judged benchmarks send the file as it is), else None."""
        return Path(path).read_bytes() if self.usable(path) else None

    # ---- reporting ------------------------------------------------------------------------------------------
    def issues_of(self, paths: Iterable[Path]) -> list[dict[str, str]]:
        names = {self._name(p) for p in paths}
        return [issue for issue in self.issues if issue["image"] in names]

    def counts(self) -> dict[str, int]:
        counted = Counter(issue["issue"] for issue in self.issues)
        return {kind: counted[kind] for kind in FAILURES + ADJUSTMENTS if counted[kind]}

    def warnings(self, limit: int = 5) -> list[str]:
        out = []
        for kind in FAILURES + ADJUSTMENTS:
            found = [i for i in self.issues if i["issue"] == kind]
            if found:
                what = "left out of the scores" if kind in FAILURES else "scored after adjustment"
                shown = "; ".join(f"{i['image']}: {i['detail']}" for i in found[:limit])
                more = f"; and {len(found) - limit} more" if len(found) > limit else ""
                out.append(f"{len(found)} image(s) {kind.replace('_', ' ')}, {what}: {shown}{more}")
        return out

    def incomplete(self) -> list[str]:
        counts = self.counts()
        return [f"{counts[kind]} image(s) {kind.replace('_', ' ')}" for kind in FAILURES if kind in counts]



def common_side(paths: Iterable[Path]) -> Optional[int]:
    """The side most of the square images among `paths` have (read from headers only); None if there is none.
    Stands in for the run's resolution in a folder of unknown origin, so that an odd-sized image is noticed."""
    from PIL import Image

    sides: Counter = Counter()
    for path in paths:
        try:
            with Image.open(path) as image:
                width, height = image.size
        except Exception:  # unreadable files are reported when they are opened for scoring
            continue
        if width == height:
            sides[width] += 1
    return sides.most_common(1)[0][0] if sides else None


_PIL_FLAG_LOCK = threading.Lock()


@contextlib.contextmanager
def _truncated_images_refused():
    """PIL's process-wide LOAD_TRUNCATED_IMAGES switched off while a file is checked: another library in the process
    may have switched it on (lmms-eval does, on import), and a truncated image must be counted, not half-decoded."""
    from PIL import ImageFile

    with _PIL_FLAG_LOCK:
        before = ImageFile.LOAD_TRUNCATED_IMAGES
        ImageFile.LOAD_TRUNCATED_IMAGES = False
        try:
            yield
        finally:
            ImageFile.LOAD_TRUNCATED_IMAGES = before
