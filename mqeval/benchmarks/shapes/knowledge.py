"""`shapes-knowledge`: shapes whose colour must come from world knowledge ("a circle the colour of the sky").

It asks the paper's Table 7 question at small scale: does a frozen LLM's knowledge reach the image better through
learnable queries than through last-layer embeddings? Only facts the backbone holds are used, or the split would
measure its ignorance: KNOWLEDGE_FACTS are the everyday objects whose colour SmolLM2-135M-Instruct picks correctly
among the colour words in both forced-choice probes (after the chat template and in plain text; probe in
mqeval.train.knowledge_probe, results in model_zoo/research/metaquery-smol/smollm2_colour_probe.json) and whose
colour is in the shapes palette.

Tags: `knowledge_colors` (colour named through an object) and `control_colors` (the same shape and colour named
directly), judged by the same GenEval colour rule; the gap between them is what knowledge costs. Training captions
never use "the colour of" (mqeval.train.shapes_data), so the phrasing is unseen in training.
"""
from __future__ import annotations

from mqeval.benchmarks.shapes.benchmark import ShapesBenchmark
from mqeval.benchmarks.shapes.prompts import Metadata, colors
from mqeval.benchmarks.shapes.vocab import COLORS, SHAPES, noun_phrase

KNOWLEDGE_FACTS: dict[str, str] = {
    "the sky": "blue",
    "the ocean": "blue",
    "a strawberry": "red",
    "a tomato": "red",
    "blood": "red",
    "a cherry": "red",
    "a stop sign": "red",
    "lavender": "purple",
}


def knowledge_prompt_set() -> list[Metadata]:
    lines: list[Metadata] = []
    for thing, color in KNOWLEDGE_FACTS.items():
        assert color in COLORS, color
        for shape in SHAPES:
            line = colors(shape, color)
            lines.append({**line, "tag": "knowledge_colors",
                          "prompt": f"a photo of {noun_phrase(shape)} the colour of {thing}"})
    controls = {(shape, color) for color in KNOWLEDGE_FACTS.values() for shape in SHAPES}
    for shape, color in sorted(controls):
        lines.append({**colors(shape, color), "tag": "control_colors"})
    return lines


class ShapesKnowledgeBenchmark(ShapesBenchmark):
    """The shapes benchmark over knowledge_prompt_set() (its sha256 pinned in benchmarks/shapes-knowledge.yaml)."""

    def __init__(self, spec):
        super().__init__(spec)
        self._build_prompts = knowledge_prompt_set
