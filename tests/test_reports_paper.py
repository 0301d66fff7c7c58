"""The paper tables: published numbers equal the CSVs, 'not run' cells, measured cells with CIs and differences,
the never-one-column rule, decoder routing of Table 4, and the small-scale twins."""
from __future__ import annotations

import csv
import dataclasses
import filecmp
from pathlib import Path

import pytest

from helpers_reports import lookup_for, write_run
from mqeval.paths import PAPER_RESULTS_DIR
from mqeval.reports.api import paper_report
from mqeval.reports.intervals import StatsOptions
from mqeval.reports.columns import NO_CARD, NOT_COMPARABLE, NOT_RUN
from mqeval.reports.paper_table import zoo_index
from mqeval.reports.published import published_rows
from mqeval.results.run import find_runs
from mqeval.reports.specs import TABLES, table_spec

STATS = StatsOptions(n_resamples=200)
SHARED_PAPER = Path("/work/shared/paper")


ZOO = zoo_index()  # the cards, read once for the module
# ... plus every small-scale twin the specs name, as if its card existed
TWINS_ZOO = dataclasses.replace(
    ZOO, settings={**{card: "test twin" for spec in TABLES for _, card in spec.small_scale}, **ZOO.settings}
)


def report(runs, table, lookup=None, zoo=TWINS_ZOO):
    return paper_report(runs, [table], STATS, lookup or lookup_for(), zoo=zoo)


def test_results_paper_is_the_shared_transcription():
    if not SHARED_PAPER.is_dir():
        pytest.skip("shared transcription not on this machine")
    for spec in TABLES:
        assert filecmp.cmp(PAPER_RESULTS_DIR / spec.csv, SHARED_PAPER / spec.csv, shallow=False)


@pytest.mark.parametrize("spec", TABLES, ids=lambda s: f"table{s.number}")
def test_published_numbers_equal_the_csv_exactly(spec):
    with (PAPER_RESULTS_DIR / spec.csv).open(newline="") as handle:
        lines = list(csv.DictReader(handle))
    (table,) = report([], spec.number)
    frame, data = table.frame, table.data
    assert len(frame) == len(lines)
    for label, line in zip(frame.index, lines):
        for column in spec.columns:
            head = f"{column.title} {'↑' if column.higher_is_better else '↓'} paper"
            assert frame.loc[label, head] == (line[column.key] or "-")
            value = data[(data["row"] == label) & (data["column"] == column.key)]["published"].iloc[0]
            if line[column.key]:
                assert value == float(line[column.key])
            else:
                assert value != value  # NaN: the paper printed "-"


def test_every_table_row_is_labelled_once():
    for spec in TABLES:
        labels = [row.label for row in published_rows(spec)]
        assert len(labels) == len(set(labels))


def test_cells_without_runs_say_not_run_and_other_methods_have_no_card():
    (t4,) = report([], 4)
    assert t4.frame.loc["MetaQuery-B", "GenEval ↑ ours"] == NOT_RUN
    assert t4.frame.loc["MetaQuery-XL", "COCO FID ↓ ours"] == NOT_RUN
    assert t4.frame.loc["TokenFlow-XL", "GenEval ↑ ours"] == NO_CARD
    for row in ("Janus-Pro-7B", "Show-o-512"):  # baseline cards reproduce them
        assert t4.frame.loc[row, "GenEval ↑ ours"] == NOT_RUN
    (t1,) = report([], 1)
    assert set(t1.frame["GenEval ↑ ours"]) == {NOT_RUN}
    assert set(t1.frame["GenEval ↑ Δ"]) == {""}


def test_a_run_fills_its_cell_with_ci_and_difference(tmp_path):
    scores = [1.0] * 29 + [0.0] * 21  # overall 0.58
    write_run(tmp_path, "q64", "metaquery-b-q64", "geneval", scores)
    runs = find_runs([tmp_path])
    for table, label in [(1, "learnable_queries_64"), (2, "frozen_mllm"), (3, "enc_proj_24")]:
        (t,) = report(runs, table)
        cell = t.frame.loc[label, "GenEval ↑ ours"]
        assert cell.startswith("0.58 [") and cell.endswith("]")
        assert t.frame.loc[label, "GenEval ↑ Δ"] == "+0.02"  # 0.58 - 0.56
        line = t.data[(t.data["row"] == label) & (t.data["column"] == "geneval") & (t.data["status"] == "measured")]
        assert line["difference"].iloc[0] == pytest.approx(0.02)
        assert line["ci_low"].iloc[0] < 0.58 < line["ci_high"].iloc[0]
        assert line["run_id"].iloc[0] == "q64"


