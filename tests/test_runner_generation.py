"""The generation runner on a fake benchmark and pipeline: layout, seeds, batch/shard invariance, resume, manifest."""
from __future__ import annotations

import os

import numpy as np
import pytest
from mqeval.generation.jobs import is_valid_image, make_batches, plan_jobs, shard
from mqeval.generation.manifest import StaleImagesError
from mqeval.generation.sharded_writer import generate
from mqeval.seeding import derive_seed
from PIL import Image

from helpers_runner import FakeBenchmark, FakeGroup, FakePipeline, fake_settings, png_bytes, run_ranks_as_threads


def run(tmp, *, batch_size=1, group=None, pipeline=None, bench=None, fingerprint=None, overwrite=False):
    bench = bench or FakeBenchmark()
    return generate(bench, bench.samples(), pipeline or FakePipeline(), fake_settings(), tmp, batch_size=batch_size,
                    group=group or FakeGroup(), progress=False, fingerprint=fingerprint, overwrite=overwrite)


def test_writes_every_image_in_the_layout_then_finalizes(tmp_path):
    bench = FakeBenchmark(num_samples=3)
    report = run(tmp_path, bench=bench, batch_size=2)
    names = sorted(png_bytes(tmp_path / "images"))
    assert names == [f"{i:05d}/samples/{j:04d}.png" for i in range(3) for j in range(2)]
    assert report.num_images == report.num_pending == report.num_written == 6
    assert bench.finalized == 1 and (tmp_path / "images" / "00002" / "metadata.jsonl").is_file()
    assert not list(tmp_path.rglob("*.tmp*")), "temporary files must be renamed or removed"


def test_each_image_uses_its_own_derived_seed(tmp_path):
    import torch

    run(tmp_path)
    bench = FakeBenchmark()
    sample = bench.samples()[3]
    generator = torch.Generator().manual_seed(derive_seed(7, sample.sample_id, 1))
    expected = FakePipeline()([sample.prompt], generators=[generator], resolution=16).images[0]
    with Image.open(bench.image_path(tmp_path / "images", sample, 1)) as written:
        assert np.array_equal(np.asarray(written), np.asarray(expected))


@pytest.mark.parametrize("batch_size", [2, 3, 7, 64])
def test_batch_size_does_not_change_the_images(tmp_path, batch_size):
    run(tmp_path / "b1", batch_size=1)
    run(tmp_path / "bn", batch_size=batch_size)
    assert png_bytes(tmp_path / "b1" / "images") == png_bytes(tmp_path / "bn" / "images")


@pytest.mark.parametrize("world_size", [2, 3])
def test_shards_cover_every_image_once_and_match_one_process(tmp_path, world_size):
    run(tmp_path / "single", batch_size=2)
    pipelines = [FakePipeline() for _ in range(world_size)]
    reports = run_ranks_as_threads(
        world_size, lambda group: run(tmp_path / "multi", batch_size=2, group=group, pipeline=pipelines[group.rank])
    )
    assert sum(sum(p.batch_sizes) for p in pipelines) == 10  # 5 prompts x 2 images, none twice
    assert [r.num_written for r in reports] == [sum(p.batch_sizes) for p in pipelines]
    assert png_bytes(tmp_path / "single" / "images") == png_bytes(tmp_path / "multi" / "images")


def test_round_robin_shard_of_fixed_batches():
    batches = make_batches(list(range(10)), 3)
    assert batches == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    assert shard(batches, 0, 2) == [[0, 1, 2], [6, 7, 8]] and shard(batches, 1, 2) == [[3, 4, 5], [9]]


def test_resume_after_interruption_skips_finished_images(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "run", batch_size=2, pipeline=FakePipeline(fail_after_batches=2))
    done = {p: p.stat().st_mtime_ns for p in (tmp_path / "run" / "images").rglob("*.png")}
    assert len(done) == 4
    os.utime(next(iter(done)), ns=(1, 1))  # an old mtime makes a rewrite visible even within the same tick
    done = {p: p.stat().st_mtime_ns for p in done}
    resumed = FakePipeline()
    report = run(tmp_path / "run", batch_size=2, pipeline=resumed)
    assert report.num_pending == 6 and report.num_written == 6 and sum(resumed.batch_sizes) == 6
    assert all(p.stat().st_mtime_ns == t for p, t in done.items())
    run(tmp_path / "clean", batch_size=2)
    assert png_bytes(tmp_path / "run" / "images") == png_bytes(tmp_path / "clean" / "images")


