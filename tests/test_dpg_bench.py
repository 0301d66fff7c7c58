"""DPG-Bench: shipped prompts, question parsing with the reference quirks, gating, aggregation, grids, end to end."""
from __future__ import annotations

import base64
import csv
import dataclasses
import io
import shutil
from pathlib import Path

import pytest
from mqeval.benchmarks.dpg_bench import protocol
from mqeval.benchmarks.catalog import PLUGINS, load_benchmark, load_spec
from mqeval.contract.scoring import ScoreOptions, JudgeOptions
from mqeval.downloads import git_blob_sha1, resolve_data_file
from mqeval.errors import DataIntegrityError
from mqeval.fileio import sha256_file
from mqeval.paths import BENCHMARK_SPECS_DIR
from PIL import Image

from fake_openai_server import FakeOpenAIServer

COLUMNS = ["item_id", "text", "keywords", "proposition_id", "dependency", "category_broad", "category_detailed",
           "tuple", "question_natural_language"]
# (item, qid, dependency, tuple, question). The first row is the one the reference script skips.
ROWS = [
    ("partiprompts97", 1, "0", "entity - whole (cat)", "Is there a cat?"),
    ("partiprompts97", 2, "1", "attribute - color (cat, black)", "Is the cat black?"),
    ("0", 1, "0", "entity - whole (dog)", "Is there a dog?"),
    ("0", 2, "1", "attribute - color (dog, brown)", "Is the dog brown?"),
    ("0", 3, "2", "relation - spatial (dog, sofa, on)", "Is the dog on the sofa?"),
    ("1", 1, "0", "global - (night)", "Is it night?"),
]


def write_csv(path: Path, rows=ROWS) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for item, qid, dep, tup, question in rows:
            writer.writerow([item, "prompt", "kw", qid, dep, "b", "d", tup, question])
    return path


def bench_with(csv_path: Path, name: str = "dpg-bench", tile_size: int = 32):
    spec = load_spec(name)
    data = dict(spec.data)
    data["questions"] = dataclasses.replace(data["questions"], sha256="git-blob-sha1:" + git_blob_sha1(csv_path))
    options = {**spec.options, "tile_size": tile_size}
    return PLUGINS.get(spec.plugin)(dataclasses.replace(spec, data=data, options=options))


def test_shipped_prompts_count_and_hash(tmp_path):
    bench = load_benchmark("dpg-bench")
    samples = bench.samples()
    assert len(samples) == 1065 and len({s.sample_id for s in samples}) == 1065
    assert all(s.num_images == 4 for s in samples) and samples[0].sample_id == "0"
    shipped = BENCHMARK_SPECS_DIR / "dpg_bench" / "prompts.jsonl"
    assert sha256_file(shipped) == bench.spec.data["prompts"].sha256
    assert (BENCHMARK_SPECS_DIR / "dpg_bench" / "LICENSE.ella").is_file()
    # a changed copy is refused
    copy = tmp_path / "dpg_bench"
    copy.mkdir()
    (copy / "prompts.jsonl").write_bytes(shipped.read_bytes()[:-10])
    with pytest.raises(DataIntegrityError):
        resolve_data_file(bench.spec.data["prompts"], "prompts", specs_dir=tmp_path)


def test_questions_official_skips_first_row_and_restarts_items(tmp_path):
    rows = ROWS + [("2", 1, "0", "entity - whole (a)", "A?"), ("1", 2, "0", "other - count (b, 2)", "B?")]
    path = write_csv(tmp_path / "q.csv", rows)
    official = protocol.read_questions(path, official=True)
    assert official["partiprompts97"].qids == [2]  # proposition 1 was on the skipped first row
    assert official["1"].qids == [2]  # item 1 reappears after item 2: the reference script starts it afresh
    corrected = protocol.read_questions(path, official=False)
    assert corrected["partiprompts97"].qids == [1, 2] and corrected["1"].qids == [1, 2]
    assert corrected["0"].parents == {1: [0], 2: [1], 3: [2]}


def test_gating_walks_in_order_and_updates_in_place():
    qids, parents = [1, 2, 3, 4], {1: [0], 2: [1], 3: [2], 4: [1, 3]}
    assert protocol.gate({1: 1, 2: 1, 3: 1, 4: 1}, qids, parents) == {1: 1, 2: 1, 3: 1, 4: 1}
    # q2 is "no": q3 (child of q2) and q4 (child of q3) become 0 through the in-place walk
    assert protocol.gate({1: 1, 2: 0, 3: 1, 4: 1}, qids, parents) == {1: 1, 2: 0, 3: 0, 4: 0}
    # a child listed before its parent only sees the parent's raw answer (reference behaviour)
    assert protocol.gate({1: 0, 2: 1, 3: 1}, [3, 2, 1], {1: [0], 2: [1], 3: [2]}) == {1: 0, 2: 0, 3: 1}
    with pytest.raises(protocol.MissingParentError):
        protocol.gate({2: 1}, [2], {2: [1]}, official=True)
    assert protocol.gate({2: 1}, [2], {2: [1]}, official=False) == {2: 1}


