"""DPG-Bench as an mqeval benchmark: 1065 dense prompts, 4 images each, yes/no VQA on each image.

Layout: the generator writes each image to `single/<item_id>-<j>.png` (j = 1..4); `finalize` resizes them to
512 px (LANCZOS, as MetaQuery's eval/sample_dpg.py) and tiles them 2x2 into `<item_id>.png`, the file the official
scorer reads. The scorer crops the grid back into tiles and asks every question of the item on every tile.
Grids are derived by content: `finalize` rebuilds one whenever its tiles' sha256 differ from those it was built
from (recorded in `single/grids.sha256.json`), whatever the files' times; `score` builds the grid of an item whose
four tiles are there in memory (the same pixels `finalize` writes) and reads `<item_id>.png` only for a folder of
grids, so it never writes into the folder it scores.
Prompts ship with mqeval (Apache-2.0, benchmarks/dpg_bench/); the questions CSV is downloaded from the pinned ELLA
commit and checked against its git blob id, or read from `--data-dir`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from mqeval.benchmarks.base import Benchmark
from mqeval.benchmarks.dpg_bench import protocol
from mqeval.contract.samples import Sample
from mqeval.contract.scoring import ScoreOptions, ScoreResult, ScorerInfo
from mqeval.downloads import recorded_hashes, resolve_data_file
from mqeval.errors import UserError
from mqeval.images.check import ImageReader

GRID_SOURCES = "grids.sha256.json"  # per item: sha256 of the tiles a grid was built from, and of the grid


@dataclass(frozen=True)
class DPGOptions:
    official_quirks: bool = True
    tile_size: int = 512
    grid: int = 2  # tiles per side; images_per_prompt must be grid * grid


def build_grid(images: list[Any], tile_size: int, grid: int) -> Any:
    from PIL import Image

    lanczos = getattr(Image, "Resampling", Image).LANCZOS
    canvas = Image.new("RGB", (tile_size * grid, tile_size * grid))
    for index, image in enumerate(images):
        image = image.convert("RGB")
        if image.size != (tile_size, tile_size):
            image = image.resize((tile_size, tile_size), resample=lanczos)
        canvas.paste(image, ((index % grid) * tile_size, (index // grid) * tile_size))
    return canvas


def crop_tiles(grid_image: Any, tile_size: int, count: int) -> list[Any]:
    """Row-major tiles, as the reference scorer crops them."""
    boxes = [(0, 0, 1, 1), (1, 0, 2, 1), (0, 1, 1, 2), (1, 1, 2, 2)][:count]
    return [grid_image.crop((x0 * tile_size, y0 * tile_size, x1 * tile_size, y1 * tile_size))
            for x0, y0, x1, y1 in boxes]


class DPGBenchmark(Benchmark):
    Options = DPGOptions

    def samples(self, data_dir: Optional[Path] = None) -> list[Sample]:
        path = resolve_data_file(self.spec.data["prompts"], "prompts").path
        out = []
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    row = json.loads(line)
                    out.append(Sample(sample_id=row["item_id"], index=len(out), prompt=row["prompt"],
                                      num_images=self.options.grid ** 2, metadata={"item_id": row["item_id"]}))
        return out

    def image_path(self, out_dir: Path, sample: Sample, image_index: int) -> Path:
        return Path(out_dir) / "single" / f"{sample.sample_id}-{image_index + 1}.png"

    def grid_path(self, out_dir: Path, sample: Sample) -> Path:
        return Path(out_dir) / f"{sample.sample_id}.png"

    def tile_paths(self, out_dir: Path, sample: Sample) -> list[Path]:
        return [self.image_path(out_dir, sample, j) for j in range(self.options.grid ** 2)]

    def scored_paths(self, out_dir: Path, sample: Sample) -> list[Path]:
        """The tiles when all are there (the grid is built from them), else the official 2x2 grid."""
        tiles = self.tile_paths(out_dir, sample)
        return tiles if all(p.is_file() for p in tiles) else [self.grid_path(out_dir, sample)]

    def finalize(self, out_dir: Path, samples: list[Sample]) -> None:
        from PIL import Image

        from mqeval.fileio import atomic_path, read_json_or_none, sha256_file, write_json

        record_path = Path(out_dir) / "single" / GRID_SOURCES
        built = read_json_or_none(record_path) or {}
        changed = False
        for sample in samples:
            paths = self.tile_paths(out_dir, sample)
            if not all(p.is_file() for p in paths):
                continue  # incomplete sample (e.g. a --limit run or an interrupted one); the scorer reports it
            target = self.grid_path(out_dir, sample)
            sources = [sha256_file(p) for p in paths]
            entry = built.get(sample.sample_id) or {}
            if target.is_file() and entry.get("tiles") == sources and entry.get("grid") == sha256_file(target):
                continue
            images = []
            for p in paths:
                with Image.open(p) as image:
                    images.append(image.copy())
            with atomic_path(target) as tmp:
                build_grid(images, self.options.tile_size, self.options.grid).save(tmp, format="PNG")
            built[sample.sample_id] = {"tiles": sources, "grid": sha256_file(target)}
            changed = True
        if changed:
            write_json(record_path, built)

    def _grid_image(self, out_dir: Path, sample: Sample, reader: Any) -> tuple[Optional[Any], str]:
        """(grid image or None, what was read): built from the tiles when all are there, else the grid file."""
        tiles = self.tile_paths(out_dir, sample)
        grid = self.grid_path(out_dir, sample)
        if all(p.is_file() for p in tiles):
            images = [reader.open_rgb(p) for p in tiles]
            if all(image is not None for image in images):
                return build_grid(images, self.options.tile_size, self.options.grid), "tiles"
            return None, "unreadable tiles"
        if grid.is_file():
            return reader.open_rgb(grid), "grid"
        reader.note(grid, "missing", f"neither {grid.name} nor its {len(tiles)} tiles single/{sample.sample_id}-*.png")
        return None, "missing"

    def questions(self, options: ScoreOptions) -> dict[str, protocol.ItemQuestions]:
        path = resolve_data_file(self.spec.data["questions"], "questions", local_dir=options.data_dir,
                                 cache_root=options.cache_dir).path
        return protocol.read_questions(path, official=self.options.official_quirks)

    def score(self, out_dir: Path, samples: list[Sample], options: ScoreOptions) -> ScoreResult:
        from mqeval.scorers.vqa import make_vqa_backend

        official = self.options.official_quirks
        questions = self.questions(options)
        backend = make_vqa_backend(options)
        reader = ImageReader(Path(out_dir))
        tiles_per_item = self.options.grid ** 2
        per_sample: list[dict[str, Any]] = []
        for sample in samples:
            record: dict[str, Any] = {"sample_id": sample.sample_id, "item_id": sample.sample_id}
            item = questions.get(sample.sample_id)
            grid_image, source = self._grid_image(Path(out_dir), sample, reader)
            issues = reader.issues_of(self.tile_paths(out_dir, sample) + [self.grid_path(out_dir, sample)])
            if issues:
                record["image_issues"] = issues
            if grid_image is None:
                record.update(status="missing_image", error="; ".join(i["detail"] for i in issues) or source)
            elif item is None:
                record.update(status="failed", error="no questions for this item in the CSV")
            else:
                try:
                    tiles = crop_tiles(grid_image, self.options.tile_size, tiles_per_item)
                    record.update(self._score_item(item, tiles, backend, official), read_from=source)
                except UserError:
                    raise  # a configuration problem (bad key, missing package) fails the run, not one item
                except Exception as exc:  # the reference script skips an image on any error; so do we, loudly
                    record.update(status="failed", error=f"{type(exc).__name__}: {exc}")
            per_sample.append(record)
        metrics = self.aggregate(per_sample)
        stats = getattr(getattr(backend, "client", None), "stats", None)
        if stats is not None:
            metrics.update(stats.as_metrics())
        return ScoreResult(
            metrics=metrics,
            higher_is_better={k: not (k.startswith("num_") or k.startswith("judge_")) for k in metrics},
            per_sample=per_sample,
            scorer=ScorerInfo(name=f"dpg-bench-{backend.info.name}", version=backend.info.version,
                              weights=backend.info.weights,
                              notes=backend.info.notes + (("official quirks reproduced",) if official else
                                                          ("corrected variant",))),
            warnings=self._warnings(per_sample, official) + reader.warnings(),
            image_issues=reader.counts(),
            incomplete=reader.incomplete(),
        )

    def preflight(self, options: ScoreOptions) -> None:
        """Data files, then the VQA backend (its weights, or one test request to a judge endpoint)."""
        from mqeval.scorers.vqa import make_vqa_backend

        super().preflight(options)
        backend = make_vqa_backend(options)
        client = getattr(backend, "client", None)
        if client is not None:
            client.probe()

    @staticmethod
    def _score_item(item: protocol.ItemQuestions, tiles: list[Any], backend: Any, official: bool) -> dict[str, Any]:
        pairs = [(tile, item.questions[qid]) for tile in tiles for qid in item.qids]
        answers = backend.answer_many(pairs)
        if any(a is None for a in answers):
            raise RuntimeError("the VQA backend gave no answer for some questions")
        n = len(item.qids)
        raw_tiles, gated_tiles = [], []
        for t in range(len(tiles)):
            raw = {qid: protocol.is_yes(answers[t * n + k]) for k, qid in enumerate(item.qids)}
            gated = protocol.gate(raw, item.qids, item.parents, official=official)
            raw_tiles.append([raw[q] for q in item.qids])
            gated_tiles.append([gated[q] for q in item.qids])
        tile_scores = [sum(g) / n for g in gated_tiles]
        return {
            "status": "ok",
            "qids": list(item.qids),
            "l2": [protocol.l2_category(item.tuples[q]) for q in item.qids],
            "answers": [answers[t * n:(t + 1) * n] for t in range(len(tiles))],
            "raw": raw_tiles,
            "gated": gated_tiles,
            "tile_scores": tile_scores,
            "score": sum(tile_scores) / len(tile_scores),
        }

    @staticmethod
    def _warnings(per_sample: list[dict[str, Any]], official: bool) -> list[str]:
        out = []
        for status in ("missing_image", "failed"):
            bad = [r for r in per_sample if r["status"] == status]
            if bad:
                what = "left out of the mean (as the reference script does)" if official else "scored 0"
                examples = "; ".join(f"{r['item_id']}: {r.get('error')}" for r in bad[:5])
                out.append(f"{len(bad)} items {status.replace('_', ' ')}, {what}: {examples}")
        return out

    def data_hashes(self) -> dict[str, str]:
        return recorded_hashes(self.spec.data)

    def aggregate(self, per_sample: list[dict[str, Any]]) -> dict[str, float]:
        return protocol.aggregate(per_sample, official=self.options.official_quirks)
