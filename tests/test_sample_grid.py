"""The per-run image grid that `mqeval run` writes: prompts spread over tasks, verdict frames, missing files."""
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from PIL import Image

from mqeval.reports.figures import sample_grid


def _run(tmp_path: Path, tags: list[str], images_per_prompt: int = 2) -> SimpleNamespace:
    samples = []
    for index, tag in enumerate(tags):
        images = []
        for j in range(images_per_prompt):
            rel = f"images/{index:05d}/{j}.png"
            (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (32, 32), (0, 0, 255)).save(tmp_path / rel)
            images.append(rel)
        samples.append({"sample_id": f"s{index}", "prompt": f"a photo of thing number {index}", "tag": tag,
                        "images": images, "correct": [True, False][:images_per_prompt]})
    return SimpleNamespace(path=tmp_path, samples=samples)  # the grid reads only the samples rows


def test_rows_take_every_task_in_turn_and_frames_show_verdicts(tmp_path):
    run = _run(tmp_path, ["a", "a", "a", "b", "c"])
    path = sample_grid(run.samples, run.path, tmp_path / "grid.png", max_prompts=3, cell=40)
    with Image.open(path) as grid:
        arr = np.asarray(grid.convert("RGB"))
    assert grid.size == (300 + 44 * 2, 4 + 44 * 3)
    # rows are the first sample of tags a, b, c; the first image is framed green (correct), the second red
    top = 4
    assert tuple(arr[top - 2, 300 + 10]) == (30, 160, 60)
    assert tuple(arr[top - 2, 300 + 44 + 10]) == (200, 40, 40)
    assert tuple(arr[top + 20, 300 + 20]) == (0, 0, 255)


def test_missing_images_are_marked_and_no_images_means_no_grid(tmp_path):
    run = _run(tmp_path, ["a", "b"])
    (tmp_path / run.samples[0]["images"][0]).unlink()
    assert sample_grid(run.samples, run.path, tmp_path / "grid.png") is not None
    for sample in run.samples:
        for rel in sample["images"]:
            (tmp_path / rel).unlink(missing_ok=True)
    assert sample_grid(run.samples, run.path, tmp_path / "empty.png") is None and not (tmp_path / "empty.png").exists()
