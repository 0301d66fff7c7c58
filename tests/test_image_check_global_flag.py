"""A truncated image is counted as unreadable even when another library switched PIL's process-wide
LOAD_TRUNCATED_IMAGES on (lmms-eval does, on import), and the flag is left as it was found."""
from __future__ import annotations

from PIL import Image, ImageFile

from mqeval.images.check import ImageReader


def test_truncated_png_is_unreadable_whatever_pils_global_flag(tmp_path, monkeypatch):
    path = tmp_path / "0000.png"
    Image.new("RGB", (64, 64), (10, 200, 30)).save(path)
    path.write_bytes(path.read_bytes()[:-40])  # cut inside the image data
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    reader = ImageReader(tmp_path)
    assert reader.open_rgb(path) is None
    assert reader.counts() == {"unreadable": 1}
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True
