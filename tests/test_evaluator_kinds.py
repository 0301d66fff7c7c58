"""Benchmarks are run by the evaluator their spec names: image benchmarks generate and score, understanding suites
ask the model through lmms-eval. The dispatch reads the spec, never the plug-in's name."""
from __future__ import annotations

import dataclasses

import pytest

from helpers_cli import mqeval

from mqeval.benchmarks.catalog import load_spec, plugin_of
from mqeval.errors import ConfigError
from mqeval.evaluation.images import ImageEvaluator
from mqeval.evaluation.kinds import EVALUATORS, evaluator_for
from mqeval.evaluation.understanding import UnderstandingEvaluator


def test_the_spec_chooses_the_evaluator():
    assert isinstance(evaluator_for("shapes"), ImageEvaluator)
    assert isinstance(evaluator_for("mme"), UnderstandingEvaluator)
    assert EVALUATORS.names() == ["images", "understanding"]


def test_a_spec_whose_evaluator_does_not_fit_its_plug_in_is_refused():
    spec = dataclasses.replace(load_spec("mme"), evaluator="images")
    with pytest.raises(ConfigError, match="evaluator 'images'.*'lmms-eval' is run as 'understanding'"):
        plugin_of(spec)


def test_image_commands_refuse_an_understanding_suite(tmp_path):
    result = mqeval("score", "mme", "--images", tmp_path)
    assert result.returncode == 2 and result.stderr.strip().splitlines()[-1].startswith("Error: mme is an "
                                                                                       "understanding suite")
    result = mqeval("generate", "mmmu", "--model", "metaquery-tiny", "--out", tmp_path / "x")
    assert result.returncode == 2 and "no images to generate" in result.stderr


def test_an_understanding_run_refuses_options_it_would_ignore(tmp_path):
    result = mqeval("run", "mme", "--model", "metaquery-tiny-qwen2-5-vl-sana", "--num-processes", "2",
                    "--seed", "3", "--out", tmp_path / "x")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "--num-processes, --seed / --num-inference-steps / --guidance-scale do(es) not apply to mme" in result.stderr
    assert not (tmp_path / "x").exists()


def test_an_understanding_suite_refuses_a_card_lmms_eval_cannot_ask(tmp_path):
    result = mqeval("run", "mmmu", "--model", "janus-pro-1b", "--out", tmp_path / "x")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "'janus-pro-1b' is a transformers card, and lmms-eval 0.7.3 has no adapter for it" in result.stderr
