"""The GPU-ready loop's parts on CPU: background writer, prefetch, cheap validity check, precision, batch size."""
from __future__ import annotations

import threading
import time

import pytest
import torch
from PIL import Image

from mqeval.errors import ConfigError
from mqeval.generation.acceleration import Acceleration
from mqeval.generation.batch_size import CPU_BATCH_SIZE, default_batch_size
from mqeval.generation.jobs import is_valid_image
from mqeval.generation.prefetch import prefetched
from mqeval.generation.sharded_writer import generate, save_image
from mqeval.generation.background_saver import ImageWriter

from helpers_runner import FakeBenchmark, FakeGroup, FakePipeline, fake_settings


def test_writer_saves_everything_and_bounds_the_queue(tmp_path):
    gate = threading.Event()
    started = []

    def slow_save(image, path):
        started.append(path)
        gate.wait(5)
        save_image(image, path)

    writer = ImageWriter(slow_save, max_pending=2)
    image = Image.new("RGB", (4, 4), (9, 9, 9))
    writer.submit(image, tmp_path / "0.png")  # taken by the thread, which blocks in save
    deadline = time.time() + 5
    while not started and time.time() < deadline:
        time.sleep(0.01)
    writer.submit(image, tmp_path / "1.png")
    writer.submit(image, tmp_path / "2.png")  # the queue holds 2: a third waiting image would block
    blocked = threading.Thread(target=writer.submit, args=(image, tmp_path / "3.png"))
    blocked.start()
    blocked.join(0.2)
    assert blocked.is_alive(), "submit must block while max_pending images wait"
    gate.set()
    blocked.join(5)
    writer.close()
    assert writer.written == 4 and all(is_valid_image(tmp_path / f"{i}.png", (4, 4)) for i in range(4))


def test_writer_errors_reach_the_loop(tmp_path):
    def failing(image, path):
        raise OSError("disk full")

    writer = ImageWriter(failing, max_pending=1)
    writer.submit(Image.new("RGB", (2, 2)), tmp_path / "a.png")
    with pytest.raises(OSError, match="disk full"):
        writer.close()


def test_a_failing_write_stops_generation(tmp_path, monkeypatch):
    import mqeval.generation.sharded_writer as runner

    def failing(image, path, before_rename=None):
        raise OSError("no space left on device")

    monkeypatch.setattr(runner, "save_image", failing)
    bench = FakeBenchmark(num_samples=4)
    with pytest.raises(OSError, match="no space"):
        generate(bench, bench.samples(), FakePipeline(), fake_settings(), tmp_path, batch_size=1, group=FakeGroup(),
                 progress=False)


def test_prefetch_keeps_order_runs_ahead_and_surfaces_errors():
    prepared = []

    def prepare(item):
        prepared.append(item)
        if item == 3:
            raise ValueError("bad item")
        return item * 10

    seen = []
    with pytest.raises(ValueError, match="bad item"):
        for item, value in prefetched([0, 1, 2, 3], prepare):
            seen.append((item, value, len(prepared)))
    assert [(i, v) for i, v, _ in seen] == [(0, 0), (1, 10), (2, 20)]
    assert all(count >= i + 1 for i, _, count in seen)
    assert list(prefetched([], prepare)) == []


def test_cheap_validity_check_catches_cut_files_without_decoding(tmp_path):
    png, jpg = tmp_path / "a.png", tmp_path / "b.jpg"
    Image.new("RGB", (16, 16), (1, 2, 3)).save(png)
    Image.new("RGB", (16, 16), (1, 2, 3)).save(jpg, format="JPEG")
    assert is_valid_image(png, (16, 16)) and is_valid_image(jpg, (16, 16))
    assert is_valid_image(png, (16, 16), decode=True) and not is_valid_image(png, (8, 8))
    for path in (png, jpg):
        path.write_bytes(path.read_bytes()[:-5])
        assert not is_valid_image(path, (16, 16))
    # A corrupt body behind an intact header and tail is only caught by the full decode.
    good = tmp_path / "c.png"
    Image.new("RGB", (16, 16), (1, 2, 3)).save(good)
    data = bytearray(good.read_bytes())
    data[60:70] = b"\x00" * 10
    good.write_bytes(bytes(data))
    assert not is_valid_image(good, (16, 16), decode=True)


def test_precision_choices():
    assert Acceleration().autocast_dtype("cpu") is None and Acceleration().resolved("cpu") == "fp32"
    assert Acceleration("bf16").autocast_dtype("cpu") == torch.bfloat16
    assert Acceleration("fp32").autocast_dtype("cuda") is None
    with pytest.raises(ConfigError, match="CUDA"):
        Acceleration("fp16").autocast_dtype("cpu")
    with pytest.raises(ConfigError, match="precision"):
        Acceleration("fp8")
    with Acceleration("bf16").context("cpu"):
        assert torch.get_autocast_dtype("cpu") == torch.bfloat16 and torch.is_autocast_enabled("cpu")


def test_default_batch_size_on_cpu():
    assert default_batch_size("cpu", 32) == CPU_BATCH_SIZE == 16


def test_cli_rejects_an_unknown_precision(tmp_path):
    from helpers_cli import mqeval

    result = mqeval("generate", "shapes", "--model", "metaquery-tiny", "--limit", "1", "--precision", "fp8",
                    "--out", str(tmp_path))
    assert result.returncode == 2 and result.stderr.startswith("Error: --precision must be one of"), result.stderr


@pytest.mark.slow
def test_compiled_denoiser_gives_the_same_images():
    from mqeval.model.loading import load_model
    from mqeval.model.pipeline import MetaQueryPipeline
    from mqeval.zoo import load_card

    card = load_card("metaquery-tiny")
    plain = load_model(card).eval()
    compiled = Acceleration(compile=True).apply(load_model(card).eval())
    kwargs = dict(guidance_scale=2.0, num_inference_steps=2)
    a = MetaQueryPipeline(plain)(["a red circle"], generators=[torch.Generator().manual_seed(1)], **kwargs)
    b = MetaQueryPipeline(compiled)(["a red circle"], generators=[torch.Generator().manual_seed(1)], **kwargs)
    import numpy as np

    diff = np.abs(np.asarray(a.images[0]).astype(int) - np.asarray(b.images[0]).astype(int))
    assert diff.max() <= 1 and set(dict(compiled.named_parameters())) == set(dict(plain.named_parameters()))
