"""A fake benchmark and a fake pipeline for runner/store tests (no model, no torch model code).

The fake pipeline draws each image from its own generator only (like a batch-invariant model), mixed with a hash of
the prompt, so images depend on exactly (prompt, seed).
"""
from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from mqeval.benchmarks.base import Benchmark, BenchmarkSpec, GenerationSpec
from mqeval.contract.samples import Sample
from mqeval.contract.scoring import ScoreOptions, ScoreResult, ScorerInfo
from mqeval.fileio import atomic_open
from mqeval.generation.settings import GenerationSettings


def fake_spec(images_per_prompt: int = 2, seed: int = 7) -> BenchmarkSpec:
    return BenchmarkSpec(
        name="fake", plugin="fake", version="1", description="fake benchmark for tests",
        generation=GenerationSpec(images_per_prompt=images_per_prompt, seed=seed),
    )


class FakeBenchmark(Benchmark):
    def __init__(self, num_samples: int = 5, images_per_prompt: int = 2, seed: int = 7):
        super().__init__(fake_spec(images_per_prompt, seed))
        self.num_samples = num_samples
        self.finalized = 0

    def samples(self, data_dir: Optional[Path] = None) -> list[Sample]:
        return [Sample(sample_id=f"p{i:03d}", index=i, prompt=f"a photo of {i} circles")
                for i in range(self.num_samples)]

    def image_path(self, out_dir: Path, sample: Sample, image_index: int) -> Path:
        return Path(out_dir) / f"{sample.index:05d}" / "samples" / f"{image_index:04d}.png"

    def finalize(self, out_dir: Path, samples: list[Sample]) -> None:
        self.finalized += 1
        for sample in samples:
            with atomic_open(Path(out_dir) / f"{sample.index:05d}" / "metadata.jsonl") as handle:
                handle.write(json.dumps({"prompt": sample.prompt}) + "\n")

    def score(self, out_dir: Path, samples: list[Sample], options: ScoreOptions) -> ScoreResult:
        import numpy as np
        from PIL import Image

        records = []
        for sample in samples:
            means = [float(np.asarray(Image.open(self.image_path(out_dir, sample, j))).mean()) / 255
                     for j in range(self.generation.images_per_prompt)]
            records.append({"sample_id": sample.sample_id, "brightness": float(np.mean(means)), "prompt": "clash"})
        return ScoreResult(
            metrics=self.aggregate(records), higher_is_better={"brightness": True}, per_sample=records,
            scorer=ScorerInfo(name="mean-brightness", version="1", notes=("test scorer",)),
        )

    def aggregate(self, per_sample: list[dict[str, Any]]) -> dict[str, float]:
        return {"brightness": sum(r["brightness"] for r in per_sample) / len(per_sample)}


@dataclass
class Output:
    images: list


@dataclass
class FakePipeline:
    fail_after_batches: Optional[int] = None  # raise after this many batches (an interrupted run)
    batch_sizes: list[int] = field(default_factory=list)

    def __call__(self, prompts, negative_prompts=None, input_images=None, generators=None, guidance_scale=1.0,
                 image_guidance_scale=1.0, num_inference_steps=1, scheduler="default", resolution=16):
        import torch
        from PIL import Image

        if self.fail_after_batches is not None and len(self.batch_sizes) >= self.fail_after_batches:
            raise KeyboardInterrupt("simulated interruption")
        self.batch_sizes.append(len(prompts))
        images = []
        for prompt, generator in zip(prompts, generators, strict=True):
            noise = torch.rand(resolution, resolution, 3, generator=generator)
            shift = int(hashlib.sha256(prompt.encode()).hexdigest()[:2], 16) / 255
            pixels = ((noise * 0.5 + shift * 0.5) * 255).round().to(torch.uint8).numpy()
            images.append(Image.fromarray(pixels, "RGB"))
        return Output(images)


def fake_settings(seed: int = 7, images_per_prompt: int = 2, resolution: int = 16) -> GenerationSettings:
    return GenerationSettings(
        seed=seed, images_per_prompt=images_per_prompt, guidance_scale=1.0, image_guidance_scale=1.0,
        num_inference_steps=1, scheduler="default", resolution=resolution,
    )


@dataclass
class FakeGroup:
    """A ProcessGroup stand-in: one rank of a world whose ranks run as threads of this process."""

    rank: int = 0
    world_size: int = 1
    device: str = "cpu"
    threads_barrier: Optional[threading.Barrier] = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.threads_barrier is not None:
            self.threads_barrier.wait(timeout=60)


def run_ranks_as_threads(world_size: int, target) -> list:
    """Call target(group) for every rank of a world in its own thread; return the results in rank order."""
    barrier = threading.Barrier(world_size)
    results, errors = [None] * world_size, []

    def body(rank):
        try:
            results[rank] = target(FakeGroup(rank, world_size, threads_barrier=barrier))
        except BaseException as exc:  # surfaced below
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=body, args=(r,)) for r in range(world_size)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results


def png_bytes(images_dir: Path) -> dict[str, bytes]:
    return {str(p.relative_to(images_dir)): p.read_bytes() for p in sorted(Path(images_dir).rglob("*.png"))}
