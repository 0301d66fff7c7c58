"""Checkpoints of the authors' trainer: the committed tiny one (tests/fixtures/official_metaquery, written by the
official classes through scripts/official_metaquery_reference.py) loads and computes what the official code computed;
conversions both ways; what a broken folder gives."""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from mqeval.errors import ConfigError, UserError
from mqeval.model import official_checkpoint as official
from mqeval.model.official_conversion import converted_folder, from_official, to_official

REPO = Path(__file__).resolve().parent.parent
FIXTURE = Path("tests/fixtures/official_metaquery")  # relative: the checkpoint's config names its base models so
VARIANTS = ("qwen-sana", "llava-sd15")  # the official code's two families (Qwen2.5-VL + Sana, LLaVA-OV + SD1.5)
RUN = FIXTURE / "qwen-sana" / "run"


@pytest.fixture(autouse=True)
def at_repo_root(monkeypatch, tmp_path):
    monkeypatch.chdir(REPO)
    monkeypatch.setenv("MQEVAL_CACHE", str(tmp_path / "cache"))


def check_script():
    path = REPO / "scripts" / "check_official_metaquery.py"
    spec = importlib.util.spec_from_file_location("check_official_metaquery", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("variant", VARIANTS)
def test_conditions_images_and_loss_equal_what_the_official_code_computed(variant):
    results = check_script().run(FIXTURE / variant)
    assert len(results) == (19 if variant == "qwen-sana" else 15)  # + FlowMatchEuler for the flow family
    failed = [r.line() for r in results if not r.ok]
    assert not failed, failed
    assert {r.name.split()[0] for r in results} == {"condition", "image", "image-conditioned", "training"}
    assert max(r.difference for r in results if r.name.startswith("image")) <= 1  # grey levels


@pytest.mark.parametrize("variant", VARIANTS)
def test_official_to_mqeval_to_official_gives_the_same_file_byte_for_byte(tmp_path, variant):
    run = FIXTURE / variant / "run"
    from_official(run, tmp_path / "mqeval")
    to_official(tmp_path / "mqeval", tmp_path / "official")
    original = (run / "checkpoint-2" / "model.safetensors").read_bytes()
    assert (tmp_path / "official" / "model.safetensors").read_bytes() == original
    record = json.loads((tmp_path / "mqeval" / "conversion.json").read_text())
    assert record["source_sha256"] == official.weights_sha256(run / "checkpoint-2")
    written = json.loads((tmp_path / "official" / "config.json").read_text())
    source = json.loads((run / "checkpoint-2" / "config.json").read_text())
    keys = ("mllm_id", "diffusion_model_id", "vae_id", "scheduler_id", "noise_scheduler_id", "input_size",
            "in_channels", "vae_downsample_f", "loss_type", "num_metaqueries", "max_input_text_tokens",
            "connector_num_hidden_layers", "system_prompt", "modules_to_freeze", "modules_to_unfreeze")
    assert {k: written[k] for k in keys} == {k: source[k] for k in keys}


def test_the_written_official_config_holds_the_architecture(tmp_path):
    from_official(RUN, tmp_path / "mqeval")
    to_official(tmp_path / "mqeval", tmp_path / "official")
    config = json.loads((tmp_path / "official" / "config.json").read_text())
    assert {k: config[k] for k in ("num_metaqueries", "input_size", "in_channels", "connector_num_hidden_layers",
                                   "max_input_text_tokens", "mllm_id")} == {
        "num_metaqueries": 8, "input_size": 8, "in_channels": 4, "connector_num_hidden_layers": 1,
        "max_input_text_tokens": 6, "mllm_id": "tests/fixtures/official_metaquery/base/Qwen2.5-VL-tiny"}


def test_the_newest_checkpoint_is_taken_as_the_official_rule_says(tmp_path):
    assert official.newest_checkpoint(RUN) == RUN / "checkpoint-2"
    assert official.newest_checkpoint(RUN / "checkpoint-2") == RUN / "checkpoint-2"
    run = tmp_path / "run"
    shutil.copytree(RUN / "checkpoint-2", run / "checkpoint-10")
    (run / "checkpoint-9").mkdir()
    assert official.newest_checkpoint(run) == run / "checkpoint-10"  # by number, not by name
    with pytest.raises(UserError, match="neither weights nor checkpoint-N"):
        official.newest_checkpoint(tmp_path / "run" / "checkpoint-9")


def broken_copy(tmp_path: Path, change) -> Path:
    target = tmp_path / "broken" / "checkpoint-2"
    shutil.copytree(RUN / "checkpoint-2", target)
    state = load_file(str(target / "model.safetensors"))
    change(state)
    save_file(state, str(target / "model.safetensors"), metadata={"format": "pt"})
    return target


def test_sharded_weights_read_as_the_single_file(tmp_path):
    target = tmp_path / "sharded"
    target.mkdir()
    shutil.copy(RUN / "checkpoint-2" / "config.json", target)
    state = load_file(str(RUN / "checkpoint-2" / "model.safetensors"))
    names = sorted(state)
    shards = {"model-00001-of-00002.safetensors": names[::2], "model-00002-of-00002.safetensors": names[1::2]}
    for shard, keys in shards.items():
        save_file({k: state[k] for k in keys}, str(target / shard), metadata={"format": "pt"})
    (target / official.INDEX_NAME).write_text(json.dumps(
        {"metadata": {}, "weight_map": {k: shard for shard, keys in shards.items() for k in keys}}))
    read = official.read_weights(target)
    assert set(read) == set(state) and all(torch.equal(read[k], state[k]) for k in state)
    (target / "model-00002-of-00002.safetensors").unlink()
    with pytest.raises(UserError, match="names shards that are not there: model-00002-of-00002"):
        official.read_weights(target)


def test_an_unknown_key_is_named(tmp_path):
    folder = broken_copy(tmp_path, lambda state: state.update({"model.extra_head.weight": torch.zeros(2)}))
    with pytest.raises(UserError, match="map onto no mqeval module, e.g. model.extra_head.weight"):
        from_official(folder, tmp_path / "out")


def test_a_missing_key_is_named(tmp_path):
    folder = broken_copy(tmp_path, lambda state: state.pop("model.mllm_backbone.model.norm.weight"))
    with pytest.raises(UserError, match="lacks 1 weight.*backbone.model.model.language_model.norm.weight"):
        from_official(folder, tmp_path / "out")


def test_a_wrong_shape_is_named(tmp_path):
    folder = broken_copy(tmp_path, lambda state: state.update(
        {"model.connector.1.bias": torch.zeros(33)}))
    with pytest.raises(UserError, match=r"connector.projector.0.bias has shape \(33,\)"):
        from_official(folder, tmp_path / "out")


def test_pickles_and_corrupt_files_are_refused(tmp_path):
    folder = tmp_path / "pickled"
    folder.mkdir()
    shutil.copy(RUN / "checkpoint-2" / "config.json", folder)
    (folder / "pytorch_model.bin").write_bytes(b"not opened")
    with pytest.raises(UserError, match="never unpickles"):
        official.read_weights(folder)
    (folder / "model.safetensors").write_bytes(b"\x00" * 40)
    with pytest.raises(UserError, match="not a readable safetensors file"):
        official.read_weights(folder)


def test_a_card_that_contradicts_the_checkpoint_is_an_error_naming_the_field():
    from mqeval.model.kinds import kind_of
    from mqeval.model.loading import load_model
    from mqeval.zoo import load_card

    card = load_card("metaquery-tiny-qwen2-5-vl-sana")
    weights = kind_of(card).resolve_weights(card, RUN)
    with pytest.raises(ConfigError, match="backbone.model_id: card 'tiny://qwen2_5_vl'"):
        load_model(card, checkpoint=weights.path)


def test_a_card_naming_the_wrong_format_is_an_error(tmp_path):
    from mqeval.errors import MissingCheckpointError
    from mqeval.model.kinds import kind_of
    from mqeval.zoo import resolve_card

    text = (REPO / "model_zoo" / "metaquery-tiny-official.yaml").read_text()
    card_file = tmp_path / "mine.yaml"
    card_file.write_text(text.replace("format: official", "format: mqeval"))
    card = resolve_card(str(card_file))
    with pytest.raises(MissingCheckpointError, match="checkpoint.format 'mqeval'"):
        kind_of(card).resolve_weights(card, None)


def test_the_conversion_is_made_once_and_reused():
    first, sha = converted_folder(RUN)
    stamp = (first / "model.safetensors").stat().st_mtime_ns
    assert converted_folder(RUN) == (first, sha)
    assert sha == json.loads((first / "conversion.json").read_text())["sha256"]
    assert (first / "model.safetensors").stat().st_mtime_ns == stamp


def test_the_official_config_maps_onto_the_card_fields():
    raw = official.read_raw_config(RUN / "checkpoint-2")
    config = official.config_from_official(raw)
    assert (config.backbone.family, config.decoder.family, config.decoder.resolution) == ("qwen2_5_vl", "sana", 32)
    assert (config.condition.num_queries, config.condition.max_prompt_tokens, config.condition.markers) == (
        8, 6, "learned")
    assert (config.connector.num_layers, config.connector.layout, config.decoder.train) == (1, "official", True)
    with pytest.raises(UserError, match="vae_id"):
        official.config_from_official({**raw, "vae_id": "stabilityai/sd-vae-ft-mse"})
    with pytest.raises(UserError, match="text-only LLM branch"):
        official.config_from_official({**raw, "mllm_id": "Qwen/Qwen2.5-0.5B"})


def test_run_and_convert_from_the_command_line(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "MQEVAL_CACHE": str(tmp_path / "cache"), "PYTHONPATH": str(REPO)}
    mqeval = [sys.executable, "-m", "mqeval.cli"]
    run = subprocess.run(mqeval + ["run", "shapes", "--model", "metaquery-tiny-official", "--checkpoint", str(RUN),
                                   "--limit", "2", "--out", str(tmp_path / "run")],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "metaquery-tiny-official | 2 samples" in run.stdout
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("x")
    refused = subprocess.run(mqeval + ["convert-checkpoint", "official", str(RUN), str(tmp_path / "taken")],
                             cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert refused.returncode != 0 and "not empty" in refused.stderr
    missing = subprocess.run(mqeval + ["convert-checkpoint", "official", str(tmp_path / "nothing"),
                                       str(tmp_path / "new")], cwd=REPO, env=env, capture_output=True, text=True,
                             timeout=600)
    assert missing.returncode != 0
    assert [line for line in missing.stderr.splitlines() if line.startswith("Error:")] == [
        f"Error: {tmp_path / 'nothing'} is not a folder"]
    assert "Traceback" not in missing.stderr
