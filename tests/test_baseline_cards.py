"""Baseline cards of the published rows: complete cards, their rows in `mqeval report paper`, and a fast one-line
error when their weights are not here."""
from __future__ import annotations

import re
import time

import pytest

from helpers_cli import mqeval
from helpers_reports import lookup_for, write_run
from mqeval.benchmarks.catalog import load_spec
from mqeval.generation.settings import resolve_settings
from mqeval.reports.api import paper_report
from mqeval.reports.intervals import StatsOptions
from mqeval.reports.paper_table import zoo_index
from mqeval.reports.published import row_labels
from mqeval.results.run import find_runs
from mqeval.zoo import card_names, load_card

BASELINES = [n for n in card_names() if "baseline" in load_card(n).tags]
TABLE_BENCHMARKS = {4: {"geneval", "dpg-bench", "mjhq-30k-fid"}, 5: {"wise"}, 6: {"commonsense-t2i"}}
# Table 4 has no MJHQ number for Emu3 and no DPG-Bench number for Janus and Show-o-512.
NO_PUBLISHED = {("emu3", "mjhq-30k-fid"), ("janus-1.3b", "dpg-bench"), ("show-o-512", "dpg-bench")}


def test_at_least_ten_baseline_cards_cover_rows_of_tables_4_5_and_6():
    assert len(BASELINES) >= 10
    rows = {(row.table, row.row) for name in BASELINES for row in load_card(name).paper}
    assert {(5, r) for r in ("SD-v1-5", "SD-XL", "PixArt-Alpha", "playground-v2.5", "SD-3.5-large", "FLUX.1-dev",
                             "Janus-1.3B", "JanusFlow-1.3B", "Janus-Pro-1B", "Janus-Pro-7B", "Emu3",
                             "show-o-512")} <= rows
    assert {(6, r) for r in ("SD-XL", "SD-3-medium", "FLUX.1-dev", "Sana-1.6B")} <= rows
    assert {(4, r) for r in ("Show-o-512", "Emu3", "Janus", "JanusFlow", "Janus-Pro-1B", "Janus-Pro-7B")} <= rows


def _hub_weights(card) -> list:
    """The hub repositories a card loads: its kind's block, or a python card's `weights`."""
    return list(card.python.weights.values()) if card.kind == "python" else [getattr(card, card.kind)]


@pytest.mark.parametrize("name", BASELINES)
def test_baseline_card_names_its_weights_rows_and_published_settings(name):
    card = load_card(name)
    assert card.kind in ("diffusers", "transformers", "python") and not card.checkpoint.random_init
    assert _hub_weights(card)
    for weights in _hub_weights(card):
        assert re.fullmatch(r"[\w.-]+/[\w.-]+", weights.model_id) and weights.download_gb
        assert (weights.revision and re.fullmatch(r"[0-9a-f]{40}", weights.revision)) or weights.revision_note
    if card.kind == "python":  # adapters around the authors' code: says so, and that it was not run here
        assert card.python.factory.startswith("mqeval.model.official.") and "official-code" in card.tags
        assert "never run it with the released weights" in card.description
    labels = row_labels()
    for row in card.paper:
        assert row.row in labels[row.table], f"{name}: no row '{row.row}' in table {row.table}"
        for benchmark in sorted(TABLE_BENCHMARKS[row.table]):
            if (name, benchmark) in NO_PUBLISHED:
                continue
            published = card.published_for(benchmark)
            assert published is not None and published.source, f"{name}: no published settings for {benchmark}"
            spec = load_spec(benchmark)
            settings = resolve_settings(card, spec.generation, benchmark=benchmark)  # within its capabilities
            assert settings.resolution == published.resolution


STATS = StatsOptions(n_resamples=100)


def _baseline_run(root, run_id, card, benchmark, scores, metrics, kind="diffusers", **extra):
    import json

    folder = write_run(root, run_id, card, benchmark, scores, metrics=metrics, **extra)
    results = json.loads((folder / "results.json").read_text())
    results["model"]["config"] = {"name": card, "kind": kind, kind: {"model_id": "owner/name"}}
    (folder / "results.json").write_text(json.dumps(results))


