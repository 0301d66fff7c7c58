"""Understanding suites: specs, metric extraction, adapter choice, and mqeval's lmms-eval adapter logic on a tiny
random Qwen2.5-VL (LoRA). lmms-eval itself is an optional extra; the test that runs it is skipped without it."""
from __future__ import annotations

import importlib.util
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from types import SimpleNamespace

import pytest
import torch
from mqeval.benchmarks.catalog import load_benchmark, load_plugin
from mqeval.benchmarks.understanding.adapter import BackboneResponder, cut_at_stops
from mqeval.benchmarks.understanding.benchmark import extract_metric
from mqeval.benchmarks.understanding.evaluate import choose_adapter, evaluate_understanding, per_sample_records
from mqeval.errors import ConfigError, UserError
from mqeval.model.metaquery_config import BackboneConfig
from PIL import Image

HAS_LMMS = importlib.util.find_spec("lmms_eval") is not None

PAPER_COLUMNS = {  # benchmark -> (lmms-eval task, metric key the report reads)
    "mme": ("mme", "perception"), "mmbench": ("mmbench_en_dev", "accuracy"), "seed-bench": ("seedbench", "accuracy"),
    "mmmu": ("mmmu_val", "accuracy"), "mm-vet": ("mmvet", "score"),
}


def test_specs_name_the_lmms_eval_tasks_and_scales():
    for name, (task, metric) in PAPER_COLUMNS.items():
        bench = load_plugin(name)
        assert (bench.options.task, bench.options.metric) == (task, metric)
        assert bench.spec.evaluator == "understanding" and bench.aggregatable is False
        with pytest.raises(UserError, match="understanding suite.*mqeval run"):
            load_benchmark(name)  # the image-benchmark loader refuses it: no images to generate or score
    assert load_plugin("mm-vet").options.needs_judge and not load_plugin("mme").options.needs_judge


def test_metrics_come_out_on_the_paper_scale():
    results = {"results": {"mmmu_val": {"alias": "mmmu_val", "mmmu_acc,none": 0.512, "mmmu_acc_stderr,none": "N/A"}}}
    bench = load_plugin("mmmu")
    assert bench.metrics(results) == {"accuracy": pytest.approx(51.2)}
    mme = {"results": {"mme": {"mme_perception_score,none": 1238.5, "mme_cognition_score,none": 240.0}}}
    assert load_plugin("mme").metrics(mme) == {"perception": 1238.5}
    with pytest.raises(ConfigError, match="no metric"):
        extract_metric(bench.options, {"results": {"mmmu_val": {"other,none": 1.0}}})
    with pytest.raises(ConfigError, match="no results"):
        extract_metric(bench.options, {"results": {}})
    rows = {"samples": {"mme": [{"doc_id": 3, "target": "Yes", "filtered_resps": ["yes"]}]}}
    assert per_sample_records(rows, "mme") == [{"sample_id": "3", "target": "Yes", "response": "yes"}]


def test_adapter_choice():
    qwen = BackboneConfig(family="qwen2_5_vl", model_id="Qwen/Qwen2.5-VL-3B-Instruct")
    frozen = choose_adapter(qwen)
    assert (frozen.name, frozen.model_args) == ("qwen2_5_vl", "pretrained=Qwen/Qwen2.5-VL-3B-Instruct")
    llava = BackboneConfig(family="llava_onevision", model_id="llava-hf/llava-onevision-qwen2-0.5b-ov-hf",
                           revision="abc")
    assert choose_adapter(llava).model_args == "pretrained=llava-hf/llava-onevision-qwen2-0.5b-ov-hf,revision=abc"
    assert choose_adapter(llava).name == "llava_hf"
    lora = BackboneConfig(family="qwen2_5_vl", model_id="Qwen/Qwen2.5-VL-3B-Instruct", tuning="lora")
    assert choose_adapter(lora).name == "mqeval" and choose_adapter(qwen, "mqeval").name == "mqeval"
    with pytest.raises(UserError, match="takes no images"):
        choose_adapter(BackboneConfig(family="causal_lm", model_id="x/y"))
    with pytest.raises(UserError, match="tiny://"):
        choose_adapter(BackboneConfig(family="qwen2_5_vl", model_id="tiny://qwen2_5_vl"))


