"""Write run folders (results.json + samples.jsonl; schema in mqeval.results.schema) and read their results.json.

One run folder is read by mqeval.results.run.read_run; `load_runs` puts many runs into one pandas frame.
"""
from __future__ import annotations

import json
import secrets
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from mqeval.dataclass_io import from_dict, to_dict
from mqeval.errors import ConfigError, DataIntegrityError
from mqeval.extras import require
from mqeval.fileio import atomic_open, write_json
from mqeval.results.schema import (
    SAMPLE_KEYS,
    SCHEMA_VERSION,
    RunRecord,
    SchemaVersionError,
)
from mqeval.run_folder import RESULTS_NAME, SAMPLES_NAME

if TYPE_CHECKING:
    import pandas as pd


# Columns of load_runs() besides the metrics (a metric with one of these names is an error).
RUN_COLUMNS = (
    "run_dir", "run_id", "created", "benchmark", "benchmark_version", "variant_of", "prompt_set", "num_samples",
    "limit", "model", "checkpoint_sha256", "random_init", "seed", "images_per_prompt", "scorer", "scorer_version",
    "git_hash", "num_warnings",
)


def new_run_id() -> str:
    return f"{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def sample_rows(
    samples: Sequence[Any], seeds: Sequence[list[int]], images: Sequence[list[str]], per_sample: Iterable[dict]
) -> list[dict[str, Any]]:
    """samples.jsonl rows: the fixed keys, then the scorer's per-sample fields matched by sample_id."""
    scores = {}
    for record in per_sample:
        if "sample_id" not in record:
            raise ValueError("every per-sample score record needs a sample_id")
        scores[str(record["sample_id"])] = record
    rows = []
    for sample, sample_seeds, sample_images in zip(samples, seeds, images, strict=True):
        row = {"sample_id": sample.sample_id, "index": sample.index, "prompt": sample.prompt,
               "seeds": list(sample_seeds), "images": list(sample_images)}
        for key, value in scores.get(sample.sample_id, {}).items():
            if key == "sample_id":
                continue
            row[f"score_{key}" if key in SAMPLE_KEYS else key] = value
        rows.append(row)
    return rows


def write_run(run_dir: Path, record: RunRecord, rows: Sequence[dict[str, Any]]) -> Path:
    """samples.jsonl first, results.json last: a folder with results.json is a complete run. Both atomic."""
    run_dir = Path(run_dir)
    with atomic_open(run_dir / SAMPLES_NAME, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, default=str) + "\n")
    path = run_dir / RESULTS_NAME
    write_json(path, to_dict(record))
    return path


def read_record(path: Path) -> tuple[dict[str, Any], RunRecord]:
    path = Path(path)
    if path.is_dir():
        path = path / RESULTS_NAME
    if not path.is_file():
        raise DataIntegrityError(f"No {RESULTS_NAME} at {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataIntegrityError(f"{path} is not valid JSON ({exc}); the run may have been interrupted") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object")
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        raise SchemaVersionError(
            f"{path} has schema_version {version!r}, but this mqeval reads schema_version {SCHEMA_VERSION}. "
            "Use the mqeval version that wrote it, or re-score the images with `mqeval score`."
        )
    return data, from_dict(RunRecord, data, str(path))


def check_sample_rows(path: Path, rows: list[dict[str, Any]], num_samples: int) -> None:
    """samples.jsonl must hold one row per recorded sample (edited or truncated files give other counts)."""
    from collections import Counter

    duplicated = sorted(i for i, n in Counter(str(row.get("sample_id")) for row in rows).items() if n > 1)
    if duplicated:
        raise DataIntegrityError(f"{path} lists sample(s) {duplicated[:5]} more than once; the file was edited")
    if len(rows) != num_samples:
        raise DataIntegrityError(f"{path} has {len(rows)} samples but results.json records {num_samples}; the file "
                                 "was edited or truncated (score the run again)")


def run_row(run_dir: Path, record: RunRecord) -> dict[str, Any]:
    gen = record.generation or {}
    row = {
        "run_dir": str(run_dir),
        "run_id": record.run_id,
        "created": record.created,
        "benchmark": record.benchmark.name,
        "benchmark_version": record.benchmark.version,
        "variant_of": record.benchmark.variant_of,
        "prompt_set": record.benchmark.prompt_set,
        "num_samples": record.benchmark.num_samples,
        "limit": record.benchmark.limit,
        "model": record.model.card,
        "checkpoint_sha256": record.model.checkpoint_sha256,
        "random_init": record.model.random_init,
        "seed": gen.get("seed"),
        "images_per_prompt": gen.get("images_per_prompt"),
        "scorer": record.scorer.name,
        "scorer_version": record.scorer.version,
        "git_hash": record.environment.git_hash,
        "num_warnings": len(record.warnings),
    }
    clash = sorted(set(record.metrics) & set(row))
    if clash:
        raise ConfigError(f"{run_dir}: metric key(s) {clash} clash with run columns of load_runs")
    row.update(record.metrics)
    return row


def load_runs(root: str | Path) -> "pd.DataFrame":
    """Every run under `root` (searched recursively): one row per run, RUN_COLUMNS then one column per metric.

    `df.attrs["higher_is_better"]` maps each metric column to its direction.
    """
    pd = require("pandas", "reports", "Loading runs into pandas")

    root = Path(root)
    if not root.exists():
        raise DataIntegrityError(f"No runs folder at {root}")
    rows, directions = [], {}
    for path in sorted(root.rglob(RESULTS_NAME)):
        _, record = read_record(path)
        rows.append(run_row(path.parent, record))
        for key, higher in record.higher_is_better.items():
            if directions.setdefault(key, higher) != higher:
                raise ConfigError(f"metric '{key}' is higher-is-better in one run and lower-is-better in another")
    frame = pd.DataFrame.from_records(rows, columns=None) if rows else pd.DataFrame(columns=list(RUN_COLUMNS))
    frame.attrs["higher_is_better"] = directions
    return frame
