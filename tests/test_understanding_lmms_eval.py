"""mqeval's adapter inside lmms-eval itself: a small local task, a tiny random Qwen2.5-VL (LoRA backbone).

Needs the optional extra `understanding` (lmms-eval 0.7.3); skipped without it."""
from __future__ import annotations

import dataclasses
import json
import os
import textwrap

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from types import SimpleNamespace

import pytest
from PIL import Image

from mqeval.benchmarks.catalog import load_plugin
from mqeval.benchmarks.understanding.adapter import BackboneResponder, lmms_class
from mqeval.benchmarks.understanding.evaluate import evaluate_understanding
from mqeval.model.metaquery_config import BackboneConfig


def write_toy_task(folder):
    """Three yes/no questions on coloured squares, exact-match scored (the lmms-eval task format)."""
    rows = []
    for i, (colour, rgb) in enumerate([("red", (220, 0, 0)), ("green", (0, 200, 0)), ("blue", (0, 0, 220))]):
        Image.new("RGB", (56, 56), rgb).save(folder / f"{i}.png")
        rows.append({"id": i, "image": str(folder / f"{i}.png"), "question": f"Is the square {colour}?",
                     "answer": "yes"})
    (folder / "toy.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    (folder / "utils.py").write_text(textwrap.dedent("""
        from PIL import Image

        def doc_to_visual(doc):
            return [Image.open(doc["image"]).convert("RGB")]

        def doc_to_text(doc, lmms_eval_specific_kwargs=None):
            return doc["question"] + "\\nAnswer yes or no."

        def process_results(doc, results):
            return {"exact_match": float(results[0].strip().lower() == doc["answer"])}
    """))
    (folder / "toy.yaml").write_text(textwrap.dedent(f"""
        task: mqeval_toy
        dataset_path: json
        dataset_kwargs:
          data_files:
            test: {folder / 'toy.jsonl'}
        test_split: test
        output_type: generate_until
        doc_to_visual: !function utils.doc_to_visual
        doc_to_text: !function utils.doc_to_text
        doc_to_target: answer
        generation_kwargs:
          max_new_tokens: 3
          temperature: 0
          do_sample: false
        process_results: !function utils.process_results
        metric_list:
          - metric: exact_match
            aggregation: mean
            higher_is_better: true
    """))


@pytest.mark.slow
def test_mqeval_adapter_runs_inside_lmms_eval(tmp_path):
    pytest.importorskip("lmms_eval")
    import torch
    from lmms_eval.api.registry import MODEL_REGISTRY
    from lmms_eval.tasks import TaskManager

    from mqeval.model.backbones import build_backbone
    from mqeval.model.metaquery_config import ConditionConfig

    write_toy_task(tmp_path)
    torch.manual_seed(0)
    config = BackboneConfig(family="qwen2_5_vl", model_id="tiny://qwen2_5_vl", tuning="lora", dtype="float32")
    responder = BackboneResponder(build_backbone(config, ConditionConfig()))
    mme = load_plugin("mme")
    bench = type(mme)(dataclasses.replace(mme.spec, name="toy", options={
        "task": "mqeval_toy", "source_metric": "exact_match", "metric": "accuracy", "scale": 100.0}))
    card = SimpleNamespace(name="tiny-lora", model=SimpleNamespace(backbone=config))
    result = evaluate_understanding(bench, card, device="cpu", responder=responder,
                                    task_manager=TaskManager(include_path=str(tmp_path)))
    assert MODEL_REGISTRY["mqeval"] is lmms_class()
    assert set(result.metrics) == {"accuracy"} and result.metrics["accuracy"] in (0.0, 100 / 3, 200 / 3, 100.0)
    assert [r["sample_id"] for r in result.per_sample] == ["0", "1", "2"]
    expected = [responder.generate(f"Is the square {c}?\nAnswer yes or no.",
                                   [Image.open(tmp_path / f"{i}.png").convert("RGB")], {"max_new_tokens": 3})
                for i, c in enumerate(["red", "green", "blue"])]
    # lmms-eval strips some answers and not others (a run of vertical tabs came through as it was): whitespace apart
    assert [r["response"].strip() for r in result.per_sample] == [e.strip() for e in expected]
    assert result.metrics["accuracy"] == pytest.approx(100 * sum(e.strip().lower() == "yes" for e in expected) / 3)
    assert "adapter mqeval" in result.scorer.notes[1]
