"""Oracle images for a shapes benchmark: every prompt drawn correctly, in the benchmark's official layout.

The scorer's ceiling (it scores 1.0 on them) and a check of the whole scoring path without a model; `--blur` and
`--noise` show how the analytic detector holds up on degraded images.

    python -m mqeval.benchmarks.shapes.oracle OUT_DIR [--benchmark shapes] [--size 64] [--blur 0] [--noise 0]
    mqeval score shapes --images OUT_DIR
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Optional

import numpy as np
from PIL import Image, ImageFilter

from mqeval.benchmarks.base import Benchmark
from mqeval.benchmarks.shapes.world import draw_scene, scene_for_metadata
from mqeval.seeding import derive_seed


def degrade(image: Image.Image, blur: float, noise: float, rng: np.random.Generator) -> Image.Image:
    """Gaussian blur (sigma in pixels), then Gaussian noise (standard deviation in 0-255 units)."""
    if blur > 0:
        image = image.filter(ImageFilter.GaussianBlur(blur))
    if noise > 0:
        pixels = np.asarray(image, dtype=np.float64) + rng.normal(0.0, noise, (image.height, image.width, 3))
        image = Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8), "RGB")
    return image


def write_oracle(
    benchmark: Benchmark, out_dir: Path, size: int = 64, blur: float = 0.0, noise: float = 0.0,
    limit: Optional[int] = None,
) -> int:
    """Draw every sample's images (a fresh scene per image, seeded like generation); return the image count."""
    samples = benchmark.samples()[:limit]
    count = 0
    for sample in samples:
        for j in range(sample.num_images):
            rng = np.random.default_rng(derive_seed(benchmark.generation.seed, sample.sample_id, j))
            image = degrade(draw_scene(scene_for_metadata(sample.metadata, rng, size)), blur, noise, rng)
            path = benchmark.image_path(out_dir, sample, j)
            path.parent.mkdir(parents=True, exist_ok=True)
            image.save(path)
            count += 1
    benchmark.finalize(out_dir, samples)
    return count


def main(argv: Optional[list[str]] = None) -> None:
    from mqeval.benchmarks.catalog import load_benchmark

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--benchmark", default="shapes")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--blur", type=float, default=0.0)
    parser.add_argument("--noise", type=float, default=0.0)
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args(argv)
    count = write_oracle(load_benchmark(args.benchmark), args.out_dir, args.size, args.blur, args.noise, args.limit)
    print(f"{count} oracle images in {args.out_dir}")


if __name__ == "__main__":
    main()
