"""`report runs` and `compare`: grouping by comparability, CIs through the real plug-in's aggregate, paired verdicts."""
from __future__ import annotations

import pytest
from typer.testing import CliRunner

from helpers_reports import lookup_for, write_run
from mqeval.reports.api import compare_report, runs_report
from mqeval.reports.intervals import StatsOptions
from mqeval.results.run import read_run
from mqeval.reports.stats import PairingError

STATS = StatsOptions(n_resamples=200)
TAGS = ["single_object", "two_object", "counting", "colors", "position", "color_attr"]


def shapes_records(pattern):
    """Per-sample records as the shapes plug-in scores them: a task tag and one flag per image."""
    return [{"tag": TAGS[i % 6], "correct": [bool(v) for v in flags]} for i, flags in enumerate(pattern)]


def shapes_metrics(records):
    from mqeval.benchmarks.geneval.rules import aggregate_geneval

    return aggregate_geneval({"tag": r["tag"], "correct": c} for r in records for c in r["correct"])


def test_runs_report_groups_by_comparability_and_explains(tmp_path):
    write_run(tmp_path, "a", "metaquery-b", "geneval", [1.0, 0.0] * 10)
    write_run(tmp_path, "b", "metaquery-l", "geneval", [1.0, 1.0, 0.0] * 7)
    write_run(tmp_path, "c", "metaquery-l", "geneval", [1.0] * 20, scorer_version="2")
    write_run(tmp_path, "f", "metaquery-l", "mjhq-fid", [0.0] * 4, metrics={"fid": 6.5})
    reports = runs_report([tmp_path], STATS, lookup_for())
    assert [sorted(r.frame.index) for r in reports] == [["a", "b"], ["c"], ["f"]]
    first = reports[0]
    assert first.frame.loc["a", "overall ↑"].startswith("0.5 [")
    assert any("scorer version 1 vs 2" in n for n in first.notes)
    assert any("not aggregatable" in n for n in reports[2].notes)
    assert reports[2].frame.loc["f", "fid ↓"] == "6.5"


def test_real_shapes_plugin_aggregates_the_bootstrap(tmp_path):
    records = shapes_records([[1, 1, 0, 1], [0, 0, 0, 1], [1, 1, 1, 1]] * 8)
    write_run(tmp_path, "s", "metaquery-tiny", "shapes", [0.0] * 24, version="1", prompt_set="standard",
              metrics=shapes_metrics(records), extra=records)
    (report,) = runs_report([tmp_path], STATS)  # default lookup: benchmarks/shapes.yaml and its plug-in
    assert not any("no CI" in n or "warning" in n for n in report.notes), report.notes
    overall = report.data[report.data["metric"] == "overall"].iloc[0]
    assert overall["ci_low"] < overall["value"] < overall["ci_high"]


def test_compare_gives_a_paired_verdict(tmp_path):
    a = write_run(tmp_path, "a", "metaquery-b-q512", "geneval", [1.0] * 30 + [1.0, 0.0] * 15)
    b = write_run(tmp_path, "b", "metaquery-b-q64", "geneval", [0.0] * 30 + [1.0, 0.0] * 15)
    report = compare_report(a, b, STATS, lookup_for())
    row = report.frame.loc["overall ↑"]
    assert row["A - B"] == "+0.5" and row["verdict"] == "A better" and float(row["P(A better)"]) == 1.0
    same = compare_report(a, a, STATS, lookup_for()).frame.loc["overall ↑"]
    assert same["verdict"] == "no clear difference" and same["95% CI of A - B"] == "[+0, +0]"


def test_compare_refuses_other_prompts_seeds_or_versions(tmp_path):
    a = write_run(tmp_path, "a", "metaquery-b", "geneval", [1.0, 0.0] * 5)
    fewer = write_run(tmp_path, "fewer", "metaquery-l", "geneval", [1.0, 0.0] * 4)
    reseeded = write_run(tmp_path, "reseeded", "metaquery-l", "geneval", [1.0, 0.0] * 5, seeds=list(range(50, 60)))
    newer = write_run(tmp_path, "newer", "metaquery-l", "geneval", [1.0, 0.0] * 5, version="2")
    rewritten = write_run(tmp_path, "rw", "metaquery-l", "geneval-rewritten", [1.0, 0.0] * 5, prompt_set="rewritten")
    for other, message in [(fewer, "different samples"), (reseeded, "different seeds"),
                           (newer, "benchmark version"), (rewritten, "prompt set original vs rewritten")]:
        with pytest.raises(PairingError, match=message):
            compare_report(a, other, STATS, lookup_for())


