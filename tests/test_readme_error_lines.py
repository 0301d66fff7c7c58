"""Every `mqeval run`/`generate` command the README shows that cannot run on this machine (weights not here, no hub, no
GPU) ends in one `Error:` line that says each fact once: no phrase of four or more words stands twice in its prose,
outside quoted names and commands (the missing-checkpoint line once read "No MetaQuery weights were released: no
MetaQuery weights were released: ...")."""
from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from helpers_cli_inprocess import run_cli

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()
RUNNABLE_HERE = {"metaquery-smol", "metaquery-smol-last-layer", "tiny-python"}  # their weights ship: they succeed


def readme_commands() -> list[list[str]]:
    found = set()
    for text in re.findall(r"(mqeval (?:run|generate) [a-z0-9.\[\]-]+ --model [^`\n|(]+)", README):
        args = shlex.split(re.sub(r"\[-[a-z]+\]", "", text).split(",")[0])[1:]
        model = args[args.index("--model") + 1]
        if model.isupper() or model in RUNNABLE_HERE or model.startswith("metaquery-tiny"):
            continue
        found.add(tuple(args))
    return [list(a) for a in sorted(found)]


def repeated_phrase(line: str, words: int = 4) -> str | None:
    prose = re.sub(r"`[^`]*`|'[^']*'", " ", line)  # commands and names may repeat an id; the prose may not
    tokens = re.findall(r"[a-z0-9.-]+", prose.lower())
    seen = set()
    for i in range(len(tokens) - words + 1):
        gram = " ".join(tokens[i:i + words])
        if gram in seen:
            return gram
        seen.add(gram)
    return None


def test_the_readme_shows_commands_that_fail_here():
    models = {args[args.index("--model") + 1] for args in readme_commands()}
    assert {"sd-v1-5", "janus-pro-1b", "show-o-512"} <= models


@pytest.mark.parametrize("args", readme_commands(), ids=" ".join)
def test_error_line_says_each_fact_once(args, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run_cli(*args, "--out", tmp_path / "run")
    assert result.code == 2, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert repeated_phrase(errors[0]) is None, errors[0]


def test_missing_checkpoint_line_of_a_paper_card(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run_cli("run", "wise", "--model", "metaquery-xl")
    assert result.code == 2
    assert "has no checkpoint" in result.last_line and repeated_phrase(result.last_line) is None, result.last_line
