"""The shapes-knowledge split: facts the backbone holds, well-formed GenEval lines, pinned and loadable."""
import json
from pathlib import Path

from mqeval.benchmarks.catalog import load_benchmark
from mqeval.benchmarks.shapes.knowledge import KNOWLEDGE_FACTS, knowledge_prompt_set
from mqeval.benchmarks.shapes.vocab import COLORS, SHAPES

RESEARCH = Path(__file__).resolve().parent.parent / "model_zoo" / "research" / "metaquery-smol"
PROBE = RESEARCH / "smollm2_colour_probe.json"


def test_facts_are_the_ones_smollm2_held_in_the_recorded_probe():
    probe = {row["object"]: row for row in json.loads(PROBE.read_text())}
    for thing, color in KNOWLEDGE_FACTS.items():
        row = probe[thing]
        assert row["truth"] == color and row["chat_choice"] == color and row["text_choice"] == color, thing
        assert color in COLORS


def test_split_lines_and_controls():
    entries = knowledge_prompt_set()
    knowledge = [line for line in entries if line["tag"] == "knowledge_colors"]
    controls = [line for line in entries if line["tag"] == "control_colors"]
    assert len(knowledge) == len(KNOWLEDGE_FACTS) * len(SHAPES)
    assert all("the colour of" in line["prompt"] and line["include"][0]["color"] in COLORS for line in knowledge)
    asked = {(line["include"][0]["class"], line["include"][0]["color"]) for line in knowledge}
    assert {(line["include"][0]["class"], line["include"][0]["color"]) for line in controls} == asked
    assert all(line["include"][0]["color"] not in line["prompt"] for line in knowledge)  # colour never named directly


def test_benchmark_loads_with_pinned_hash_and_aggregates_by_tag():
    bench = load_benchmark("shapes-knowledge")
    samples = bench.samples()
    assert len(samples) == 44 and samples[0].sample_id.startswith("knowledge_colors-")
    records = [{"tag": s.metadata["tag"], "correct": [s.metadata["tag"] == "control_colors"] * 4} for s in samples]
    metrics = bench.aggregate(records)
    assert metrics["knowledge_colors"] == 0.0 and metrics["control_colors"] == 1.0 and metrics["overall"] == 0.5
