"""The shipped metaquery-smol weights still draw what they drew when their scores were recorded.

Twelve `shapes` prompts, two of each task, four images each, generated and judged as `mqeval run shapes --model
metaquery-smol` does (batch size 4, so each prompt's images form one batch, as in the full run). Every image's
verdict must equal the one recorded in tests/data/metaquery_smol_shapes_guard.json (how it was recorded is
written there). A change to the model code, the pipeline, the seeding or the rule engine that moves any of these
48 verdicts fails here.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from mqeval.contract.scoring import ScoreOptions
from mqeval.fileio import checkpoint_sha256
from mqeval.generation.sharded_writer import images_dir_of
from mqeval.evaluation.images import generate_images
from mqeval.evaluation.plan import plan_run
from mqeval.evaluation.scoring import score_images
from mqeval.evaluation.worker_plan import GenerationJob

GUARD = Path(__file__).parent / "data" / "metaquery_smol_shapes_guard.json"


@pytest.mark.slow
def test_metaquery_smol_reproduces_its_recorded_verdicts(tmp_path):
    recorded = json.loads(GUARD.read_text())
    plan = plan_run("shapes", recorded["card"])
    assert checkpoint_sha256(plan.checkpoint) == recorded["checkpoint_sha256"]
    chosen = [s for s in plan.samples if s.sample_id in recorded["verdicts"]]
    assert len(chosen) == len(recorded["verdicts"]) == 12
    plan = dataclasses.replace(plan, samples=chosen)
    generate_images(plan, GenerationJob(tmp_path, batch_size=recorded["batch_size"], progress=False))
    result = score_images(plan.benchmark, chosen, images_dir_of(tmp_path), ScoreOptions())
    verdicts = {row["sample_id"]: row["correct"] for row in result.per_sample}
    assert verdicts == recorded["verdicts"]
