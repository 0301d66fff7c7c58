"""Options are built once, nested by owner, and passed whole: the command line packs the judge's settings into one
JudgeOptions, which reaches the judge client unchanged (no flat option bag read back with getattr)."""
from __future__ import annotations

import dataclasses

from helpers_cli_inprocess import run_cli

from mqeval.contract.scoring import DetectorOptions, JudgeOptions, ScoreOptions
from mqeval.scorers.judge import JudgeSettings


class Capture:
    def __init__(self):
        self.requests = []

    def run(self, request):
        self.requests.append(request)
        return None


def test_the_command_line_packs_each_owner_s_options_once(monkeypatch):
    capture = Capture()
    monkeypatch.setattr("mqeval.evaluation.kinds.evaluator_for", lambda name: capture)
    result = run_cli("run", "wise", "--model", "metaquery-tiny", "--judge-base-url", "http://127.0.0.1:9/v1",
                     "--judge-model", "judge-x", "--judge-timeout", "2.5", "--judge-allow-http-key",
                     "--detector-weights", "hf", "--seed", "7", "--precision", "fp32")
    assert result.code == 0, result.stderr
    (request,) = capture.requests
    assert request.scoring.judge == JudgeOptions(base_url="http://127.0.0.1:9/v1", model="judge-x",
                                                 allow_http_key=True, timeout_s=2.5)
    assert request.scoring.detector == DetectorOptions(weights="hf")
    assert request.overrides.seed == 7 and request.acceleration.precision == "fp32"
    options = request.scoring.options("cpu", None, None)
    assert options.judge is request.scoring.judge and options.detector is request.scoring.detector


def test_judge_settings_come_from_the_judge_options_alone(tmp_path):
    judge = JudgeOptions(base_url="http://127.0.0.1:9/v1", model="judge-x", timeout_s=3.0)
    settings = JudgeSettings.from_options(ScoreOptions(cache_dir=tmp_path, judge=judge), default_model="d", workers=2)
    assert (settings.base_url, settings.model, settings.timeout_s, settings.workers) == (judge.base_url, "judge-x",
                                                                                        3.0, 2)
    assert settings.cache_dir == tmp_path / "judge"
    assert JudgeSettings.from_options(ScoreOptions(), default_model="d").model == "d"


def test_score_options_hold_no_flat_judge_or_detector_fields():
    names = {f.name for f in dataclasses.fields(ScoreOptions)}
    assert {"judge", "detector"} <= names and not any(n.startswith(("judge_", "detector_")) for n in names)
