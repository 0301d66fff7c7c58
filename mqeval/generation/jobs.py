"""Work units of a generation run: one job per image, fixed batches over the global order, round-robin shards.

Why batches are cut from the global order of *all* images (not of the pending ones) and handed out round-robin:
a batch's composition then depends only on the batch size, never on the number of processes or on which images an
interrupted run already wrote. Seeds already depend only on (global seed, sample id, image index); fixing the
batch composition as well keeps images byte-identical across process counts and resumes even on hardware whose
kernels are not batch-invariant (batched matmuls on GPUs may pick different algorithms per batch shape).
Across *batch sizes* the images are identical only as far as the model is batch-invariant; the tests check it for
the tiny models on CPU.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from mqeval.benchmarks.base import Benchmark
from mqeval.contract.samples import Sample
from mqeval.errors import ConfigError
from mqeval.generation.settings import GenerationSettings
from mqeval.images.check import FORMATS
from mqeval.seeding import derive_seed


@dataclass(frozen=True)
class ImageJob:
    sample: Sample
    image_index: int
    seed: int
    path: Path


def images_per_sample(sample: Sample, settings: GenerationSettings) -> int:
    """The protocol's images_per_prompt; a sample may restate it in `num_images` but not contradict it."""
    if sample.num_images not in (1, settings.images_per_prompt):
        raise ConfigError(
            f"Sample {sample.sample_id} asks for {sample.num_images} images but the protocol's images_per_prompt is "
            f"{settings.images_per_prompt}"
        )
    return settings.images_per_prompt


def sample_seeds(sample: Sample, settings: GenerationSettings) -> list[int]:
    return [derive_seed(settings.seed, sample.sample_id, j) for j in range(images_per_sample(sample, settings))]


def plan_jobs(
    benchmark: Benchmark, samples: Sequence[Sample], settings: GenerationSettings, images_dir: Path
) -> list[ImageJob]:
    """Every image of the run in the global order (sample order, then image index)."""
    ids = [s.sample_id for s in samples]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"Benchmark '{benchmark.name}' has duplicate sample ids; seeds and resume need unique ids")
    jobs = []
    for sample in samples:
        for j, seed in enumerate(sample_seeds(sample, settings)):
            jobs.append(ImageJob(sample, j, seed, Path(benchmark.image_path(images_dir, sample, j))))
    paths = [job.path for job in jobs]
    if len(set(paths)) != len(paths):
        raise ConfigError(f"Benchmark '{benchmark.name}' maps two images to the same path")
    return jobs


def image_format(path: Path) -> str:
    """The file format a benchmark's layout asks for, from its extension (PNG unless it says .jpg)."""
    return FORMATS.get(Path(path).suffix.lower(), "PNG")


# The bytes every complete file of the format ends with (PNG: the IEND chunk; JPEG: the end-of-image marker).
END_MARKERS = {"PNG": b"IEND\xaeB`\x82", "JPEG": b"\xff\xd9"}


def is_valid_image(path: Path, size: tuple[int, int], decode: bool = False) -> bool:
    """A finished image: of the format its extension names, of the expected (width, height), complete.

    Complete means ending with the format's end marker, a check of a few bytes; `decode=True` decodes the whole
    file as well. The runner writes every image to a temporary name and renames it, so a file under its final name
    is never half-written by mqeval; the end marker catches copies that were cut short."""
    from PIL import Image

    if not path.is_file():
        return False
    expected = image_format(path)
    try:
        with open(path, "rb") as handle:
            handle.seek(max(0, path.stat().st_size - 16))
            if not handle.read().rstrip(b"\x00").endswith(END_MARKERS[expected]):
                return False
        with Image.open(path) as image:
            if image.format != expected or image.size != tuple(size):
                return False
            if decode:
                image.load()  # raises on a corrupt file
    except Exception:  # PIL raises many types (OSError, SyntaxError, ValueError) for broken files
        return False
    return True


def make_batches(jobs: Sequence[ImageJob], batch_size: int) -> list[list[ImageJob]]:
    if batch_size < 1:
        raise ConfigError(f"--batch-size must be at least 1, got {batch_size}")
    return [list(jobs[i : i + batch_size]) for i in range(0, len(jobs), batch_size)]


def shard(batches: Sequence[list[ImageJob]], rank: int, world_size: int) -> list[list[ImageJob]]:
    """Pending batch k goes to rank k % world_size (every rank computes the same list, so no communication)."""
    return [batch for k, batch in enumerate(batches) if k % world_size == rank]
