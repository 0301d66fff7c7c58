"""The shapes world: scenes of flat coloured shapes on a plain background, drawn at any size.

Boxes are in unit coordinates (0..1 of the image side), so one scene renders at 32, 64 or 512 px alike. Each
shape is defined analytically inside its box (`inside`); drawing averages that test over sub-pixel samples
(anti-aliasing), and the analytic detector uses the same definition as its templates.

Seeds: the benchmark's prompt set is fixed by its own seed (prompts.py); `sample_example(seed)` draws a training
(scene, caption) pair. Seeds below TRAIN_SEED_START are reserved for validation and tests.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np
from PIL import Image

from mqeval.benchmarks.geneval.rules import TASKS, relative_position
from mqeval.benchmarks.shapes.prompts import Metadata, random_metadata
from mqeval.benchmarks.shapes.vocab import BACKGROUND, COLORS, SHAPES, noun_phrase

__all__ = [
    "BACKGROUND", "COLORS", "SHAPES", "ObjectSpec", "Scene", "draw_scene", "inside", "scene_for_metadata",
    "sample_scene", "sample_example", "sample_labelled", "describe_scene", "TRAIN_SEED_START",
]

TRAIN_SEED_START = 1_000_000
Box = tuple[float, float, float, float]

# Side of an object's (square) box as a fraction of the image side, by number of objects in the scene. The
# smallest, 0.2, is 6.4 px at 32 px: the detector still tells the shapes apart there.
SIZE_RANGE = {1: (0.3, 0.5), 2: (0.24, 0.4), 3: (0.22, 0.32), 4: (0.2, 0.28)}
GAP = 0.07  # free space between boxes (about 2 px at 32 px), so that objects never touch
EDGE = 0.03  # free space to the image border
# Position scenes hold their relation with this stricter margin than GenEval's 0.1, so that pixel rounding of
# the detected boxes cannot flip a correct scene.
SAFE_POSITION_MARGIN = 0.2


@dataclass(frozen=True)
class ObjectSpec:
    shape: str
    color: str
    box: Box  # x0, y0, x1, y1 in unit coordinates

    def __post_init__(self) -> None:
        if self.shape not in SHAPES:
            raise ValueError(f"unknown shape {self.shape!r}; known: {', '.join(SHAPES)}")
        if self.color not in COLORS:
            raise ValueError(f"unknown colour {self.color!r}; known: {', '.join(COLORS)}")


@dataclass(frozen=True)
class Scene:
    objects: tuple[ObjectSpec, ...]
    size: int = 64  # default render size in pixels


def inside(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Whether points (u, v) in box coordinates (0..1, v downwards) lie inside `shape`."""
    if shape == "circle":
        return (u - 0.5) ** 2 + (v - 0.5) ** 2 <= 0.25
    if shape == "square":
        return (u >= 0) & (u <= 1) & (v >= 0) & (v <= 1)
    if shape == "triangle":  # apex at the top centre, base along the bottom
        return (np.abs(u - 0.5) <= v / 2) & (v <= 1)
    if shape == "diamond":
        return np.abs(u - 0.5) + np.abs(v - 0.5) <= 0.5
    raise ValueError(f"unknown shape {shape!r}")


def coverage(shape: str, box_px: Box, height: int, width: int, supersample: int = 4) -> np.ndarray:
    """Fraction of each pixel covered by `shape` filling `box_px` (pixel units), as a float array (height, width)."""
    x0, y0, x1, y1 = box_px
    offsets = (np.arange(supersample) + 0.5) / supersample
    xs = (np.arange(width)[:, None] + offsets[None, :]).ravel()
    ys = (np.arange(height)[:, None] + offsets[None, :]).ravel()
    u = (xs - x0) / max(x1 - x0, 1e-9)
    v = (ys - y0) / max(y1 - y0, 1e-9)
    uu, vv = u[None, :], v[:, None]
    hit = inside(shape, uu, vv) & (uu >= 0) & (uu <= 1) & (vv >= 0) & (vv <= 1)
    return hit.reshape(height, supersample, width, supersample).mean(axis=(1, 3))


def draw_scene(scene: Scene, size: Optional[int] = None, antialias: bool = True) -> Image.Image:
    """Render `scene` as an RGB image of side `size` (default: scene.size)."""
    size = int(size or scene.size)
    canvas = np.empty((size, size, 3), dtype=np.float64)
    canvas[:] = BACKGROUND
    for obj in scene.objects:
        box_px = tuple(c * size for c in obj.box)
        x0, y0 = max(int(np.floor(box_px[0])), 0), max(int(np.floor(box_px[1])), 0)
        x1, y1 = min(int(np.ceil(box_px[2])), size), min(int(np.ceil(box_px[3])), size)
        if x1 <= x0 or y1 <= y0:
            continue
        local = (box_px[0] - x0, box_px[1] - y0, box_px[2] - x0, box_px[3] - y0)
        alpha = coverage(obj.shape, local, y1 - y0, x1 - x0, supersample=4 if antialias else 1)[..., None]
        patch = canvas[y0:y1, x0:x1]
        canvas[y0:y1, x0:x1] = patch * (1 - alpha) + np.asarray(COLORS[obj.color], dtype=np.float64) * alpha
    return Image.fromarray(np.clip(np.rint(canvas), 0, 255).astype(np.uint8), "RGB")


