"""Shapes prompts as GenEval metadata lines, and the named prompt sets of the shapes benchmarks.

Each builder returns one line in GenEval's format ({"tag", "include", ["exclude"], "prompt"}), written the way
GenEval writes its own: position prompts list the reference object first and give the subject a
["relation", 0] position; counting prompts exclude count + 1 of the same class.

A prompt set is a function () -> list of metadata lines, registered by name in PROMPT_SETS; a benchmark spec picks
one with `options.prompt_set`. A new split (e.g. prompts that need world knowledge) is a new registered function.
"""
from __future__ import annotations

import copy
import functools
import hashlib
import itertools
import json
from typing import Any, Callable, Optional, Sequence

import numpy as np

from mqeval.benchmarks.geneval.rules import RELATIONS, TASKS
from mqeval.benchmarks.shapes.vocab import COLORS, SHAPES, noun_phrase
from mqeval.registry import Registry

Metadata = dict[str, Any]
COUNTS = (2, 3, 4)


def single_object(shape: str) -> Metadata:
    return {
        "tag": "single_object",
        "include": [{"class": shape, "count": 1}],
        "prompt": f"a photo of {noun_phrase(shape)}",
    }


def two_object(first: str, second: str) -> Metadata:
    return {
        "tag": "two_object",
        "include": [{"class": first, "count": 1}, {"class": second, "count": 1}],
        "prompt": f"a photo of {noun_phrase(first)} and {noun_phrase(second)}",
    }


def counting(shape: str, count: int) -> Metadata:
    return {
        "tag": "counting",
        "include": [{"class": shape, "count": count}],
        "exclude": [{"class": shape, "count": count + 1}],
        "prompt": f"a photo of {noun_phrase(shape, count=count)}",
    }


def colors(shape: str, color: str) -> Metadata:
    return {
        "tag": "colors",
        "include": [{"class": shape, "count": 1, "color": color}],
        "prompt": f"a photo of {noun_phrase(shape, color)}",
    }


def position(subject: str, relation: str, reference: str) -> Metadata:
    """'a photo of a <subject> <relation> a <reference>'."""
    return {
        "tag": "position",
        "include": [{"class": reference, "count": 1}, {"class": subject, "count": 1, "position": [relation, 0]}],
        "prompt": f"a photo of {noun_phrase(subject)} {relation} {noun_phrase(reference)}",
    }


def color_attr(first: str, first_color: str, second: str, second_color: str) -> Metadata:
    return {
        "tag": "color_attr",
        "include": [
            {"class": first, "count": 1, "color": first_color},
            {"class": second, "count": 1, "color": second_color},
        ],
        "prompt": f"a photo of {noun_phrase(first, first_color)} and {noun_phrase(second, second_color)}",
    }


def candidates(task: str, shapes: Sequence[str] = SHAPES, palette: Sequence[str] = tuple(COLORS)) -> list[Metadata]:
    """Every distinct prompt of one task, in a canonical order."""
    pairs = list(itertools.permutations(shapes, 2))
    if task == "single_object":
        return [single_object(s) for s in shapes]
    if task == "two_object":
        return [two_object(a, b) for a, b in pairs]
    if task == "counting":
        return [counting(s, n) for s in shapes for n in COUNTS]
    if task == "colors":
        return [colors(s, c) for s in shapes for c in palette]
    if task == "position":
        return [position(a, r, b) for a, b in pairs for r in RELATIONS]
    if task == "color_attr":
        return [
            color_attr(a, ca, b, cb) for a, b in pairs for ca, cb in itertools.permutations(palette, 2)
        ]
    raise ValueError(f"unknown GenEval task {task!r}")


def subsample(lines: list[Metadata], cap: Optional[int], seed: int) -> list[Metadata]:
    """At most `cap` lines, drawn without replacement by `seed`, kept in canonical order."""
    if cap is None or len(lines) <= cap:
        return list(lines)
    keep = np.random.default_rng(seed).choice(len(lines), size=cap, replace=False)
    return [lines[i] for i in sorted(keep.tolist())]


# Per-task caps of the standard set: every single-object, two-object, counting and colour prompt; position and
# colour-attribute prompts drawn with a fixed seed. 4 + 12 + 12 + 24 + 32 + 32 = 116 prompts.
STANDARD_CAPS: dict[str, Optional[int]] = {
    "single_object": None,
    "two_object": None,
    "counting": None,
    "colors": None,
    "position": 32,
    "color_attr": 32,
}
STANDARD_SEED = 20250404


def standard_prompt_set() -> list[Metadata]:
    lines: list[Metadata] = []
    for offset, task in enumerate(TASKS):
        lines.extend(subsample(candidates(task), STANDARD_CAPS[task], STANDARD_SEED + offset))
    return lines


PROMPT_SETS: Registry[Callable[[], list[Metadata]]] = Registry("shapes prompt set")
PROMPT_SETS.register("standard", standard_prompt_set)


def canonical_jsonl(lines: Sequence[Metadata]) -> bytes:
    """The bytes the spec's sha256 covers: one JSON object per line, keys in GenEval's order, '\\n' endings."""
    return "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines).encode("utf-8")


def prompt_set_sha256(lines: Sequence[Metadata]) -> str:
    return hashlib.sha256(canonical_jsonl(lines)).hexdigest()


def random_metadata(rng: np.random.Generator, task: Optional[str] = None) -> Metadata:
    """One prompt of `task` (or of a task drawn uniformly), drawn from all of the task's prompts."""
    task = task or TASKS[int(rng.integers(len(TASKS)))]
    pool = _pool(task)
    return copy.deepcopy(pool[int(rng.integers(len(pool)))])


@functools.lru_cache(maxsize=None)
def _pool(task: str) -> tuple[Metadata, ...]:
    return tuple(candidates(task))
