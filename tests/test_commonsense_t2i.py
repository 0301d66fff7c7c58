"""CommonsenseT2I: answer reading, pair rule with the seeded tie-break, data formats and counts, end-to-end scoring."""
from __future__ import annotations

import dataclasses
import json
import random
from pathlib import Path

import pytest
from mqeval.benchmarks.commonsense_t2i import protocol
from mqeval.benchmarks.commonsense_t2i.benchmark import load_pairs
from mqeval.benchmarks.catalog import PLUGINS, load_spec
from mqeval.contract.scoring import ScoreOptions, JudgeOptions
from mqeval.fileio import sha256_file
from PIL import Image

from fake_openai_server import FakeOpenAIServer

# Stand-in for the official evaluate.py (downloaded at run time); same shape, different words.
STANDIN_SCRIPT = '''
def eval_mllm(data, t2i_model, evaluator, image_folder, eval_output_path):
    for d in data:
        description1 = d["description1"]
        description2 = d["description2"]
        strength = 'clearly'
        prompt_eval1 = f'Does the picture {strength} match "{description1}"? Reply 1 or 0.'
        prompt_eval2 = f'Does the picture {strength} match "{description2}"? Reply 1 or 0.'
'''


def rows(n: int) -> list[dict]:
    return [{"prompt1": f"p1 of {i}", "prompt2": f"p2 of {i}", "description1": f"d1 of {i}\nline two",
             "description2": f"d2 of {i}", "category": "physical laws", "likelihood": 0.5} for i in range(1, n + 1)]


def benchmark_on(folder: Path, name: str = "commonsense-t2i"):
    spec = load_spec(name)
    data = {key: dataclasses.replace(entry, sha256=sha256_file(folder / entry.file_name))
            for key, entry in spec.data.items()}
    return PLUGINS.get(spec.plugin)(dataclasses.replace(spec, data=data))


@pytest.fixture()
def standins(tmp_path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "data.json").write_text(json.dumps(rows(150)))
    (folder / "evaluate.py").write_text(STANDIN_SCRIPT)
    return folder


def test_answer_reading_matches_int_of_stripped_text():
    assert [protocol.parse_answer(t) for t in ("1", " 0\n", "1.", "yes", None, "2")] == [1, 0, -1, -1, -1, 2]


def test_supported_description_rule():
    rng = random.Random(0)
    assert protocol.supported_description(1, 0, rng) == 1
    assert protocol.supported_description(0, 1, rng) == 2
    assert protocol.supported_description(0, 0, rng) == 0
    assert protocol.supported_description(-1, 1, rng) == 0
    assert protocol.supported_description(1, -1, rng) == 0


# Hand-made answers [fits D1, fits D2] per image. Python's random seeded 42 draws choice([1, 2]) as 1, 1, 2, 1, ...
PAIR1 = {1: [[1, 0], [1, 1], [0, 0], [1, 0]],  # P1: supports 1, tie (1st draw: 1), none, 1
         2: [[0, 1], [0, 1], [0, 1], [1, 0]]}  # P2: 2, 2, 2, 1           -> images 1 and 2 correct: 0.5
PAIR2 = {1: [[1, 1], [1, 1], [1, 0], [1, 0]],  # P1: tie (2nd: 1), tie (3rd: 2), 1, 1
         2: [[0, -1], [0, 1], [1, 1], [0, 1]]}  # P2: none, 2, tie (4th: 1), 2 -> only image 4 correct: 0.25


def records_for(*pairs):
    return [{"sample_id": f"{n}-{side}", "pair": n, "side": side, "answers": answers[side]}
            for n, answers in enumerate(pairs, start=1) for side in (1, 2)]


def test_pair_scores_and_seeded_tie_break_by_hand():
    metrics = protocol.aggregate(records_for(PAIR1, PAIR2))
    assert metrics["score"] == pytest.approx(100 * (0.5 + 0.25) / 2)
    assert metrics["num_pairs"] == 2 and metrics["num_both_fit"] == 4 and metrics["num_unreadable_answers"] == 1
    # one random stream for the whole run, in pair order: reseeding per pair would give 0.75 for pair 2
    assert protocol.pair_score(PAIR2[1], PAIR2[2], random.Random(42)) == pytest.approx(0.75)


