"""WISE: parsing, WiScore, category weights, data counts on stand-in files, end-to-end scoring via a loopback judge."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from mqeval.benchmarks.catalog import PLUGINS, load_benchmark, load_spec
from mqeval.benchmarks.wise import protocol
from mqeval.contract.scoring import ScoreOptions, JudgeOptions
from mqeval.errors import DataIntegrityError
from mqeval.fileio import sha256_file
from PIL import Image

from fake_openai_server import FakeOpenAIServer

# A stand-in for the official judge script, in the same shape (the real one is downloaded at run time).
STANDIN_SCRIPT = '''
def build_evaluation_messages(prompt_data, image_base64):
    return [
        {"role": "system", "content": [{"type": "text", "text": "Stand-in system text."}]},
        {"role": "user", "content": [
            {"type": "text", "text": f"""Rate the picture; keep {{braces}}.
PROMPT: "{prompt_data['Prompt']}"
EXPLANATION: "{prompt_data['Explanation']}"
"""},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{image_base64}"}},
        ]},
    ]
'''

LEGACY_FILES = {"cultural_common_sense": (1, 400), "spatio-temporal_reasoning": (401, 700),
                "natural_science": (701, 1000)}
VERIFIED_FILES = {"cultural_common_sense": (1, 400), "spatio-temporal_reasoning": (401, 640),
                  "natural_science": (641, 1000)}


def write_standins(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for files, suffix in ((LEGACY_FILES, ""), (LEGACY_FILES, "_rewrite"), (VERIFIED_FILES, "_verified")):
        for stem, (low, high) in files.items():
            rows = [{"Prompt": f"prompt {i}{suffix}", "Explanation": f"explanation {i}", "Category": stem,
                     "Subcategory": "x", "prompt_id": i} for i in range(low, high + 1)]
            (folder / f"{stem}{suffix}.json").write_text(json.dumps(rows, indent=1))
    for name in ("gpt_eval.py", "vllm_eval.py"):
        (folder / name).write_text(STANDIN_SCRIPT)
    return folder


def with_standin_hashes(spec, folder: Path):
    """A WISE spec with the stand-in files' hashes (the real files' hashes would reject them); others unchanged."""
    if not spec.name.startswith("wise"):
        return spec
    data = {key: dataclasses.replace(entry, sha256=sha256_file(folder / entry.file_name))
            for key, entry in spec.data.items()}
    return dataclasses.replace(spec, data=data)


def use_standins(monkeypatch, folder: Path) -> None:
    """Every WISE spec the registry loads gets the stand-in files' hashes."""
    import mqeval.benchmarks.catalog as registry

    real_load_spec = registry.load_spec
    monkeypatch.setattr(registry, "load_spec", lambda name, *a, **k: with_standin_hashes(real_load_spec(name, *a, **k),
                                                                                        folder))


def standin_benchmark(name: str, folder: Path):
    spec = with_standin_hashes(load_spec(name), folder)
    return PLUGINS.get(spec.plugin)(spec)


@pytest.fixture(scope="module")
def standins(tmp_path_factory) -> Path:
    return write_standins(tmp_path_factory.mktemp("wise_data"))


def test_parse_legacy_answers():
    assert protocol.parse_legacy("Consistency: 2\nRealism: 1\nAesthetic Quality: 0") == \
        {"consistency": 2.0, "realism": 1.0, "aesthetic_quality": 0.0}
    assert protocol.parse_legacy("**Consistency**: 1\n**Realism** 2\n**aesthetic quality**: 1") == \
        {"consistency": 1.0, "realism": 2.0, "aesthetic_quality": 1.0}
    assert protocol.parse_legacy("2\n1\n0\n") == {"consistency": 2.0, "realism": 1.0, "aesthetic_quality": 0.0}
    assert protocol.parse_legacy("Consistency: 2\nRealism: 1") is None  # one label missing, no bare fallback
    assert protocol.parse_legacy("I cannot evaluate this image.") is None


def test_parse_verified_answers():
    assert protocol.parse_verified("<think>looks right</think>Score: 1") == {"score": 1.0}
    assert protocol.parse_verified("**Score**: 0") == {"score": 0.0}
    assert protocol.parse_verified("1") == {"score": 1.0}
    assert protocol.parse_verified("Score: 2") is None
    assert protocol.parse_verified("0\n1") is None


