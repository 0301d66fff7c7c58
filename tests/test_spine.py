"""The shared spine: strict configs, the registry, atomic writes, hashes, seeds, card inheritance."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional

import pytest

from mqeval.dataclass_io import ConfigError, deep_merge, from_dict, to_dict
from mqeval.errors import DataIntegrityError, MissingCheckpointError, UnknownNameError
from mqeval.fileio import atomic_open, sha256_bytes, verify_sha256
from mqeval.registry import Registry
from mqeval.seeding import derive_seed
from mqeval.model.kinds import kind_of
from mqeval.zoo import load_card, resolve_card


@dataclass(frozen=True)
class Inner:
    width: int = 8
    kind: Literal["a", "b"] = "a"


@dataclass(frozen=True)
class Outer:
    name: str
    inner: Inner = field(default_factory=Inner)
    sizes: tuple[int, ...] = ()
    scale: float = 1.0
    note: Optional[str] = None


def test_from_dict_builds_nested_and_coerces():
    cfg = from_dict(Outer, {"name": "x", "inner": {"width": 3, "kind": "b"}, "sizes": [1, 2], "scale": 2})
    assert cfg == Outer("x", Inner(3, "b"), (1, 2), 2.0)
    assert to_dict(cfg) == {"name": "x", "inner": {"width": 3, "kind": "b"}, "sizes": [1, 2], "scale": 2.0,
                            "note": None}


@pytest.mark.parametrize(
    "data, message",
    [
        ({"name": "x", "scael": 2}, "did you mean .scale."),
        ({"name": "x", "inner": {"widht": 3}}, "Outer.inner"),
        ({"name": "x", "inner": {"kind": "c"}}, "not one of"),
        ({"name": 3}, "expected str"),
        ({"name": "x", "inner": {"width": True}}, "expected int, got bool"),
        ({}, "missing required key 'name'"),
    ],
)
def test_from_dict_rejects_bad_configs(data, message):
    with pytest.raises(ConfigError, match=message):
        from_dict(Outer, data)


def test_deep_merge_overrides_only_what_differs():
    base = {"a": {"b": 1, "c": 2}, "d": 3}
    assert deep_merge(base, {"a": {"c": 5}}) == {"a": {"b": 1, "c": 5}, "d": 3}
    assert base == {"a": {"b": 1, "c": 2}, "d": 3}


def test_registry_suggests_close_names_and_resolves_lazily():
    reg: Registry = Registry("thing")
    reg.register("metaquery-xl", "mqeval.seeding:derive_seed")
    assert reg.get("metaquery-xl") is derive_seed
    with pytest.raises(UnknownNameError, match="Did you mean: metaquery-xl"):
        reg.get("metaquery-x")
    with pytest.raises(ValueError):
        reg.register("metaquery-xl", "other:thing")


def test_atomic_open_leaves_no_partial_file(tmp_path: Path):
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError):
        with atomic_open(target) as handle:
            handle.write("half")
            raise RuntimeError("crash")
    assert not target.exists() and list(tmp_path.iterdir()) == []
    with atomic_open(target) as handle:
        handle.write("whole")
    assert target.read_text() == "whole"


def test_verify_sha256(tmp_path: Path):
    path = tmp_path / "data.bin"
    path.write_bytes(b"abc")
    digest = sha256_bytes(b"abc")
    assert verify_sha256(path, digest[:8]) == digest
    with pytest.raises(DataIntegrityError, match="expected"):
        verify_sha256(path, "0" * 64)
    with pytest.raises(DataIntegrityError, match="Missing"):
        verify_sha256(tmp_path / "nope", digest)


def test_derive_seed_depends_only_on_its_key():
    assert derive_seed(42, "00001", 0) == derive_seed(42, "00001", 0)
    seeds = {derive_seed(42, "00001", i) for i in range(4)} | {derive_seed(43, "00001", 0)}
    assert len(seeds) == 5 and all(0 <= s < 2**63 for s in seeds)


def _write(path: Path, text: str) -> None:
    path.write_text(text)


def test_card_inheritance_and_missing_checkpoint(tmp_path: Path):
    _write(
        tmp_path / "base-card.yaml",
        "description: base\n"
        "model:\n  backbone: {family: causal_lm, model_id: some/lm}\n  decoder: {family: pixel}\n"
        "  condition: {num_queries: 64}\n"
        "checkpoint: {path: /nonexistent/ckpt, source: train it}\n",
    )
    _write(tmp_path / "ablation.yaml", "base: base-card\nmodel:\n  condition: {mode: last-layer}\n")
    card = load_card("ablation", tmp_path)
    assert card.model.condition.mode == "last-layer" and card.model.condition.num_queries == 64
    assert card.model.backbone.model_id == "some/lm" and card.name == "ablation"
    with pytest.raises(MissingCheckpointError, match="No MetaQuery weights were released"):
        kind_of(card).resolve_weights(card, None)
    with pytest.raises(UnknownNameError, match="Did you mean: ablation"):
        load_card("ablatoin", tmp_path)
    _write(tmp_path / "loop.yaml", "base: loop\n")
    with pytest.raises(ConfigError, match="loops"):
        load_card("loop", tmp_path)
    # A card file given by path (what `mqeval run --model` and a train config's `model` accept), .yml included:
    # named by its stem, its base looked up beside it
    _write(tmp_path / "my-variant.yml", "base: base-card\nmodel:\n  condition: {num_queries: 8}\n")
    variant = resolve_card(str(tmp_path / "my-variant.yml"))
    assert variant.name == "my-variant" and variant.model.condition.num_queries == 8
    assert variant.description == "base" and variant.model.backbone.model_id == "some/lm"


def test_atomic_writes_follow_the_umask(tmp_path: Path):
    import os

    old = os.umask(0o022)
    try:
        with atomic_open(tmp_path / "r.json") as handle:
            handle.write("{}")
    finally:
        os.umask(old)
    assert (tmp_path / "r.json").stat().st_mode & 0o777 == 0o644