def test_fid_like_runs_have_no_ci_and_say_why(tmp_path):
    write_run(tmp_path, "fid", "metaquery-b-q512", "mjhq-30k-fid", [0.0] * 5, metrics={"fid": 7.1})
    (t,) = report(find_runs([tmp_path]), 1)
    assert t.frame.loc["learnable_queries_512", "MJHQ-30K FID ↓ ours"] == "7.10"
    assert t.frame.loc["learnable_queries_512", "MJHQ-30K FID ↓ Δ"] == "-0.24"
    assert any("not aggregatable" in n for n in t.notes)


def test_runs_of_different_benchmark_versions_never_share_a_column(tmp_path):
    write_run(tmp_path, "old", "metaquery-b-q64", "geneval", [1.0, 0.0] * 10, version="1")
    write_run(tmp_path, "new", "metaquery-b-q512", "geneval", [1.0, 1.0, 0.0] * 10, version="2")
    (t,) = report(find_runs([tmp_path]), 1, lookup_for("1"))
    cols = [c for c in t.frame.columns if c.startswith("GenEval ↑ ours")]
    assert cols == ["GenEval ↑ ours [v1]", "GenEval ↑ ours [v2]"]
    assert t.frame.loc["learnable_queries_64", "GenEval ↑ ours [v2]"] == NOT_RUN
    assert t.frame.loc["learnable_queries_512", "GenEval ↑ ours [v1]"] == NOT_RUN
    assert any("benchmark version 1 vs 2" in n and "never one" in n for n in t.notes)


def test_scorer_versions_never_share_a_column(tmp_path):
    write_run(tmp_path, "a", "metaquery-b-q64", "geneval", [1.0, 0.0] * 10, scorer_version="mmdet-2.x")
    write_run(tmp_path, "b", "metaquery-b-last-layer", "geneval", [1.0, 0.0] * 10, scorer_version="analytic-1")
    (t,) = report(find_runs([tmp_path]), 1)
    assert len([c for c in t.frame.columns if c.startswith("GenEval ↑ ours")]) == 2
    assert any("scorer version" in n for n in t.notes)


def test_original_and_rewritten_geneval_are_separate_and_only_matching_prompts_get_a_difference(tmp_path):
    write_run(tmp_path, "orig", "metaquery-b", "geneval", [1.0, 0.0, 1.0, 1.0] * 5, prompt_set="original")
    write_run(tmp_path, "long", "metaquery-l", "geneval-rewritten", [1.0, 1.0, 1.0, 0.0] * 5,
              prompt_set="rewritten", variant_of="geneval")
    (t,) = report(find_runs([tmp_path]), 4)
    orig = [c for c in t.frame.columns if c.startswith("GenEval ↑ ours") and "original" in c]
    rewr = [c for c in t.frame.columns if c.startswith("GenEval ↑ ours") and "rewritten" in c]
    assert len(orig) == 1 and len(rewr) == 1
    # MetaQuery's published GenEval used rewritten prompts: the original-prompt run is shown but not differenced.
    assert t.frame.loc["MetaQuery-B", orig[0]].startswith("0.75")
    assert t.frame.loc["MetaQuery-B", orig[0].replace("ours", "Δ")] == NOT_COMPARABLE
    assert t.frame.loc["MetaQuery-L", rewr[0].replace("ours", "Δ")] == "-0.03"  # 0.75 - 0.78
    assert any("prompt set" in n for n in t.notes)
    assert any("rewritten prompts" in n and NOT_COMPARABLE in n for n in t.notes)


def test_table4_routes_coco_fid_to_sd15_cards_and_the_rest_to_sana(tmp_path):
    write_run(tmp_path, "sd", "metaquery-l-sd15", "coco-30k-fid", [0.0] * 3, metrics={"fid": 9.0}, decoder="sd15")
    write_run(tmp_path, "sana", "metaquery-l", "coco-30k-fid", [0.0] * 3, metrics={"fid": 20.0}, decoder="sana")
    write_run(tmp_path, "mjhq-sd", "metaquery-l-sd15", "mjhq-30k-fid", [0.0] * 3, metrics={"fid": 30.0}, decoder="sd15")
    (t,) = report(find_runs([tmp_path]), 4)
    assert t.frame.loc["MetaQuery-L", "COCO FID ↓ ours"] == "9.00"
    assert t.frame.loc["MetaQuery-L", "COCO FID ↓ Δ"] == "+0.13"
    assert t.frame.loc["MetaQuery-L", "MJHQ FID ↓ ours"] == NOT_RUN


