"""Training examples from the shapes world, kept apart from the `shapes` benchmark.

- Seeds: caption c uses world seed TRAIN_SEED_START + seed_offset + c (the benchmark and tests use seeds below
  TRAIN_SEED_START).
- Wording: every benchmark prompt starts with "a photo of"; training captions replace it with another template
  ("a picture of", "an image of", "a drawing of", or nothing), so no benchmark prompt appears verbatim in training
  (`is_benchmark_prompt` checks it). No caption names a colour through an object ("the colour of ..."): the
  `shapes-knowledge` split keeps that phrasing unseen.
- Index i -> caption i // images_per_caption, scene i % images_per_caption: several scenes of one caption sit next
  to each other, so one (expensive) condition serves several (cheap) denoising targets.
"""
from __future__ import annotations

import functools

import numpy as np

from mqeval.train.train_config import DataConfig
from mqeval.train.data import Example

TEMPLATES = ("a picture of {}", "an image of {}", "a drawing of {}", "{}")
BENCHMARK_PREFIX = "a photo of "


def training_caption(prompt: str, rng: np.random.Generator) -> str:
    body = prompt[len(BENCHMARK_PREFIX):] if prompt.startswith(BENCHMARK_PREFIX) else prompt
    return TEMPLATES[int(rng.integers(len(TEMPLATES)))].format(body)


@functools.lru_cache(maxsize=1)
def benchmark_prompts() -> frozenset[str]:
    from mqeval.benchmarks.shapes.prompts import TASKS, candidates

    return frozenset(line["prompt"] for task in TASKS for line in candidates(task))


def is_benchmark_prompt(caption: str) -> bool:
    return caption in benchmark_prompts()


class ShapesTrainingSet:
    def __init__(self, config: DataConfig):
        from mqeval.benchmarks.shapes.world import TRAIN_SEED_START

        self.config = config
        self.first_seed = TRAIN_SEED_START + config.seed_offset
        self.k = max(1, config.images_per_caption)

    def __len__(self) -> int:
        return self.config.num_examples

    @functools.lru_cache(maxsize=4096)
    def caption_and_metadata(self, caption_index: int) -> tuple[str, dict]:
        from mqeval.benchmarks.shapes.world import sample_labelled

        seed = self.first_seed + caption_index
        _, metadata = sample_labelled(seed, size=self.config.resolution)
        caption = training_caption(metadata["prompt"], np.random.default_rng([seed, 1]))
        assert not is_benchmark_prompt(caption), caption
        return caption, metadata

    def __getitem__(self, index: int) -> Example:
        from mqeval.benchmarks.shapes.world import draw_scene, scene_for_metadata

        caption_index, image_index = divmod(int(index), self.k)
        caption, metadata = self.caption_and_metadata(caption_index)
        rng = np.random.default_rng([self.first_seed + caption_index, 2, image_index])
        scene = scene_for_metadata(metadata, rng, size=self.config.resolution)
        return Example(draw_scene(scene, self.config.resolution), caption)
