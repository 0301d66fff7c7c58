"""Results store: schema round trip, samples.jsonl, load_runs, schema-version and consistency errors."""
from __future__ import annotations

import dataclasses
import json

import pytest
from mqeval.contract.scoring import ScoreOptions
from mqeval.errors import ConfigError, DataIntegrityError
from mqeval.generation.sharded_writer import generate
from mqeval.results import schema
from mqeval.results.record import RunOrigin, SampleSelection, build_run, model_record
from mqeval.results.schema import SchemaVersionError
from mqeval.results.run import read_run
from mqeval.results.store import load_runs, read_record, write_run
from mqeval.zoo import load_card

from helpers_runner import FakeBenchmark, FakeGroup, FakePipeline, fake_settings


def make_run(run_dir, num_samples=3, limit=None):
    bench = FakeBenchmark(num_samples=num_samples)
    samples = bench.samples()
    settings = fake_settings()
    generate(bench, samples, FakePipeline(), settings, run_dir, group=FakeGroup(), progress=False)
    result = bench.score(run_dir / "images", samples, ScoreOptions())
    card = load_card("metaquery-tiny")
    selection = SampleSelection(samples, num_samples + 2 if limit else num_samples, limit)
    origin = RunOrigin(model=model_record(card, None), settings=settings, batch_size=4, warnings=("test warning",))
    record, rows = build_run(run_dir, bench, selection, result, run_dir / "images", origin, "cpu")
    return record, write_run(run_dir, record, rows)


def test_round_trip_records_everything_that_determines_the_numbers(tmp_path):
    record, path = make_run(tmp_path, limit=3)
    run = read_run(tmp_path)
    assert run.record == record and run.results == json.loads(path.read_text())
    r = run.results
    assert r["schema_version"] == 1 and r["run_id"] and r["created"].endswith("+00:00")
    assert r["benchmark"] == {"name": "fake", "version": "1", "data_sha256": {}, "num_samples": 3,
                              "variant_of": None, "prompt_set": None, "limit": 3}
    assert r["model"]["card"] == "metaquery-tiny" and r["model"]["random_init"] is True
    assert r["model"]["config"]["model"]["decoder"]["family"] == "pixel"  # the resolved card
    assert r["generation"]["seed"] == 7 and r["generation"]["images_per_prompt"] == 2
    assert r["generation"]["batch_size"] == 4
    assert r["scorer"] == {"name": "mean-brightness", "version": "1", "weights": None, "notes": ["test scorer"]}
    assert set(r["metrics"]) == set(r["higher_is_better"]) == {"brightness"}
    packages = r["environment"]["packages"]
    for name in ("torch", "transformers", "diffusers", "accelerate", "open-clip-torch", "torch-fidelity", "mqeval"):
        assert name in packages
    assert packages["torch"].startswith("2.")
    assert len(r["environment"]["git_hash"] or "0" * 40) == 40
    assert r["warnings"] == ["test warning"]


def test_samples_jsonl_has_seeds_images_and_per_sample_scores(tmp_path):
    make_run(tmp_path)
    samples = read_run(tmp_path).samples_frame()
    assert list(samples["sample_id"]) == ["p000", "p001", "p002"] and list(samples["index"]) == [0, 1, 2]
    first = samples.iloc[0]
    assert first["images"] == ["images/00000/samples/0000.png", "images/00000/samples/0001.png"]
    assert all((tmp_path / p).is_file() for p in first["images"])
    from mqeval.seeding import derive_seed

    assert first["seeds"] == [derive_seed(7, "p000", 0), derive_seed(7, "p000", 1)]
    assert 0 < first["brightness"] < 1
    # the scorer's "prompt" field clashes with a fixed key: kept under score_prompt, the prompt itself untouched
    assert first["prompt"] == "a photo of 0 circles" and first["score_prompt"] == "clash"


def test_load_runs_gives_one_row_per_run_with_flat_metrics(tmp_path):
    make_run(tmp_path / "a" / "run1")
    make_run(tmp_path / "b" / "run2", num_samples=2)
    frame = load_runs(tmp_path)
    assert len(frame) == 2 and list(frame["num_samples"]) == [3, 2]
    assert frame["brightness"].between(0, 1).all()
    assert set(frame["model"]) == {"metaquery-tiny"} and frame.attrs["higher_is_better"] == {"brightness": True}


def test_other_schema_versions_are_refused_with_a_clear_message(tmp_path):
    _, path = make_run(tmp_path)
    data = json.loads(path.read_text())
    data["schema_version"] = 2
    path.write_text(json.dumps(data))
    with pytest.raises(SchemaVersionError, match="schema_version 2.*reads schema_version 1"):
        read_run(tmp_path)
    del data["schema_version"]
    path.write_text(json.dumps(data))
    with pytest.raises(SchemaVersionError, match="None"):
        load_runs(tmp_path)


def test_inconsistent_or_broken_records_are_errors(tmp_path):
    _, path = make_run(tmp_path)
    data = json.loads(path.read_text())
    data["higher_is_better"] = {}
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="higher_is_better"):
        read_record(path)
    data["surprise"] = 1
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="surprise"):
        read_record(path)
    path.write_text("{not json")
    with pytest.raises(DataIntegrityError, match="not valid JSON"):
        read_record(path)


def test_schema_table_documents_every_field():
    doc = schema.__doc__
    records = [schema.RunRecord, schema.BenchmarkRecord, schema.ModelRecord, schema.ScorerRecord,
               schema.EnvironmentRecord]
    prefixes = {schema.BenchmarkRecord: "benchmark.", schema.ModelRecord: "model.", schema.ScorerRecord: "scorer.",
                schema.EnvironmentRecord: "environment."}
    for cls in records:
        for field in dataclasses.fields(cls):
            if field.name in ("benchmark", "model", "scorer", "environment"):  # documented by their own fields
                continue
            assert f"| {prefixes.get(cls, '')}{field.name} " in doc, field.name