def test_negative_prompt_variant_goes_to_its_own_column_only(tmp_path):
    extra = [{"pair": i // 2, "side": 1 + i % 2} for i in range(8)]
    write_run(tmp_path, "neg", "metaquery-b", "commonsense-t2i-negative", [0.5] * 8, metrics={"score": 51.0},
              variant_of="commonsense-t2i", extra=extra)
    (t,) = report(find_runs([tmp_path]), 6)
    assert t.frame.loc["MetaQuery-B", "w/ neg. prompt ↑ ours"].startswith("51.00")
    assert t.frame.loc["MetaQuery-B", "w/o neg. prompt ↑ ours"] == NOT_RUN
    assert [c for c in t.frame.columns if "w/o" in c and "ours" in c] == ["w/o neg. prompt ↑ ours"]


def test_the_latest_of_several_compatible_runs_is_shown_and_noted(tmp_path):
    write_run(tmp_path, "first", "metaquery-b-q64", "geneval", [0.0] * 10, created="2026-01-01T00:00:00Z")
    write_run(tmp_path, "second", "metaquery-b-q64", "geneval", [1.0] * 10, created="2026-02-01T00:00:00Z")
    (t,) = report(find_runs([tmp_path]), 1)
    assert t.frame.loc["learnable_queries_64", "GenEval ↑ ours"].startswith("1.00")
    assert any("showing the latest (second)" in n for n in t.notes)


def test_small_scale_twin_appears_only_with_runs_and_is_labelled(tmp_path):
    assert len(report([], 1)) == 1
    spec = table_spec(1)
    twin = dict(spec.small_scale)["learnable_queries_512"]
    write_run(tmp_path, "smol", twin, "shapes", [1.0, 0.0, 1.0, 1.0] * 5)
    paper, small = report(find_runs([tmp_path]), 1)
    assert "NOT the paper's setting" in small.title and any("NOT the paper's setting" in n for n in small.notes)
    assert small.frame.loc["learnable_queries_512", "card"] == twin
    assert small.frame.loc["learnable_queries_512", "shapes overall ↑ ours"].startswith("0.75")
    assert small.frame.loc["learnable_queries_64", "shapes overall ↑ ours"] == NOT_RUN
    assert not any("paper" in c for c in small.frame.columns)  # no published numbers beside small-scale ones
    assert set(paper.frame["GenEval ↑ ours"]) == {NOT_RUN}


def test_runs_with_warnings_are_marked_and_limited_runs_kept_apart(tmp_path):
    write_run(tmp_path, "full", "metaquery-b-q64", "geneval", [1.0, 0.0] * 10)
    write_run(tmp_path, "part", "metaquery-b-q512", "geneval", [1.0, 0.0] * 3, limit=6,
              warnings=["--limit 6: 6 of 553 samples; not comparable with full-benchmark numbers"])
    (t,) = report(find_runs([tmp_path]), 1)
    assert len([c for c in t.frame.columns if c.startswith("GenEval ↑ ours")]) == 2, list(t.frame.columns)
    assert any("--limit" in n and "never one" in n for n in t.notes)
    cell = t.frame.loc["learnable_queries_512", "GenEval ↑ ours [first 6 samples]"]
    assert cell.endswith(" !") and any(n.startswith("!: run part") and "--limit 6" in n for n in t.notes)
    assert not t.frame.loc["learnable_queries_64", "GenEval ↑ ours [all samples]"].endswith("!")


def test_an_incomplete_run_is_marked_in_the_tables(tmp_path):
    write_run(tmp_path, "holes", "metaquery-b-q64", "geneval", [1.0, 0.0] * 10,
              incomplete=["3 of 20 images missing (scored as the official script does)"])
    (t,) = report(find_runs([tmp_path]), 1)
    assert t.frame.loc["learnable_queries_64", "GenEval ↑ ours"].endswith(" !")
    assert any(n.startswith("!: run holes") and "incomplete: 3 of 20 images missing" in n for n in t.notes)


def test_a_card_tag_points_a_row_at_its_small_scale_twin(tmp_path):
    from mqeval.reports.intervals import IntervalCache
    from mqeval.reports.paper_table import ZooIndex, build_small_scale_table

    write_run(tmp_path, "twin", "my-own-smol-512", "shapes", [1.0, 0.0] * 5)
    runs, cache = find_runs([tmp_path]), IntervalCache(lookup_for(), STATS)
    spec = table_spec(1)
    settings = {**ZOO.settings, "my-own-smol-512": "64 queries"}
    assert build_small_scale_table(spec, runs, cache, ZooIndex({}, {}, settings)) is None
    zoo = ZooIndex({}, {(1, "learnable_queries_512"): "my-own-smol-512"}, settings)
    small = build_small_scale_table(spec, runs, cache, zoo)
    assert small.frame.loc["learnable_queries_512", "card"] == "my-own-smol-512"
    assert small.frame.loc["learnable_queries_512", "shapes overall ↑ ours"].startswith("0.50")


def test_every_generation_column_names_a_benchmark_spec():
    from mqeval.benchmarks.catalog import spec_paths

    known = set(spec_paths())
    understanding = {"mme", "mmbench", "seed-bench", "mmmu", "mm-vet"}  # lmms-eval suites: no plug-in in mqeval yet
    for spec in TABLES:
        for column in spec.columns + spec.small_scale_columns:
            assert column.benchmark in known | understanding, (spec.number, column.benchmark)


def test_ablation_rows_are_paired_against_the_reference_row(tmp_path):
    spec = table_spec(1)
    twins = dict(spec.small_scale)
    base = [1.0, 0.0, 1.0, 0.0] * 10
    write_run(tmp_path, "ref", twins["learnable_queries_64"], "shapes", base)
    write_run(tmp_path, "more", twins["learnable_queries_512"], "shapes", [1.0] * 40)  # fixes every failure
    write_run(tmp_path, "other-seeds", twins["llm_last_layer_embedding"], "shapes", base, seeds=list(range(500, 540)))
    _, small = report(find_runs([tmp_path]), 1)
    column = "shapes overall ↑ vs learnable_queries_64"
    assert small.frame.loc["learnable_queries_64", column] == "(reference)"
    assert small.frame.loc["learnable_queries_512", column].startswith("+0.50 [+0.3") and small.frame.loc[
        "learnable_queries_512", column].endswith("P=1.00")
    assert small.frame.loc["llm_last_layer_embedding", column] == "unpaired"
    assert any("not paired" in n and "different seeds" in n for n in small.notes)
    line = small.data[(small.data["row"] == "learnable_queries_512") & (small.data["column"] == "shapes_overall")]
    assert line["paired_difference"].iloc[0] == 0.5 and line["prob_better_than_reference"].iloc[0] == 1.0


def test_a_twin_without_a_card_says_so(tmp_path):
    write_run(tmp_path, "smol", "metaquery-smol", "shapes", [1.0, 0.0] * 5)
    # The zoo without one of Table 1's twins, so there is always a card to miss.
    absent = next(card for label, card in table_spec(1).small_scale if card != "metaquery-smol")
    zoo = dataclasses.replace(ZOO, settings={k: v for k, v in ZOO.settings.items() if k != absent})
    _, small = report(find_runs([tmp_path]), 1, zoo=zoo)
    missing = [label for label, card in table_spec(1).small_scale if card not in zoo.settings]
    assert missing
    for label in missing:
        assert small.frame.loc[label, "shapes overall ↑ ours"] == NO_CARD
        assert small.frame.loc[label, "setting"] == "no such card yet"
    assert any("not in model_zoo yet" in n for n in small.notes)
    assert small.frame.loc["learnable_queries_64", "shapes overall ↑ ours"].startswith("0.50")
    assert "queries" in small.frame.loc["learnable_queries_64", "setting"]


def test_table7_small_scale_reads_the_knowledge_split(tmp_path):
    metrics = {"knowledge_colors": 0.25, "control_colors": 0.75, "overall": 0.5}
    write_run(tmp_path, "k-mq", "metaquery-smol", "shapes-knowledge", [0.5] * 4, metrics=metrics)
    write_run(tmp_path, "k-ll", "metaquery-smol-last-layer", "shapes-knowledge", [0.5] * 4,
              metrics={**metrics, "knowledge_colors": 0.125})
    _, small = report(find_runs([tmp_path]), 7, lookup_for())
    assert small.frame.loc["ours_l_metaquery", "knowledge colours ↑ ours"].startswith("0.25")
    assert small.frame.loc["ours_l_last_layer_embedding", "knowledge colours ↑ ours"].startswith("0.12")
    assert small.frame.loc["ours_l_metaquery", "shapes overall ↑ ours"] == NOT_RUN