def _boxes_clear(box: Box, others: Sequence[Box]) -> bool:
    return all(
        box[0] >= o[2] + GAP or o[0] >= box[2] + GAP or box[1] >= o[3] + GAP or o[1] >= box[3] + GAP for o in others
    )


def _holds_positions(metadata: Metadata, groups: list[list[Box]]) -> bool:
    for clause, subjects in zip(metadata.get("include", []), groups):
        if "position" in clause:
            relation, target = clause["position"]
            for a in subjects:
                for b in groups[target]:
                    if relation not in relative_position(a, b, SAFE_POSITION_MARGIN):
                        return False
    return True


def _check_satisfiable(metadata: Metadata) -> None:
    wanted: dict[str, int] = {}
    for clause in metadata.get("include", []):
        wanted[clause["class"]] = max(wanted.get(clause["class"], 0), int(clause["count"]))
    for clause in metadata.get("exclude", []):
        if wanted.get(clause["class"], 0) >= int(clause["count"]):
            raise ValueError(f"no scene can satisfy {metadata['prompt']!r}: include and exclude contradict")


def scene_for_metadata(
    metadata: Metadata, rng: np.random.Generator, size: int = 64, max_tries: int = 2000
) -> Scene:
    """A random scene that satisfies a GenEval-format metadata line: exactly the included objects.

    Objects of an include clause without a colour get random colours; boxes never touch; position clauses hold
    with margin SAFE_POSITION_MARGIN.
    """
    _check_satisfiable(metadata)
    specs: list[tuple[int, str, str]] = []  # (clause index, shape, colour)
    for index, clause in enumerate(metadata.get("include", [])):
        for _ in range(int(clause["count"])):
            color = clause.get("color") or list(COLORS)[int(rng.integers(len(COLORS)))]
            specs.append((index, clause["class"], color))
    low, high = SIZE_RANGE[min(max(len(specs), 1), max(SIZE_RANGE))]
    for _ in range(max_tries):
        boxes: list[Box] = []
        for _spec in specs:
            side = float(rng.uniform(low, high))
            for _attempt in range(50):
                x0 = float(rng.uniform(EDGE, 1 - EDGE - side))
                y0 = float(rng.uniform(EDGE, 1 - EDGE - side))
                box = (x0, y0, x0 + side, y0 + side)
                if _boxes_clear(box, boxes):
                    boxes.append(box)
                    break
            else:
                break
        if len(boxes) < len(specs):
            continue
        groups: list[list[Box]] = [[] for _ in metadata.get("include", [])]
        for (index, _, _), box in zip(specs, boxes):
            groups[index].append(box)
        if _holds_positions(metadata, groups):
            objects = tuple(ObjectSpec(shape, color, box) for (_, shape, color), box in zip(specs, boxes))
            return Scene(objects, size)
    raise RuntimeError(f"could not place a scene for {metadata['prompt']!r} in {max_tries} tries")


def describe_scene(scene: Scene) -> str:
    """A plain caption listing every object with its colour: 'a photo of a red circle and a blue square'."""
    phrases = [noun_phrase(o.shape, o.color) for o in scene.objects]
    if not phrases:
        return "a photo of an empty background"
    listed = phrases[0] if len(phrases) == 1 else ", ".join(phrases[:-1]) + " and " + phrases[-1]
    return f"a photo of {listed}"


def sample_scene(rng: np.random.Generator, task: Optional[str] = None, size: int = 64) -> tuple[Scene, Metadata]:
    """A random prompt of `task` (or of a random task) as a GenEval metadata line, and a scene satisfying it."""
    metadata = random_metadata(rng, task)
    return scene_for_metadata(metadata, rng, size), metadata


def sample_labelled(seed: int, size: int = 64, tasks: Sequence[str] = TASKS) -> tuple[Scene, dict[str, Any]]:
    """A training pair from `seed`: a metadata line of a task drawn from `tasks`, and a scene satisfying it."""
    rng = np.random.default_rng(seed)
    return sample_scene(rng, tasks[int(rng.integers(len(tasks)))], size)


def sample_example(seed: int, size: int = 64, tasks: Sequence[str] = TASKS) -> tuple[Scene, str]:
    """A training (scene, caption) pair from `seed`; the caption is the metadata line's prompt."""
    scene, metadata = sample_labelled(seed, size, tasks)
    return scene, metadata["prompt"]
