"""DPG-Bench grids follow their tiles' content, never file times: a tile copied in with its old time (`cp -p`,
`rsync -a`, `tar`) is scored again, and `score` writes nothing into the folder it reads."""
from __future__ import annotations

import os
import shutil

from mqeval.benchmarks.dpg_bench.benchmark import GRID_SOURCES
from mqeval.contract.scoring import ScoreOptions, JudgeOptions
from PIL import Image

from fake_openai_server import FakeOpenAIServer
from test_dpg_bench import TILE_COLOURS, bench_with, fake_vqa, make_images, write_csv


def _snapshot(folder):
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.rglob("*"))
            if p.is_file()}


def test_a_tile_copied_with_its_old_time_is_scored_again(tmp_path):
    bench = bench_with(write_csv(tmp_path / "dpg_bench.csv"), "dpg-bench-corrected")
    sample = next(s for s in bench.samples() if s.sample_id == "0")
    out = tmp_path / "images"
    make_images(bench, [sample], out)
    bench.finalize(out, [sample])  # as `generate` does
    grid = bench.grid_path(out, sample)
    old_grid = grid.read_bytes()

    # The new tile 2 (nearly tile 0's colour, so the fake judge answers as for tile 0) is older than the grid, as
    # `cp -p` of an old file leaves it.
    new_tile = tmp_path / "new.png"
    Image.new("RGB", (16, 16), (TILE_COLOURS[0][0] + 10, 0, 0)).save(new_tile)
    past = grid.stat().st_mtime - 3600
    os.utime(new_tile, (past, past))
    with FakeOpenAIServer(answer=fake_vqa) as server:
        options = ScoreOptions(cache_dir=tmp_path / "cache", backend="openai",
                               judge=JudgeOptions(base_url=server.base_url),
                               data_dir=str(tmp_path))
        before = bench.score(out, [sample], options)
        shutil.copy2(new_tile, bench.image_path(out, sample, 2))
        snapshot = _snapshot(out)
        after = bench.score(out, [sample], options)
        assert _snapshot(out) == snapshot  # score wrote nothing into the folder
        bench.finalize(out, [sample])  # the next `generate` rebuilds the grid from the new content
    assert before.per_sample[0]["gated"][2] == [0, 0, 0]
    assert after.per_sample[0]["gated"][2] == after.per_sample[0]["gated"][0] == [1, 1, 1]
    assert after.metrics["dpg_score"] > before.metrics["dpg_score"]
    assert after.metrics["judge_calls"] > 0  # the changed tile was asked, not served from the old cache entry
    assert grid.read_bytes() != old_grid and (out / "single" / GRID_SOURCES).is_file()


def test_a_grid_changed_by_hand_is_rebuilt_from_its_tiles(tmp_path):
    bench = bench_with(write_csv(tmp_path / "dpg_bench.csv"), "dpg-bench-corrected")
    sample = next(s for s in bench.samples() if s.sample_id == "0")
    out = tmp_path / "images"
    make_images(bench, [sample], out)
    bench.finalize(out, [sample])
    grid = bench.grid_path(out, sample)
    good = grid.read_bytes()
    Image.new("RGB", (64, 64)).save(grid)
    bench.finalize(out, [sample])
    assert grid.read_bytes() == good
