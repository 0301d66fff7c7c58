"""images.sha256: every image's sha256 recorded when it is written; an image that is not the generated one is
made again by `generate` and keeps `score` from labelling the result with the card."""
from __future__ import annotations

from PIL import Image

from helpers_runner import FakeBenchmark, FakeGroup, FakePipeline, fake_settings, png_bytes
from mqeval.fileio import sha256_file
from mqeval.run_folder import LEDGER_NAME
from mqeval.generation.provenance import ImageLedger
from mqeval.generation.sharded_writer import generate


def _generate(tmp, bench, fingerprint=None):
    return generate(bench, bench.samples(), FakePipeline(), fake_settings(), tmp, batch_size=2, group=FakeGroup(),
                    progress=False, fingerprint=fingerprint)


def test_every_image_is_recorded_with_its_sha256(tmp_path):
    bench = FakeBenchmark(num_samples=3)
    _generate(tmp_path, bench)
    recorded = ImageLedger(tmp_path).read()
    images = sorted((tmp_path / "images").rglob("*.png"))
    assert recorded == {str(p.relative_to(tmp_path)): sha256_file(p) for p in images} and len(images) == 6
    lines = (tmp_path / LEDGER_NAME).read_text().splitlines()  # sha256sum format, one line per image
    assert len(lines) == 6 and all(len(line.split("  ")[0]) == 64 for line in lines)


def test_a_replaced_image_is_detected_and_generated_again(tmp_path, capsys):
    bench = FakeBenchmark(num_samples=3)
    _generate(tmp_path, bench, fingerprint={"settings": 1})
    before = png_bytes(tmp_path / "images")
    replaced = tmp_path / "images" / "00001" / "samples" / "0000.png"
    Image.new("RGB", (16, 16), (255, 255, 255)).save(replaced)  # a "correct" image pasted in by hand
    audit = ImageLedger(tmp_path).audit(sorted((tmp_path / "images").rglob("*.png")))
    assert audit.changed == ("images/00001/samples/0000.png",) and not audit.unrecorded
    report = _generate(tmp_path, bench, fingerprint={"settings": 1})
    assert report.num_pending == 1 and png_bytes(tmp_path / "images") == before
    assert "1 changed after generation (images/00001/samples/0000.png); generating them again" in \
        capsys.readouterr().err


def test_an_image_written_but_not_recorded_is_made_again(tmp_path):
    """A run killed between the rename and the ledger line leaves an unrecorded image: it is not trusted."""
    bench = FakeBenchmark(num_samples=2)
    _generate(tmp_path, bench, fingerprint={"settings": 1})
    ledger = tmp_path / LEDGER_NAME
    ledger.write_text("".join(line + "\n" for line in ledger.read_text().splitlines()[1:]))
    assert _generate(tmp_path, bench, fingerprint={"settings": 1}).num_pending == 1


def test_a_folder_from_before_the_ledger_is_adopted(tmp_path):
    bench = FakeBenchmark(num_samples=2)
    _generate(tmp_path, bench, fingerprint={"settings": 1})
    (tmp_path / LEDGER_NAME).unlink()
    assert _generate(tmp_path, bench, fingerprint={"settings": 1}).num_pending == 0
    assert len(ImageLedger(tmp_path).read()) == 4


def test_a_shorter_run_keeps_the_records_of_the_other_images(tmp_path):
    _generate(tmp_path, FakeBenchmark(num_samples=3), fingerprint={"settings": 1})
    _generate(tmp_path, FakeBenchmark(num_samples=1), fingerprint={"settings": 1})  # like a later --limit 1
    assert len(ImageLedger(tmp_path).read()) == 6
    assert _generate(tmp_path, FakeBenchmark(num_samples=3), fingerprint={"settings": 1}).num_pending == 0
