"""Run folders in the results-store schema (schema_version 1) and small benchmark plug-ins for the report tests."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional, Sequence

from mqeval.benchmarks.base import Benchmark, BenchmarkSpec


class MeanBenchmark(Benchmark):
    """overall = mean of per-sample `score` (a GenEval-like accuracy); `double` = 2 x overall."""

    def samples(self, data_dir=None):
        return []

    def image_path(self, out_dir, sample, image_index):
        return out_dir / f"{sample.index:05d}_{image_index}.png"

    def score(self, out_dir, samples, options):
        raise NotImplementedError("the report tests only aggregate stored records")

    def aggregate(self, per_sample):
        mean = sum(r["score"] for r in per_sample) / len(per_sample)
        return {"overall": mean, "double": 2 * mean}


class FidLikeBenchmark(MeanBenchmark):
    aggregatable = False


def lookup_for(version: str = "1.0"):
    """name -> plug-in instance; FID-like for names ending in -fid."""

    def lookup(name: str):
        cls = FidLikeBenchmark if name.endswith("fid") else MeanBenchmark
        return cls(BenchmarkSpec(name=name, plugin="test", version=version, description="test"))

    return lookup


def write_run(
    root: Path,
    run_id: str,
    card: str,
    benchmark: str,
    scores: Sequence[float],
    *,
    version: str = "1.0",
    prompt_set: Optional[str] = "original",
    scorer_version: str = "1",
    metrics: Optional[dict[str, float]] = None,
    decoder: str = "sana",
    seeds: Optional[Sequence[int]] = None,
    created: str = "2026-11-23T12:00:00Z",
    images: bool = False,
    variant_of: Optional[str] = None,
    extra: Optional[Sequence[dict]] = None,
    warnings: Sequence[str] = (),
    limit: Optional[int] = None,
    incomplete: Sequence[str] = (),
) -> Path:
    folder = root / run_id
    folder.mkdir(parents=True, exist_ok=True)
    mean = sum(scores) / len(scores) if scores else 0.0
    metrics = metrics if metrics is not None else {"overall": mean, "double": 2 * mean}
    results: dict[str, Any] = {
        "schema_version": 1,
        "run_id": run_id,
        "created": created,
        "benchmark": {"name": benchmark, "version": version, "variant_of": variant_of, "prompt_set": prompt_set,
                      "data_sha256": {"prompts": "ab" * 32}, "num_samples": len(scores), "limit": limit},
        "model": {"card": card, "config": {"name": card, "model": {"decoder": {"family": decoder}}},
                  "checkpoint_sha256": None, "random_init": False},
        "generation": {"seed": 42, "images_per_prompt": 1},
        "scorer": {"name": f"{benchmark}-scorer", "version": scorer_version, "weights": None, "notes": []},
        "metrics": metrics,
        "higher_is_better": {k: not k.endswith("fid") for k in metrics},
        "warnings": list(warnings),
        "incomplete": list(incomplete),
        "environment": {"packages": {}, "python": "3", "platform": "test", "device": "cpu", "num_processes": 1},
    }
    (folder / "results.json").write_text(json.dumps(results))
    lines = []
    for i, score in enumerate(scores):
        record = {"sample_id": f"s{i:03d}", "index": i, "prompt": f"a photo of {i} cubes",
                  "seeds": [seeds[i] if seeds else 1000 + i], "images": [f"images/{i:05d}.png"], "score": score}
        record.update(extra[i] if extra else {})
        lines.append(json.dumps(record))
        if images:
            from PIL import Image

            (folder / "images").mkdir(exist_ok=True)
            Image.new("RGB", (16, 16), (i * 40 % 255, 80, 160)).save(folder / "images" / f"{i:05d}.png")
    (folder / "samples.jsonl").write_text("\n".join(lines) + "\n")
    return folder