def test_wiscore_and_weights_by_hand():
    assert protocol.wiscore("legacy", {"consistency": 2, "realism": 1, "aesthetic_quality": 0}) == pytest.approx(0.8)
    assert protocol.wiscore("legacy", {"consistency": 1, "realism": 0, "aesthetic_quality": 1}) == pytest.approx(0.4)
    assert sum(protocol.WEIGHTS["legacy"].values()) == pytest.approx(1.0)
    assert sum(protocol.WEIGHTS["verified"].values()) == pytest.approx(1.0)
    values = {"culture": [0.8, 0.4], "time": [1.0], "space": [0.0], "biology": [0.5], "physics": [0.25],
              "chemistry": [0.75]}
    records = [{"status": "ok", "category": c, "wiscore": v} for c, vs in values.items() for v in vs]
    records.append({"status": "unparseable", "category": "time"})
    metrics = protocol.aggregate("legacy", records)
    assert metrics["culture"] == pytest.approx(0.6)
    # 0.4*0.6 + 0.167*1 + 0.133*0 + 0.1*(0.5+0.25+0.75)
    assert metrics["overall"] == pytest.approx(0.557)
    assert metrics["num_unparseable"] == 1 and metrics["num_scored"] == 7
    verified = protocol.aggregate("verified", records)
    # 0.4*0.6 + 0.12*(1 + 0 + 0.5 + 0.25 + 0.75)
    assert verified["overall"] == pytest.approx(0.54)
    no_chemistry = protocol.aggregate("legacy", [r for r in records if r["category"] != "chemistry"])
    assert "overall" not in no_chemistry and "chemistry" not in no_chemistry


def test_category_ranges():
    assert [protocol.category_of(i, "legacy") for i in (400, 401, 567, 568, 700, 701, 801, 1000)] == \
        ["culture", "time", "time", "space", "space", "biology", "physics", "chemistry"]
    assert [protocol.category_of(i, "verified") for i in (520, 521, 640, 641, 760, 761, 881)] == \
        ["time", "space", "space", "biology", "biology", "physics", "chemistry"]


def test_sample_counts_on_standin_files(standins):
    samples = standin_benchmark("wise", standins).samples(standins)
    assert len(samples) == 1000 and [s.sample_id for s in samples] == [str(i) for i in range(1, 1001)]
    counts = {c: sum(s.metadata["category"] == c for s in samples) for c in protocol.CATEGORIES}
    assert counts == {"culture": 400, "time": 167, "space": 133, "biology": 100, "physics": 100, "chemistry": 100}
    rewrite = standin_benchmark("wise-rewrite", standins).samples(standins)
    assert len(rewrite) == 1000 and rewrite[0].prompt == "prompt 1_rewrite"
    verified = standin_benchmark("wise-verified", standins).samples(standins)
    counts = {c: sum(s.metadata["category"] == c for s in verified) for c in protocol.CATEGORIES}
    assert counts == {"culture": 400, "time": 120, "space": 120, "biology": 120, "physics": 120, "chemistry": 120}


def test_real_spec_rejects_standin_files(standins):
    with pytest.raises(DataIntegrityError, match="sha256"):
        load_benchmark("wise").samples(standins)


def test_layout_and_instruction_template(standins):
    bench = standin_benchmark("wise", standins)
    samples = bench.samples(standins)
    assert bench.image_path(Path("/out"), samples[811], 0) == Path("/out/natural_science/812.png")
    template = bench.instructions(ScoreOptions(data_dir=str(standins)))
    assert template.system == "Stand-in system text."
    text = template.render(Prompt="P", Explanation="E")
    assert 'PROMPT: "P"' in text and 'EXPLANATION: "E"' in text and "{braces}" in text


ANSWERS = {0: "Consistency: 2\nRealism: 2\nAesthetic Quality: 2",  # WiScore 1.0
           1: "**Consistency**: 1\n**Realism**: 0\n**Aesthetic Quality**: 1",  # 0.4
           2: "2\n1\n0"}  # 0.8
PICKED = [3, 4, 401, 402, 600, 601, 701, 702, 801, 802, 901, 902]
GARBAGE_ID = 902


def fake_judge(request) -> str:
    text = request["messages"][-1]["content"][0]["text"]
    pid = int(text.split('PROMPT: "prompt ')[1].split('"')[0])
    return "I would rather not say." if pid == GARBAGE_ID else ANSWERS[pid % 3]


def write_images(bench, samples, out: Path) -> None:
    for s in samples:
        path = bench.image_path(out, s, 0)
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (16, 16), (int(s.sample_id) % 256, 0, 0)).save(path)