def test_categories():
    assert protocol.l2_category("attribute - color (dog, brown)") == "attribute - color"
    assert protocol.l1_category("attribute - color") == "attribute"
    assert protocol.metric_slug("attribute - color") == "attribute_color"


def test_aggregate_by_hand():
    ok = {"status": "ok", "l2": ["entity - whole", "attribute - color"],
          "raw": [[1, 1], [1, 0], [0, 1], [1, 0]], "gated": [[1, 1], [1, 0], [0, 0], [1, 0]]}
    failed = {"status": "failed"}
    official = protocol.aggregate([ok, failed], official=True)
    # item: tiles 1, 0.5, 0, 0.5 -> 0.5; the failed item is left out
    assert official["dpg_score"] == pytest.approx(50.0) and official["num_failed_items"] == 1
    # categories from the LAST tile's ungated answers only: entity 1, attribute 0
    assert official["l2_entity_whole"] == 100.0 and official["l2_attribute_color"] == 0.0
    assert official["l1_entity"] == 100.0 and official["l1_attribute"] == 0.0
    corrected = protocol.aggregate([ok, failed], official=False)
    assert corrected["dpg_score"] == pytest.approx(25.0)  # the failed item counts as 0
    assert (corrected["l2_entity_whole"] == pytest.approx(75.0)
            and corrected["l2_attribute_color"] == pytest.approx(25.0))


def test_finalize_builds_lanczos_grid_once(tmp_path):
    bench = bench_with(write_csv(tmp_path / "q.csv"))
    sample = bench.samples()[0]
    colours = [(200, 0, 0), (0, 200, 0), (0, 0, 200), (200, 200, 0)]
    for j, colour in enumerate(colours):
        path = bench.image_path(tmp_path / "out", sample, j)
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (20, 20), colour).save(path)
    bench.finalize(tmp_path / "out", [sample, bench.samples()[1]])  # the second sample has no images: skipped
    grid_path = tmp_path / "out" / f"{sample.sample_id}.png"
    grid = Image.open(grid_path)
    assert grid.size == (64, 64)
    assert [grid.getpixel((x, y)) for x, y in ((5, 5), (40, 5), (5, 40), (40, 40))] == colours
    assert not (tmp_path / "out" / "1.png").exists()
    stamp = grid_path.stat().st_mtime_ns
    bench.finalize(tmp_path / "out", [sample])
    assert grid_path.stat().st_mtime_ns == stamp


# Fake VQA answers per (item question, tile): tiles are told apart by their colour.
TILE_COLOURS = [(30, 0, 0), (90, 0, 0), (150, 0, 0), (210, 0, 0)]
ANSWERS = {
    "Is there a cat?": ["yes"] * 4,
    "Is the cat black?": ["yes"] * 4,
    "Is there a dog?": ["yes", "yes", "no", "yes"],
    "Is the dog brown?": ["yes", "no", "yes", "yes"],
    "Is the dog on the sofa?": ["yes", "yes", "yes", "no"],
    "Is it night?": ["Yes.", "yes", "no", "Maybe"],
}