@pytest.fixture(scope="module")
def responder():
    from mqeval.model.backbones import build_backbone
    from mqeval.model.metaquery_config import ConditionConfig

    torch.manual_seed(0)
    config = BackboneConfig(family="qwen2_5_vl", model_id="tiny://qwen2_5_vl", tuning="lora", dtype="float32")
    return BackboneResponder(build_backbone(config, ConditionConfig()))


def test_prompt_has_images_first_and_no_generation_system_prompt(responder):
    text = responder.render("<image>\nIs there a cat?", 2)
    assert text.count("<|image_pad|>") == 2 and "<image>" not in text
    assert "describe the content of the image" not in text  # MetaQuery's generation system prompt stays out
    assert text.index("<|image_pad|>") < text.index("Is there a cat?")
    assert cut_at_stops("yes.\nQuestion: more", ["\nQuestion:", ""]) == "yes."


def test_generation_and_loglikelihood_by_hand(responder):
    image = Image.new("RGB", (56, 56), (200, 10, 10))
    answer = responder.generate("Is there a cat?", [image], {"max_new_tokens": 3, "temperature": 0, "until": []})
    inputs = responder.encode(responder.render("Is there a cat?", 1), [image])
    with torch.no_grad():
        ids = responder.model.generate(**inputs, max_new_tokens=3, do_sample=False)
    assert answer == responder.tokenizer.decode(ids[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)

    logprob, greedy = responder.loglikelihood("Is there a cat?", " yes", [image])
    prompt = responder.render("Is there a cat?", 1)
    full = responder.encode(prompt + " yes", [image])
    n = inputs["input_ids"].shape[1]
    with torch.no_grad():
        logits = responder.model(**full).logits[0]
    target = full["input_ids"][0, n:]
    expected = torch.log_softmax(logits[n - 1:-1].float(), -1).gather(1, target[:, None]).sum().item()
    assert logprob == pytest.approx(expected, rel=1e-5) and logprob < 0 and isinstance(greedy, bool)


def test_requests_are_answered_through_lmms_eval_arguments(responder):
    image = Image.new("RGB", (56, 56), (10, 200, 10))
    task_dict = {"toy": {"test": {7: {"image": image, "question": "Colour?"}}}}
    to_visual = lambda doc: [doc["image"]]  # noqa: E731
    gen = SimpleNamespace(request_type="generate_until",
                          args=("Colour?", {"max_new_tokens": 2}, to_visual, 7, "toy", "test"))
    ll = SimpleNamespace(request_type="loglikelihood", args=("Colour?", " green", to_visual, 7, "toy", "test"))
    assert isinstance(responder.answer(gen, task_dict), str)
    assert responder.answer(ll, task_dict) == responder.loglikelihood("Colour?", " green", [image])
    with pytest.raises(NotImplementedError):
        responder.answer(SimpleNamespace(request_type="generate_until_multi_round", args=gen.args), task_dict)


@pytest.mark.skipif(HAS_LMMS, reason="checks the message shown when lmms-eval is missing")
def test_missing_lmms_eval_is_a_user_error():
    card = SimpleNamespace(name="x",
                           model=SimpleNamespace(backbone=BackboneConfig(family="qwen2_5_vl", model_id="a/b")))
    with pytest.raises(UserError, match=r"mqeval\[understanding\]"):
        evaluate_understanding(load_plugin("mme"), card)


@pytest.mark.skipif(HAS_LMMS, reason="would start a real lmms-eval run")
def test_run_resolves_card_and_stops_without_lmms_eval(tmp_path):
    from mqeval.evaluation.kinds import evaluator_for
    from mqeval.evaluation.request import EvaluationRequest

    request = EvaluationRequest("mme", "metaquery-tiny-qwen2-5-vl-sana", adapter="mqeval", out=tmp_path / "run")
    with pytest.raises(UserError, match=r"mqeval\[understanding\]"):
        evaluator_for("mme").run(request)
    assert not (tmp_path / "run").exists()