def test_baseline_runs_fill_their_paper_rows(tmp_path):
    _baseline_run(tmp_path, "sdxl-wise", "sdxl", "wise", [0.4] * 5,
                  {"overall": 0.41, "cultural": 0.40, "time": 0.5, "space": 0.5, "biology": 0.4, "physics": 0.4,
                   "chemistry": 0.3})
    _baseline_run(tmp_path, "flux-neg", "flux.1-dev", "commonsense-t2i-negative", [0.2] * 4, {"score": 23.0},
                  variant_of="commonsense-t2i")
    _baseline_run(tmp_path, "janus-geneval", "janus-pro-7b", "geneval", [0.8] * 4, {"overall": 0.79},
                  kind="transformers")
    _baseline_run(tmp_path, "showo-geneval", "show-o-512", "geneval", [0.7] * 4, {"overall": 0.66}, kind="python")
    _baseline_run(tmp_path, "janusflow-wise", "janusflow-1.3b", "wise", [0.2] * 5,
                  {"overall": 0.17, "cultural": 0.1, "time": 0.2, "space": 0.3, "biology": 0.2, "physics": 0.2,
                   "chemistry": 0.1}, kind="python")
    runs = find_runs([tmp_path])
    t4, t5, t6 = paper_report(runs, [4, 5, 6], STATS, lookup_for(), zoo=zoo_index())
    assert t5.frame.loc["SD-XL", "Overall ↑ ours"].startswith("0.41")
    assert t6.frame.loc["FLUX.1-dev", "w/ neg. prompt ↑ ours"].startswith("23.00")
    # Table 4's GenEval column reads Sana MetaQuery runs only; a baseline run has no decoder and still counts.
    assert t4.frame.loc["Janus-Pro-7B", "GenEval ↑ ours"].startswith("0.79")
    assert t4.frame.loc["Show-o-512", "GenEval ↑ ours"].startswith("0.66")  # python cards fill their rows too
    assert t5.frame.loc["JanusFlow-1.3B", "Overall ↑ ours"].startswith("0.17")


def test_report_shows_baseline_rows_as_not_run_without_runs():
    result = mqeval("report", "paper", "--table", "6", "--runs", "tests")
    assert result.returncode == 0, result.stderr
    line = next(li for li in result.stdout.splitlines() if li.startswith("Sana-1.6B"))
    assert "not run" in line


def _one_error_line(tmp_path, monkeypatch, card) -> str:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    start = time.monotonic()
    result = mqeval("run", "shapes", "--model", card, "--limit", "1", "--out", tmp_path / "run")
    assert time.monotonic() - start < 30  # a Python start-up, never minutes of retries
    assert result.returncode == 2 and "Traceback" not in result.stderr
    lines = [li for li in result.stderr.splitlines() if li.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: ")
    return lines[0]


def test_a_baseline_without_its_weights_fails_at_once_with_one_line(tmp_path, monkeypatch):
    line = _one_error_line(tmp_path, monkeypatch, "sd-3-medium")
    hub_id, commit = "stabilityai/stable-diffusion-3-medium-diffusers", load_card("sd-3-medium").diffusers.revision
    for part in (hub_id, f"revision {commit}", "about 15.5 GB", "HF_HUB_OFFLINE",
                 f"`hf download {hub_id} --revision {commit}`"):
        assert part in line


def test_an_official_code_baseline_without_its_code_fails_before_any_download(tmp_path, monkeypatch):
    """DeepSeek's package is not installed here: the card's check says what to install, before the weights are
    looked for (tests/test_official_adapters.py covers the weights error with the code present)."""
    line = _one_error_line(tmp_path, monkeypatch, "janusflow-1.3b")
    assert "`janus.janusflow.models` is not importable" in line
    assert 'pip install "git+https://github.com/deepseek-ai/Janus@1daa72fa409002d40931bd7b36a9280362469ead"' in line