def fake_vqa(request) -> str:
    text, image = request["messages"][0]["content"]
    question = text["text"].split("\n")[0]
    tile = Image.open(io.BytesIO(base64.b64decode(image["image_url"]["url"].split(",", 1)[1]))).convert("RGB")
    red = tile.getpixel((tile.width // 2, tile.height // 2))[0]
    index = min(range(4), key=lambda t: abs(TILE_COLOURS[t][0] - red))
    return ANSWERS[question][index]


def make_images(bench, samples, out: Path) -> None:
    for sample in samples:
        for j in range(4):
            path = bench.image_path(out, sample, j)
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (16, 16), TILE_COLOURS[j]).save(path)


@pytest.mark.parametrize("name", ["dpg-bench", "dpg-bench-corrected"])
def test_end_to_end_with_openai_compatible_vqa(tmp_path, name):
    csv_path = write_csv(tmp_path / "dpg_bench.csv")
    bench = bench_with(csv_path, name)
    by_id = {s.sample_id: s for s in bench.samples()}
    samples = [by_id["partiprompts97"], by_id["0"], by_id["1"]]
    out = tmp_path / "images"
    make_images(bench, samples, out)  # no finalize: score builds the missing grids
    with FakeOpenAIServer(answer=fake_vqa) as server:
        options = ScoreOptions(cache_dir=tmp_path / "cache", backend="openai",
                               judge=JudgeOptions(base_url=server.base_url, model="vqa-x"), data_dir=str(tmp_path))
        result = bench.score(out, samples, options)
        calls = server.num_chat_requests
        again = bench.score(out, samples, options)
        assert server.num_chat_requests == calls  # cached
    m = result.metrics
    records = {r["item_id"]: r for r in result.per_sample}
    # item 0 tiles: [1,1,1] -> 1; [1,0,0] -> 1/3; [0,0,0] -> 0 (gating chain); [1,1,0] -> 2/3  => 0.5
    assert records["0"]["score"] == pytest.approx(0.5)
    assert records["0"]["gated"] == [[1, 1, 1], [1, 0, 0], [0, 0, 0], [1, 1, 0]]
    assert records["1"]["score"] == pytest.approx(0.5)  # "Yes." counts after normalising; "Maybe" does not
    assert m["judge_unparseable"] == 1
    if name == "dpg-bench":
        assert calls == 4 + 12 + 4
        assert records["partiprompts97"]["status"] == "failed"  # depends on the skipped proposition 1
        assert m["dpg_score"] == pytest.approx(50.0) and m["num_failed_items"] == 1
        # last tile, ungated: dog yes, brown yes, sofa no; night "maybe"
        assert m["l2_entity_whole"] == 100.0 and m["l2_attribute_color"] == 100.0
        assert m["l2_relation_spatial"] == 0.0 and m["l1_global"] == 0.0
        assert any("left out of the mean" in w for w in result.warnings)
    else:
        assert calls == 8 + 12 + 4
        assert records["partiprompts97"]["score"] == pytest.approx(1.0)
        assert m["dpg_score"] == pytest.approx(100 * (0.5 + 0.5 + 1.0) / 3)
        assert m["l2_entity_whole"] == pytest.approx(100 * 7 / 8)
        assert m["l2_attribute_color"] == pytest.approx(100 * 6 / 8)
        assert m["l2_relation_spatial"] == pytest.approx(25.0) and m["l1_global"] == pytest.approx(50.0)
    assert again.metrics["dpg_score"] == m["dpg_score"] and again.metrics["judge_calls"] == 0
    assert bench.aggregate(result.per_sample) == {k: v for k, v in m.items() if not k.startswith("judge_")}


def test_missing_grid_and_images_are_reported(tmp_path):
    bench = bench_with(write_csv(tmp_path / "dpg_bench.csv"), "dpg-bench-corrected")
    samples = [s for s in bench.samples() if s.sample_id in ("0", "1")]
    make_images(bench, samples[:1], tmp_path / "out")
    with FakeOpenAIServer(answer=fake_vqa) as server:
        options = ScoreOptions(cache_dir=tmp_path / "c", backend="openai", judge=JudgeOptions(base_url=server.base_url),
                               data_dir=str(tmp_path))
        result = bench.score(tmp_path / "out", samples, options)
    assert result.metrics["num_missing_images"] == 1 and result.metrics["dpg_score"] == pytest.approx(25.0)
    assert any("missing image" in w for w in result.warnings)


def test_mplug_backend_explains_how_to_install(tmp_path):
    from mqeval.errors import UserError
    from mqeval.scorers.vqa import make_vqa_backend

    if shutil.which("modelscope") or _has_modelscope():
        pytest.skip("modelscope is installed here")
    with pytest.raises(UserError, match="modelscope"):
        make_vqa_backend(ScoreOptions())


def _has_modelscope() -> bool:
    import importlib.util

    return importlib.util.find_spec("modelscope") is not None


def test_a_folder_of_official_grids_alone_scores_like_its_tiles(tmp_path):
    """`mqeval score dpg-bench` on grids made elsewhere: the runner's presence check asks the plug-in what it reads."""
    from mqeval.evaluation.scoring import score_images

    bench = bench_with(write_csv(tmp_path / "dpg_bench.csv"), "dpg-bench-corrected")
    samples = [s for s in bench.samples() if s.sample_id in ("0", "1")]
    tiles, grids = tmp_path / "tiles", tmp_path / "grids"
    make_images(bench, samples, tiles)
    bench.finalize(tiles, samples)
    grids.mkdir()
    for sample in samples:
        shutil.copy(bench.grid_path(tiles, sample), bench.grid_path(grids, sample))
    assert bench.scored_paths(grids, samples[0]) == [bench.grid_path(grids, samples[0])]
    with FakeOpenAIServer(answer=fake_vqa) as server:
        options = ScoreOptions(cache_dir=tmp_path / "c", backend="openai", judge=JudgeOptions(base_url=server.base_url),
                               data_dir=str(tmp_path))
        from_grids = score_images(bench, samples, grids, options)
        from_tiles = score_images(bench, samples, tiles, options)
    assert from_grids.metrics["dpg_score"] == from_tiles.metrics["dpg_score"]
    with pytest.raises(DataIntegrityError, match="missing"):
        score_images(bench, samples, tmp_path / "empty", options)