def test_compare_of_fid_runs_says_no_ci(tmp_path):
    a = write_run(tmp_path, "a", "metaquery-b", "mjhq-fid", [0.0] * 3, metrics={"fid": 7.0})
    b = write_run(tmp_path, "b", "metaquery-l", "mjhq-fid", [0.0] * 3, metrics={"fid": 6.0})
    report = compare_report(a, b, STATS, lookup_for())
    assert report.frame.loc["fid ↓", "95% CI of A - B"] == "no CI"
    assert any("not aggregatable" in n for n in report.notes)


def test_store_renamed_fields_get_their_names_back(tmp_path):
    path = write_run(tmp_path, "a", "metaquery-b", "geneval", [1.0], extra=[{"score_prompt": "judge saw this"}])
    (record,) = read_run(path).per_sample()
    assert record["prompt"] == "judge saw this" and record["score"] == 1.0


def test_cli_compare_and_refusal_message(tmp_path):
    from mqeval import cli

    a = write_run(tmp_path, "a", "metaquery-b", "mjhq-fid", [0.0] * 3, metrics={"fid": 7.0})
    b = write_run(tmp_path, "b", "metaquery-l", "mjhq-fid", [0.0] * 3, metrics={"fid": 6.0})
    c = write_run(tmp_path, "c", "metaquery-l", "mjhq-fid", [0.0] * 2, metrics={"fid": 6.0})
    runner = CliRunner()
    result = runner.invoke(cli.app, ["compare", str(a), str(b), "--format", "markdown"])
    assert result.exit_code == 0, result.output
    assert "| fid ↓ | 7 | 6 | +1 | no CI |" in result.output
    result = runner.invoke(cli.app, ["compare", str(a), str(c)])
    # cli.main prints a UserError without a traceback; the bare app lets it through to the runner.
    assert isinstance(result.exception, PairingError) and "different samples" in str(result.exception)
    result = runner.invoke(cli.app, ["report", "runs", str(tmp_path), "--no-ci", "-f", "markdown"])
    assert result.exit_code == 0 and "| a |" in result.output


def test_an_unreadable_run_is_skipped_with_a_note_not_fatal(tmp_path):
    import json

    write_run(tmp_path, "good", "metaquery-b", "geneval", [1.0, 0.0] * 5)
    bad = write_run(tmp_path, "old-schema", "metaquery-b", "geneval", [1.0] * 4)
    data = json.loads((bad / "results.json").read_text())
    (bad / "results.json").write_text(json.dumps({**data, "schema_version": 0}))
    reports = runs_report([tmp_path], STATS, lookup_for())
    assert [list(r.frame.index) for r in reports] == [["good"]]
    assert any("skipped" in n and "old-schema" in n and "schema_version" in n for n in reports[-1].notes)
    with pytest.raises(Exception, match="schema_version"):
        read_run(bad)


def test_real_plugins_commonsense_pairs_stay_whole_and_wise_bootstraps(tmp_path):
    import random

    from mqeval.reports.intervals import IntervalCache, default_lookup

    rng = random.Random(0)
    pairs = [{"pair": p, "side": s, "answers": [[rng.randint(0, 1), rng.randint(0, 1)] for _ in range(4)]}
             for p in range(15) for s in (1, 2)]
    bench = default_lookup("commonsense-t2i-negative")
    write_run(tmp_path, "cs", "metaquery-b", "commonsense-t2i-negative", [0.0] * 30, metrics=bench.aggregate(pairs),
              version="1", variant_of="commonsense-t2i", extra=pairs)
    intervals, why = IntervalCache(default_lookup, STATS).get(read_run(tmp_path / "cs"))
    assert not why
    assert intervals["num_incomplete_pairs"].high == 0.0  # resampled by pair: never half a pair
    assert intervals["score"].low < intervals["score"].point < intervals["score"].high

    cats = ["culture", "time", "space", "biology", "physics", "chemistry"]
    judged = [{"category": cats[i % 6], "wiscore": rng.random(), "status": "ok"} for i in range(60)]
    write_run(tmp_path, "w", "metaquery-b", "wise", [0.0] * 60, version="1",
              metrics=default_lookup("wise").aggregate(judged), extra=judged)
    intervals, why = IntervalCache(default_lookup, STATS).get(read_run(tmp_path / "w"))
    assert not why and intervals["overall"].low < intervals["overall"].point < intervals["overall"].high


def test_report_commands_module_is_import_light():
    import subprocess
    import sys

    code = ("import sys, mqeval.reports.commands; "
            "print(sorted(m for m in ('pandas','torch','numpy','matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
