"""generate(): write every image of a benchmark run, sharded across processes, resumable, atomically.

Steps (every rank runs them; `barrier` keeps them in step):
1. plan one job per image in the global order; seeds from (global seed, sample id, image index) only;
2. check the folder's manifest (refuse to mix configurations), then the main rank writes it and removes temporary
   files a killed run left behind;
3. every rank scans which images are already finished and valid, then a barrier (nobody writes before all scanned);
4. cut fixed batches from the global order, keep those with a missing image, rank r takes pending batch k if
   k % world == r (see mqeval.generation.jobs for why);
5. run the pipeline with one torch.Generator per image (the next batch's inputs prepared meanwhile), save missing
   images to a temporary name and rename, on a background thread (mqeval.generation.background_saver);
6. barrier; the main rank checks that every image is there and calls benchmark.finalize.
"""
from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from mqeval.benchmarks.base import Benchmark
from mqeval.contract.samples import Sample
from mqeval.fileio import atomic_path, remove_stale_temporaries
from mqeval.generation.acceleration import Acceleration
from mqeval.generation.distributed import ProcessGroup
from mqeval.generation.jobs import ImageJob, image_format, is_valid_image, make_batches, plan_jobs, shard
from mqeval.generation.manifest import check_manifest, write_manifest
from mqeval.generation.prefetch import prefetched
from mqeval.generation.provenance import ImageLedger, trusted_images
from mqeval.generation.settings import GenerationSettings
from mqeval.generation.background_saver import ImageWriter
from mqeval.run_folder import IMAGES_DIRNAME, MANIFEST_NAME



@dataclass(frozen=True)
class GenerationReport:
    images_dir: Path
    num_images: int  # images of the whole run
    num_pending: int  # images missing or invalid when the run started (all ranks)
    num_written: int  # images this rank wrote
    seconds: float
    rank: int
    world_size: int

    def describe(self) -> str:
        return (f"{self.num_images} images in {self.images_dir} ({self.num_pending} generated, "
                f"{self.num_images - self.num_pending} already there) in {self.seconds:.1f} s")


def images_dir_of(run_dir: Path) -> Path:
    return Path(run_dir) / IMAGES_DIRNAME


def generate(
    benchmark: Benchmark,
    samples: Sequence[Sample],
    model_or_pipeline: Any,
    settings: GenerationSettings,
    out_dir: Path,
    *,
    batch_size: int = 1,
    group: Optional[ProcessGroup] = None,
    progress: bool = True,
    fingerprint: Optional[dict[str, Any]] = None,
    overwrite: bool = False,
    acceleration: Acceleration = Acceleration(),
    on_image: Optional[Callable[[Path], None]] = None,
) -> GenerationReport:
    """Generate the images of `samples` into `out_dir/images` in the benchmark's layout.

    `model_or_pipeline` is a MetaQuery module (wrapped in MetaQueryPipeline) or any callable with the pipeline's
    signature. `fingerprint` (what determines the images) is stored in out_dir/generation.json; a rerun with a
    different fingerprint is refused unless `overwrite`, which deletes the old images first.
    """
    start = time.perf_counter()
    group = group or ProcessGroup("cpu")
    out_dir = Path(out_dir)
    images_dir = images_dir_of(out_dir)
    pipeline = as_pipeline(model_or_pipeline)
    jobs = plan_jobs(benchmark, samples, settings, images_dir)
    size = (settings.resolution, settings.resolution)
    ledger = ImageLedger(out_dir)

    if fingerprint is not None and not overwrite:
        check_manifest(out_dir, fingerprint)
    group.barrier()
    if group.is_main:
        if overwrite:
            shutil.rmtree(images_dir, ignore_errors=True)
            (out_dir / MANIFEST_NAME).unlink(missing_ok=True)
            ledger.clear()
        remove_stale_temporaries(images_dir)
        if fingerprint is not None:
            write_manifest(out_dir, fingerprint)
        finished = trusted_images(ledger, [job.path for job in jobs if is_valid_image(job.path, size)], True)
    group.barrier()
    if not group.is_main:  # after the main rank's clean-up and adoption above; nobody writes before the next barrier
        finished = trusted_images(ledger, [job.path for job in jobs if is_valid_image(job.path, size)], False)
    group.barrier()

    pending = [batch for batch in make_batches(jobs, batch_size) if any(j.path not in finished for j in batch)]
    mine = shard(pending, group.rank, group.world_size)
    num_written = _run(pipeline, mine, settings, finished, size, group, progress, ledger, acceleration, on_image)

    group.barrier()
    if group.is_main:
        missing = [str(job.path) for job in jobs if not is_valid_image(job.path, size)]
        if missing:
            raise RuntimeError(f"{len(missing)} images are missing after generation, e.g. {missing[0]}")
        ledger.compact()
        benchmark.finalize(images_dir, list(samples))
    return GenerationReport(
        images_dir=images_dir,
        num_images=len(jobs),
        num_pending=len(jobs) - len(finished),
        num_written=num_written,
        seconds=time.perf_counter() - start,
        rank=group.rank,
        world_size=group.world_size,
    )


