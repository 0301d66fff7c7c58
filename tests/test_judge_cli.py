"""`mqeval score wise --images DIR --judge-base-url http://127.0.0.1:PORT/v1 --judge-model X` end to end."""
from __future__ import annotations

import json

from PIL import Image
from typer.testing import CliRunner

from fake_openai_server import FakeOpenAIServer
from test_wise import use_standins, write_standins


def test_cli_score_wise_against_fake_judge(tmp_path, monkeypatch):
    from mqeval.cli import app

    standins = write_standins(tmp_path / "data")
    use_standins(monkeypatch, standins)
    monkeypatch.setenv("MQEVAL_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "images"
    (out / "cultural_common_sense").mkdir(parents=True)
    for pid in range(1, 6):
        Image.new("RGB", (16, 16), (pid, 0, 0)).save(out / "cultural_common_sense" / f"{pid}.png")
    with FakeOpenAIServer(answer=lambda r: "Consistency: 2\nRealism: 1\nAesthetic Quality: 0") as server:
        args = ["score", "wise", "--images", str(out), "--judge-base-url", server.base_url, "--judge-model", "X",
                "--data-dir", str(standins), "--limit", "5", "--out", str(tmp_path / "scored")]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        assert server.num_chat_requests == 5 and {r["model"] for r in server.requests} == {"X"}
    assert sorted(p.name for p in out.iterdir()) == ["cultural_common_sense"]  # nothing written into --images
    record = json.loads((tmp_path / "scored" / "results.json").read_text())
    assert abs(record["metrics"]["culture"] - 0.8) < 1e-9 and "overall" not in record["metrics"]
    lines = (tmp_path / "scored" / "samples.jsonl").read_text().splitlines()
    assert len(lines) == 5 and abs(json.loads(lines[0])["wiscore"] - 0.8) < 1e-9