def test_end_to_end_scoring_against_fake_judge(standins, tmp_path):
    bench = standin_benchmark("wise", standins)
    samples = [s for s in bench.samples(standins) if int(s.sample_id) in PICKED]
    out = tmp_path / "images"
    write_images(bench, samples, out)
    with FakeOpenAIServer(answer=fake_judge) as server:
        options = ScoreOptions(cache_dir=tmp_path / "cache", judge=JudgeOptions(base_url=server.base_url, model="X"),
                               data_dir=str(standins))
        result = bench.score(out, samples, options)
        assert server.num_chat_requests == 11 + 3  # the garbage answer is asked 3 times
        assert {r["model"] for r in server.requests} == {"X"}
        assert server.requests[0]["max_tokens"] == 2000 and server.requests[0]["temperature"] == 0
        again = bench.score(out, samples, options)
        assert server.num_chat_requests == 14  # second run: all from the cache
    m = result.metrics
    assert m["culture"] == pytest.approx(0.7) and m["time"] == pytest.approx(0.9)
    assert m["space"] == pytest.approx(0.7) and m["biology"] == pytest.approx(0.9)
    assert m["physics"] == pytest.approx(0.7) and m["chemistry"] == pytest.approx(0.4)
    assert m["overall"] == pytest.approx(0.4 * 0.7 + 0.167 * 0.9 + 0.133 * 0.7 + 0.1 * (0.9 + 0.7 + 0.4))
    assert m["num_unparseable"] == 1 and m["judge_unparseable"] == 1 and m["num_scored"] == 11
    assert any("could not be parsed" in w for w in result.warnings)
    assert bench.aggregate(result.per_sample) == {k: v for k, v in m.items() if not k.startswith("judge_")}
    assert again.metrics["overall"] == m["overall"] and again.metrics["judge_cache_hits"] == 14
    assert again.metrics["judge_calls"] == 0
    assert result.higher_is_better["overall"] and not result.higher_is_better["num_unparseable"]


def test_missing_image_and_flat_layout(standins, tmp_path):
    bench = standin_benchmark("wise", standins)
    samples = [s for s in bench.samples(standins) if int(s.sample_id) in (3, 4, 5)]
    out = tmp_path / "flat"
    out.mkdir()
    Image.new("RGB", (16, 16)).save(out / "3.png")  # WISE's own flat layout is accepted too
    Image.new("RGB", (16, 16), (9, 9, 9)).save(out / "4.png")
    with FakeOpenAIServer(answer=lambda r: "Consistency: 0\nRealism: 0\nAesthetic Quality: 0") as server:
        options = ScoreOptions(cache_dir=tmp_path / "cache",
                               judge=JudgeOptions(base_url=server.base_url), data_dir=str(standins))
        result = bench.score(out, samples, options)
        assert server.requests[0]["model"] == "gpt-4o-2024-05-13"  # the protocol's default judge
    assert result.metrics["num_missing_images"] == 1 and result.metrics["num_scored"] == 2
    assert any("missing" in w for w in result.warnings)


def test_an_answer_outside_the_protocol_range_is_unparseable_never_averaged(standins, tmp_path):
    """"Consistency: 9" is a digit the official regex takes; on WISE's 0-2 scale it is no score (it would put a
    category mean at 4.5 on a 0-1 scale). Asked again, then counted; a run where nothing parses is an error."""
    from mqeval.evaluation.scoring import check_scored
    from mqeval.results.record import incomplete_reasons

    assert protocol.parse_legacy("Consistency: 9\nRealism: 1\nAesthetic Quality: 1") is None
    assert protocol.parse_legacy("Consistency: 2\nRealism: 3\nAesthetic Quality: 1") is None
    assert protocol.parse_legacy("Consistency: 2\nRealism: 2\nAesthetic Quality: 2") == \
        {"consistency": 2.0, "realism": 2.0, "aesthetic_quality": 2.0}
    bench = standin_benchmark("wise", standins)
    samples = [s for s in bench.samples(standins) if int(s.sample_id) in PICKED][:3]
    out = tmp_path / "images"
    write_images(bench, samples, out)
    with FakeOpenAIServer(answer=lambda r: "Consistency: 9\nRealism: 1\nAesthetic Quality: 1") as server:
        options = ScoreOptions(cache_dir=tmp_path / "cache", judge=JudgeOptions(base_url=server.base_url, model="X"),
                               data_dir=str(standins))
        result = bench.score(out, samples, options)
        assert server.num_chat_requests == 3 * bench.options.parse_attempts
    assert result.metrics["num_scored"] == 0 and result.metrics["num_unparseable"] == 3
    assert all(r["status"] == "unparseable" and "wiscore" not in r for r in result.per_sample)
    assert all(v <= 1 for k, v in result.metrics.items() if not k.startswith(("num_", "judge_")) and v == v)
    reasons = incomplete_reasons(result)
    assert reasons
    record = SimpleNamespace(metrics=result.metrics, incomplete=tuple(reasons))
    with pytest.raises(DataIntegrityError, match="nothing could be scored"):
        check_scored(record, tmp_path / "results.json")
