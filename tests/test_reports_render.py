"""Renderers produce valid Markdown / LaTeX / CSV / HTML; pictures land next to the report; the CLI commands work."""
from __future__ import annotations

import csv
import io
from html.parser import HTMLParser

import pytest
import typer
from PIL import Image
from typer.testing import CliRunner

from helpers_reports import lookup_for, write_run
from mqeval.errors import UnknownNameError
from mqeval.reports.api import emit, paper_report
from mqeval.reports.intervals import StatsOptions
from mqeval.reports.paper_table import zoo_index
from mqeval.reports.render import latex_escape, render
from mqeval.results.run import find_runs
from mqeval.reports.specs import TABLES


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    write_run(root, "q64", "metaquery-b-q64", "geneval", [1.0, 0.0, 1.0] * 10, images=True)
    write_run(root, "q512", "metaquery-b-q512", "geneval", [1.0, 1.0, 0.0] * 10, images=True)
    write_run(root, "odd", "metaquery-b-last-layer", "geneval", [1.0] * 30, version="2")
    return paper_report(find_runs([root]), None, StatsOptions(n_resamples=100), lookup_for("1.0"), zoo=zoo_index())


def test_markdown_tables_are_rectangular(reports):
    text = render(reports, "markdown")
    tables = [block for block in text.split("### ")[1:]]
    assert len(tables) == len(TABLES)
    for block in tables:
        rows = [line for line in block.splitlines() if line.startswith("|")]
        widths = {line.replace("\\|", "").count("|") for line in rows}
        assert len(widths) == 1, block[:200]
        assert set(rows[1].strip("|").split("|")) == {"---"}


def test_latex_is_balanced_and_escaped(reports):
    text = render(reports, "latex")
    assert text.count(r"\begin{tabular}") == text.count(r"\end{tabular}") == len(TABLES)
    assert text.count(r"\begin{table}") == text.count(r"\end{table}")
    body = text.replace(r"\{", "").replace(r"\}", "")
    assert body.count("{") == body.count("}")
    for line in text.splitlines():
        stripped = line.replace(r"\_", "").replace(r"\&", "").replace(r"\%", "")
        assert "_" not in stripped and "%" not in stripped, line
    for block in text.split(r"\begin{tabular}")[1:]:
        spec = block[block.index("{") + 1 : block.index("}")]
        rows = [row for row in block.split(r"\end{tabular}")[0].splitlines() if row.endswith(r"\\")]
        assert {r.replace(r"\&", "").count("&") for r in rows} == {len(spec) - 1}
    assert latex_escape("a_b & 50% ↑ Δ") == r"a\_b \& 50\% $\uparrow$ $\Delta$"


def test_csv_is_tidy_and_parses(reports):
    rows = list(csv.DictReader(io.StringIO(render(reports, "csv"))))
    assert {"report", "table", "row", "column", "published", "measured", "ci_low", "ci_high", "status"} <= set(rows[0])
    measured = [r for r in rows if r["status"] == "measured"]
    assert {(r["row"], r["run_id"]) for r in measured if r["table"] == "1"} == {
        ("learnable_queries_64", "q64"), ("learnable_queries_512", "q512"), ("llm_last_layer_embedding", "odd")}
    assert all(r["published"] == "0.55" for r in rows
               if r["table"] == "1" and r["row"] == "llm_last_layer_embedding" and r["column"] == "geneval")


class _Checker(HTMLParser):
    VOID = {"meta", "img", "br", "hr", "link"}

    def __init__(self):
        super().__init__()
        self.stack, self.tables = [], 0

    def handle_starttag(self, tag, attrs):
        self.tables += tag == "table"
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes {self.stack[-1:]}"
        self.stack.pop()


def test_html_is_well_formed(reports):
    text = render(reports, "html")
    checker = _Checker()
    checker.feed(text)
    assert checker.stack == [] and checker.tables == len(TABLES)
    assert text.startswith("<!DOCTYPE html>") and "not run" in text


def test_unknown_format_suggests(reports):
    with pytest.raises(UnknownNameError, match="markdown"):
        render(reports, "markdwn")


def test_pictures_are_written_next_to_the_report(reports, tmp_path):
    out = tmp_path / "paper.md"
    emit(reports, "markdown", out)
    written = sorted(p.name for p in tmp_path.glob("*.png"))
    assert "paper_table1_bars.png" in written and "paper_table1_geneval_grid.png" in written
    assert {f"paper_table{n}_bars.png" for n in (1, 2, 3, 7)} <= set(written)
    with Image.open(tmp_path / "paper_table1_geneval_grid.png") as grid:
        assert grid.width > grid.height / 2 and grid.mode == "RGB"
    assert "![paper_table1_bars](paper_table1_bars.png)" in out.read_text()


def _app():
    from mqeval.reports.commands import register

    app = typer.Typer()

    @app.callback()
    def main():
        """test app"""

    register(app)
    return app


def test_cli_report_paper_through_typer(tmp_path):
    result = CliRunner().invoke(_app(), ["report", "paper", "--table", "7", "--runs", str(tmp_path), "--no-ci",
                                         "--format", "markdown"])
    assert result.exit_code == 0, result.output
    assert "Table 7" in result.output and "| ours_l_metaquery |" in result.output and "not run" in result.output
    out = tmp_path / "t.csv"
    result = CliRunner().invoke(_app(), ["report", "paper", "-t", "1", "-t", "2", "--runs", str(tmp_path), "--no-ci",
                                         "-f", "csv", "-o", str(out), "--no-figures"])
    assert result.exit_code == 0, result.output
    assert {r["table"] for r in csv.DictReader(out.open())} == {"1", "2"}


def test_cli_app_has_the_report_commands_once_registered():
    from mqeval import cli

    names = {c.name for c in cli.app.registered_commands} | {g.name for g in cli.app.registered_groups}
    assert "report" in names
    result = CliRunner().invoke(cli.app, ["report", "paper", "--table", "3", "--no-ci"])
    assert result.exit_code == 0 and "Proj-Enc" in result.output


def test_terminal_puts_metric_over_kind(reports):
    text = render(reports[:1], "terminal")
    header = text.splitlines()[1:3]
    assert "GenEval ↑" in header[0] and "paper" in header[1] and "ours [v1.0]" in header[1]
    assert "note: GenEval: measured runs differ" in text