def _run(
    pipeline: Callable,
    batches: list[list[ImageJob]],
    settings: GenerationSettings,
    finished: set[Path],
    size: tuple[int, int],
    group: ProcessGroup,
    progress: bool,
    ledger: ImageLedger,
    acceleration: Acceleration,
    on_image: Optional[Callable[[Path], None]] = None,
) -> int:
    """The loop: batch k+1's inputs are prepared (files read, text tokenised) while batch k denoises, and finished
    images are encoded and written on a background thread."""
    from tqdm.auto import tqdm

    desc = "generating" if group.world_size == 1 else f"generating (rank 0's share of {group.world_size})"
    total = sum(len(b) for b in batches)
    # disable=None lets tqdm switch itself off when stderr is not a terminal (logs stay readable).
    disable = None if (progress and group.is_main) else True
    max_pending = 2 * max((len(b) for b in batches), default=1)

    def save_and_record(image, path: Path) -> None:
        # The ledger line is written before the rename: a run killed in between leaves a line for a missing file
        # (ignored), never a whole image without its line (which a resume would take for a replaced one).
        save_image(image, path, before_rename=lambda tmp: ledger.record(path, content=tmp))
        if on_image is not None:  # e.g. the benchmark's prescorer, overlapping scoring with the next batch
            on_image(path)

    with tqdm(total=total, desc=desc, unit="img", disable=disable) as bar, \
            ImageWriter(save_and_record, max_pending) as writer:
        for batch, call in prefetched(batches, lambda b: prepare_call(pipeline, b, settings)):
            images = _generate_batch(pipeline, call, len(batch), group.device.split(":")[0], acceleration)
            for job, image in zip(batch, images):
                if image.size != size:
                    raise RuntimeError(f"the pipeline returned a {image.size} image, expected {size}")
                if job.path not in finished:  # images of the batch that were already valid stay untouched
                    writer.submit(image, job.path)
            bar.update(len(batch))
    return writer.written  # every submitted image: leaving the block waited for the saves


def prepare_call(pipeline: Callable, batch: list[ImageJob], settings: GenerationSettings) -> dict[str, Any]:
    """The pipeline's arguments for one batch (CPU work: input images read, generators seeded, text tokenised when
    the pipeline has a `prepare` step)."""
    import torch

    negatives = [
        j.sample.negative_prompt if j.sample.negative_prompt is not None else settings.negative_prompt for j in batch
    ]
    input_images = None
    if any(j.sample.input_images for j in batch):
        input_images = [[_open_rgb(p) for p in j.sample.input_images] for j in batch]
    call = dict(
        prompts=[j.sample.prompt for j in batch],
        negative_prompts=negatives if any(negatives) else None,
        input_images=input_images,
        # CPU generators: the initial noise is then the same on every device type.
        generators=[torch.Generator(device="cpu").manual_seed(j.seed) for j in batch],
        guidance_scale=settings.guidance_scale,
        image_guidance_scale=settings.image_guidance_scale,
        num_inference_steps=settings.num_inference_steps,
        scheduler=settings.scheduler,
        resolution=settings.resolution,
    )
    prepare = getattr(pipeline, "prepare", None)
    if prepare is not None:
        prepare(**call)
    return call


def _generate_batch(pipeline: Callable, call: dict[str, Any], expected: int, device_type: str,
                    acceleration: Acceleration) -> list:
    import torch

    with torch.inference_mode(), acceleration.context(device_type):
        output = pipeline(call.pop("prompts"), **call)
    images = list(output.images)
    if len(images) != expected:
        raise RuntimeError(f"the pipeline returned {len(images)} images for a batch of {expected}")
    return images


def save_image(image, path: Path, before_rename: Optional[Callable[[Path], None]] = None) -> None:
    """Write to a temporary name beside `path`, then rename: a killed run never leaves a half-written image.
    The format follows the extension (JPEG at PIL's default quality for `.jpg`, as the reference samplers save).
    `before_rename` is called with the finished temporary file."""
    with atomic_path(path) as tmp:
        image.convert("RGB").save(tmp, format=image_format(path))
        if before_rename is not None:
            before_rename(Path(tmp))


def _open_rgb(path: str):
    from PIL import Image

    with Image.open(path) as image:
        return image.convert("RGB")


class LazyPipeline:
    """Loads the model on the first batch: a rerun whose images are all there never loads it."""

    def __init__(self, load_model: Callable[[], Any]):
        self._load_model = load_model
        self._pipeline: Optional[Callable] = None

    def prepare(self, **call: Any) -> None:
        """Forwarded once the model is loaded (the first batch's text is tokenised by the call itself)."""
        prepare = getattr(self._pipeline, "prepare", None)
        if prepare is not None:
            prepare(**call)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self._pipeline is None:
            self._pipeline = as_pipeline(self._load_model())
        return self._pipeline(*args, **kwargs)


def as_pipeline(obj: Any) -> Callable:
    import torch

    if isinstance(obj, torch.nn.Module):
        from mqeval.model.pipeline import MetaQueryPipeline

        return MetaQueryPipeline(obj)
    if not callable(obj):
        raise TypeError(f"expected a MetaQuery model or a pipeline, got {type(obj).__name__}")
    return obj