def test_pairing_is_by_pair_id_and_tolerates_resampling():
    records = records_for(PAIR1, PAIR2)
    shuffled = [records[1], records[3], records[0], records[2]]
    pairs, unmatched = protocol.pair_up(shuffled)
    assert unmatched == 0 and [(a["pair"], b["pair"]) for a, b in pairs] == [(1, 1), (2, 2)]
    pairs, unmatched = protocol.pair_up(records + records[:1])  # a bootstrap duplicate without its partner
    assert len(pairs) == 2 and unmatched == 1


def test_data_formats_and_counts(standins, tmp_path):
    bench = benchmark_on(standins)
    samples = bench.samples(standins)
    assert len(samples) == 300 and len({s.metadata["pair"] for s in samples}) == 150
    assert samples[0].sample_id == "0001-p1" and samples[1].sample_id == "0001-p2"
    assert samples[0].num_images == 4 and samples[0].negative_prompt is None
    assert bench.image_path(Path("/o"), samples[3], 2) == Path("/o/prompt2_img/original/0002-3.jpg")
    negative = benchmark_on(standins, "commonsense-t2i-negative").samples(standins)
    assert negative[0].negative_prompt == "p2 of 1" and negative[1].negative_prompt == "p1 of 1"
    jsonl = tmp_path / "rows.jsonl"
    jsonl.write_text("\n".join(json.dumps(r) for r in rows(150)))
    columns = tmp_path / "columns.json"
    columns.write_text(json.dumps({k: [r[k] for r in rows(150)] for k in rows(1)[0]}))
    assert load_pairs(jsonl) == load_pairs(columns) == rows(150)


def test_end_to_end_scoring_against_fake_judge(standins, tmp_path):
    bench = benchmark_on(standins)
    samples = bench.samples(standins)[:4]  # pairs 1 and 2
    out = tmp_path / "images"
    by_image: dict[bytes, tuple[int, int, int]] = {}
    for s in samples:
        for j in range(4):
            path = bench.image_path(out, s, j)
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (16, 16), (s.metadata["pair"] * 60, s.metadata["side"] * 90, j * 50)).save(path)
            by_image[path.read_bytes()] = (s.metadata["pair"], s.metadata["side"], j)
    answers = {1: PAIR1, 2: PAIR2}

    def judge(request) -> str:
        import base64

        text, image = request["messages"][0]["content"]
        pair, side, j = by_image[base64.b64decode(image["image_url"]["url"].split(",", 1)[1])]
        which = 0 if '"d1 of' in text["text"] else 1
        value = answers[pair][side][j][which]
        return "maybe" if value == -1 else f" {value}\n"

    with FakeOpenAIServer(answer=judge) as server:
        options = ScoreOptions(cache_dir=tmp_path / "cache", judge=JudgeOptions(base_url=server.base_url, model="X"),
                               data_dir=str(standins))
        result = bench.score(out, samples, options)
        first = server.requests[0]
        assert server.num_chat_requests == 32
        again = bench.score(out, samples, options)
        assert server.num_chat_requests == 32
    assert first["max_tokens"] == 10 and first["temperature"] == 0
    image_url = first["messages"][0]["content"][1]["image_url"]
    assert image_url["detail"] == "low" and image_url["url"].startswith("data:image/jpeg;base64,")
    texts = {r["messages"][0]["content"][0]["text"] for r in server.requests}
    assert 'Does the picture clearly match "d1 of 1, line two"? Reply 1 or 0.' in texts  # newlines -> ", "
    assert result.metrics["score"] == pytest.approx(37.5) and again.metrics["score"] == pytest.approx(37.5)
    assert result.metrics["judge_unparseable"] == 1 and any("not 0 or 1" in w for w in result.warnings)
    assert [r["pair_score"] for r in result.per_sample] == [0.5, 0.5, 0.25, 0.25]
    assert again.metrics["judge_calls"] == 0 and again.metrics["judge_cache_hits"] == 32


def test_finalize_turns_png_bytes_into_jpeg(standins, tmp_path):
    bench = benchmark_on(standins)
    sample = bench.samples(standins)[0]
    path = bench.image_path(tmp_path, sample, 0)
    path.parent.mkdir(parents=True)
    Image.new("RGB", (16, 16), (10, 200, 30)).save(path, format="PNG")  # what a PNG-only generator writes
    bench.finalize(tmp_path, [sample])
    data = path.read_bytes()
    assert data[:3] == b"\xff\xd8\xff"
    bench.finalize(tmp_path, [sample])  # idempotent: a JPEG is left alone
    assert path.read_bytes() == data
