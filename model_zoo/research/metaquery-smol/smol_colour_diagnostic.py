"""Softer diagnostic than GenEval's rules for small models: does the dominant colour follow the prompt?

For every single-object prompt with a colour (shapes `colors`, shapes-knowledge), take the image's foreground
pixels (far from the background colour), assign each to the nearest palette colour, and count an image as a match
when the most frequent one is the prompt's colour. Chance is about 1/6.
Usage: PYTHONPATH=. python model_zoo/research/metaquery-smol/smol_colour_diagnostic.py RUN_DIR [RUN_DIR ...]
"""
from __future__ import annotations

import collections
import json
import sys
from pathlib import Path
from typing import Optional

import numpy as np
from PIL import Image

from mqeval.benchmarks.shapes.vocab import BACKGROUND, COLORS

NAMES = list(COLORS)
PALETTE = np.array([COLORS[n] for n in NAMES], dtype=float)


def dominant_colour(path: Path) -> Optional[str]:
    pixels = np.asarray(Image.open(path).convert("RGB"), dtype=float).reshape(-1, 3)
    foreground = pixels[np.abs(pixels - np.array(BACKGROUND)).sum(1) > 60]
    if len(foreground) < 4:
        return None
    nearest = ((foreground[:, None] - PALETTE[None]) ** 2).sum(-1).argmin(1)
    return NAMES[int(np.bincount(nearest, minlength=len(NAMES)).argmax())]


def colour_match(run: Path) -> dict[str, tuple[int, int]]:
    counts: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])
    for line in (run / "samples.jsonl").read_text().splitlines():
        record = json.loads(line)
        if not record["images"]:
            continue
        # GenEval layout: all images of a prompt share its folder and metadata.jsonl
        folder = run / record["images"][0].split("/samples")[0]
        clauses = json.loads((folder / "metadata.jsonl").read_text())["include"]
        if len(clauses) != 1 or "color" not in clauses[0]:
            continue
        for image in record["images"]:
            counts[record["tag"]][0] += dominant_colour(run / image) == clauses[0]["color"]
            counts[record["tag"]][1] += 1
    return {tag: (hit, total) for tag, (hit, total) in counts.items()}


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        result = colour_match(Path(arg))
        print(arg, "  ".join(f"{tag}: {hit}/{total} = {hit / total:.2f}" for tag, (hit, total) in result.items()))