def test_truncated_wrong_size_and_missing_images_are_regenerated(tmp_path):
    run(tmp_path, batch_size=3)
    images = tmp_path / "images"
    reference = png_bytes(images)
    truncated, resized, deleted = (images / f"0000{i}" / "samples" / "0001.png" for i in range(3))
    truncated.write_bytes(truncated.read_bytes()[:-40])
    Image.new("RGB", (8, 8)).save(resized)
    deleted.unlink()
    assert not is_valid_image(truncated, (16, 16)) and not is_valid_image(resized, (16, 16))
    pipeline = FakePipeline()
    report = run(tmp_path, batch_size=3, pipeline=pipeline)
    assert report.num_written == 3
    # batches of 3 in the global order: images 1-2 (batch 0) and 3, 5 (batch 1) -> two batches rerun in full
    assert pipeline.batch_sizes == [3, 3]
    assert png_bytes(images) == reference


def test_a_finished_run_generates_nothing(tmp_path):
    run(tmp_path)
    pipeline = FakePipeline()
    report = run(tmp_path, pipeline=pipeline)
    assert pipeline.batch_sizes == [] and report.num_written == 0


def test_manifest_refuses_to_mix_configurations_unless_overwrite(tmp_path):
    run(tmp_path, fingerprint={"settings": {"seed": 7}})
    with pytest.raises(StaleImagesError, match="settings"):
        run(tmp_path, fingerprint={"settings": {"seed": 8}})
    pipeline = FakePipeline()
    run(tmp_path, fingerprint={"settings": {"seed": 8}}, overwrite=True, pipeline=pipeline)
    assert sum(pipeline.batch_sizes) == 10
    run(tmp_path, fingerprint={"settings": {"seed": 8}})  # same fingerprint: accepted


def test_duplicate_sample_ids_are_refused(tmp_path):
    from mqeval.contract.samples import Sample
    from mqeval.errors import ConfigError

    bench = FakeBenchmark()
    with pytest.raises(ConfigError, match="duplicate"):
        plan_jobs(bench, [Sample("x", 0, "a"), Sample("x", 1, "b")], fake_settings(), tmp_path)


def test_temporary_files_of_a_killed_run_are_removed(tmp_path):
    stale = tmp_path / "images" / "00001" / "samples" / ".0000.png.k2j3.tmp.png"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"half a png")
    run(tmp_path)
    assert not stale.exists() and len(png_bytes(tmp_path / "images")) == 10


def test_lazy_pipeline_loads_the_model_only_when_an_image_is_missing(tmp_path):
    from mqeval.generation.sharded_writer import LazyPipeline

    loads = []

    def load():
        loads.append(1)
        return FakePipeline()

    run(tmp_path, pipeline=LazyPipeline(load))
    run(tmp_path, pipeline=LazyPipeline(load))
    assert loads == [1]


def test_image_format_follows_the_layout_extension(tmp_path):
    """A layout that asks for .jpg gets real JPEGs, and they count as finished on a rerun (no regeneration)."""
    from mqeval.generation.sharded_writer import save_image

    jpg, png = tmp_path / "a" / "x.jpg", tmp_path / "b" / "x.png"
    for path in (jpg, png):
        save_image(Image.new("RGB", (16, 16), (200, 30, 30)), path)
    assert jpg.read_bytes()[:3] == b"\xff\xd8\xff" and png.read_bytes()[:4] == b"\x89PNG"
    assert is_valid_image(jpg, (16, 16)) and is_valid_image(png, (16, 16))
    png.rename(tmp_path / "b" / "y.jpg")  # PNG bytes behind a .jpg name are not what the layout asks for
    assert not is_valid_image(tmp_path / "b" / "y.jpg", (16, 16))


def test_scoring_needs_every_image_of_the_protocol(tmp_path):
    """Samples that leave num_images at 1 still need images_per_prompt images before --strict scoring starts."""
    from mqeval.contract.scoring import ScoreOptions
    from mqeval.errors import DataIntegrityError
    from mqeval.evaluation.scoring import score_images

    run(tmp_path, batch_size=2)
    bench = FakeBenchmark()
    samples = bench.samples()
    assert all(s.num_images == 1 for s in samples) and bench.generation.images_per_prompt == 2
    bench.image_path(tmp_path / "images", samples[0], 1).unlink()
    with pytest.raises(DataIntegrityError, match="--strict: 1 image"):
        score_images(bench, samples, tmp_path / "images", ScoreOptions(), strict=True)
