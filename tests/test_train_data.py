"""Training data: formats, transforms, resumable order, shapes captions kept apart from the benchmark; configs."""
import io
import json
import tarfile

import pytest
from PIL import Image

from mqeval.dataclass_io import from_dict
from mqeval.paths import MODEL_ZOO_DIR
from mqeval.train.train_config import DataConfig, load_train_config
from mqeval.train.data import StepSampler, build_dataset, load_examples, resize_crop, to_tensor
from mqeval.train.loop import SpikeGuard
from mqeval.zoo import card_names


def _image(color, size=(40, 24)):
    return Image.new("RGB", size, color)


def test_jsonl_folder_and_webdataset_read_the_same_examples(tmp_path):
    rows = [("a.png", "red thing", (255, 0, 0)), ("b.png", "blue thing", (0, 0, 255))]
    for name, caption, color in rows:
        _image(color).save(tmp_path / name)
        (tmp_path / name).with_suffix(".txt").write_text(caption)
    (tmp_path / "data.jsonl").write_text("".join(json.dumps({"image": n, "caption": c}) + "\n" for n, c, _ in rows))
    with tarfile.open(tmp_path / "shard-000.tar", "w") as tar:
        for name, caption, color in rows:
            for suffix, payload in ((".png", None), (".txt", caption.encode())):
                if payload is None:
                    buf = io.BytesIO()
                    _image(color).save(buf, format="PNG")
                    payload = buf.getvalue()
                info = tarfile.TarInfo("sub/" + name.replace(".png", suffix))
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))
    configs = [DataConfig(kind="jsonl", path=str(tmp_path / "data.jsonl"), resolution=16),
               DataConfig(kind="image-folder", path=str(tmp_path), resolution=16),
               DataConfig(kind="webdataset", path=str(tmp_path / "shard-*.tar"), resolution=16)]
    for config in configs:
        dataset = build_dataset(config)
        assert len(dataset) == 2, config.kind
        examples = load_examples(dataset, [0, 1], config, seeds=[0, 1])
        assert [e.caption for e in examples] == ["red thing", "blue thing"], config.kind
        assert examples[0].image.size == (16, 16)
        pixels = to_tensor([e.image for e in examples])
        assert pixels.shape == (2, 3, 16, 16) and pixels[0, 0].mean() > 0.9 and pixels[1, 2].mean() > 0.9


def _write_shard(path, members):
    with tarfile.open(path, "w") as tar:
        for name, payload in members:
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))


def _png(color) -> bytes:
    buf = io.BytesIO()
    _image(color).save(buf, format="PNG")
    return buf.getvalue()


def test_webdataset_shards_order_captions_and_one_open_file_per_shard(tmp_path, monkeypatch):
    """Shards in name order, samples by key within a shard (a sample's files need not be adjacent), .txt or .json
    captions, files without an image skipped; examples are read without reopening the tar."""
    _write_shard(tmp_path / "shard-001.tar", [
        ("k/b.json", json.dumps({"caption": "json caption"}).encode()), ("k/a.txt", b"first "),
        ("k/b.PNG", _png((0, 255, 0))), ("k/a.png", _png((255, 0, 0))), ("k/c.txt", b"no image"),
        ("k/d.e.jpg", b"")])
    _write_shard(tmp_path / "shard-000.tar", [("z.webp", _png((9, 9, 9))), ("z.txt", b"from shard 0")])
    _write_shard(tmp_path / "shard-002.tar", [("x.png", _png((0, 0, 255)))])
    dataset = build_dataset(DataConfig(kind="webdataset", path=str(tmp_path / "shard-00[12].tar"), resolution=16))
    assert len(dataset) == 3  # k/c has no image, k/d.e.jpg's extension is 'e.jpg'

    def no_reopen(*args, **kwargs):
        raise AssertionError("the tar was opened again")

    monkeypatch.setattr(tarfile, "open", no_reopen)
    first, second = dataset[0], dataset[1]
    assert (first.caption, first.image.getpixel((0, 0))) == ("first", (255, 0, 0))
    assert (second.caption, second.image.getpixel((0, 0))) == ("json caption", (0, 255, 0))
    from mqeval.errors import DataIntegrityError

    with pytest.raises(DataIntegrityError, match="no .txt or .json caption"):
        dataset[2]
    monkeypatch.undo()
    from mqeval.train.data import WebDatasetShards

    monkeypatch.setattr(WebDatasetShards, "MAX_OPEN_SHARDS", 1)  # every read across shards reopens one
    listed = f"{tmp_path / 'shard-000.tar'},{tmp_path / 'shard-001.tar'}"
    listed = build_dataset(DataConfig(kind="webdataset", path=listed, resolution=16))
    assert [listed[i].caption for i in (0, 1, 0, 2)] == ["from shard 0", "first", "from shard 0", "json caption"]
    with pytest.raises(DataIntegrityError, match="cannot read the tar shard .*missing.tar"):
        build_dataset(DataConfig(kind="webdataset", path=str(tmp_path / "missing.tar"), resolution=16))


def test_resize_crop_keeps_the_centre():
    im = Image.new("RGB", (60, 20), (0, 0, 0))
    im.paste((255, 255, 255), (20, 0, 40, 20))
    out = resize_crop(im, 10)
    import numpy as np

    assert out.size == (10, 10) and np.asarray(out).min() > 200


def test_step_order_is_a_function_of_seed_and_step_and_keeps_caption_groups():
    a, b = StepSampler(96, 16, seed=1, group_size=4), StepSampler(96, 16, seed=1, group_size=4)
    steps = [a.indices(s) for s in range(12)]
    assert [b.indices(s) for s in reversed(range(12))] == steps[::-1]
    assert sorted(i for s in steps[:6] for i in s) == list(range(96))  # one epoch covers everything once
    for batch in steps:
        assert all(len({i // 4 for i in batch[k:k + 4]}) == 1 for k in range(0, 16, 4))  # whole caption groups
    assert steps[:6] != steps[6:]  # the next epoch is another permutation


def test_shapes_training_captions_never_repeat_benchmark_prompts_or_knowledge_phrasing():
    from mqeval.benchmarks.shapes.knowledge import knowledge_prompt_set
    from mqeval.train.shapes_data import benchmark_prompts

    config = DataConfig(kind="shapes", resolution=32, images_per_caption=2, num_examples=1000)
    dataset = build_dataset(config)
    captions = {dataset.caption_and_metadata(c)[0] for c in range(300)}
    assert len(captions) > 50
    assert not captions & benchmark_prompts()
    assert not captions & {line["prompt"] for line in knowledge_prompt_set()}
    assert not any("colour of" in c or "color of" in c for c in captions)
    first, second = dataset[6], dataset[7]  # two scenes of one caption
    assert first.caption == second.caption and first.image.tobytes() != second.image.tobytes()


def test_spike_guard_skips_non_finite_and_far_above_average():
    guard = SpikeGuard(factor=3.0, decay=0.9, warmup=2)
    assert guard.is_spike(float("nan"), 1.0) and guard.is_spike(1.0, float("inf"))
    for _ in range(3):
        assert not guard.is_spike(1.0, 1.0)
        guard.update(1.0, 1.0)
    assert guard.is_spike(10.0, 1.0) and guard.is_spike(1.0, 10.0) and not guard.is_spike(2.0, 2.0)


@pytest.mark.parametrize("path", sorted(MODEL_ZOO_DIR.rglob("*.train.yaml")), ids=lambda p: p.name)
def test_every_training_config_loads_and_names_a_card(path):
    config = load_train_config(path)
    assert config.model in card_names()
    assert config.optim.min_lr <= config.optim.lr


def test_unknown_training_key_is_an_error():
    from mqeval.errors import ConfigError
    from mqeval.train.train_config import TrainConfig

    with pytest.raises(ConfigError, match="did you mean 'max_steps'"):
        from_dict(TrainConfig, {"model": "m", "output_dir": "o", "data": {"kind": "shapes"}, "max_step": 3})


def test_base_config_is_merged_key_by_key_and_lists_replace(tmp_path):
    (tmp_path / "stage1.yaml").write_text(
        "model: metaquery-smol\noutput_dir: a\ndata: {kind: shapes, resolution: 32}\n"
        "optim: {lr: 1.0e-3, min_lr: 1.0e-4, warmup_steps: 100}\nfreeze: [query_tokens.]\n")
    (tmp_path / "stage2.yaml").write_text(
        "base: stage1.yaml\noutput_dir: b\noptim: {lr: 3.0e-4}\nfreeze: []\n")
    config = load_train_config(tmp_path / "stage2.yaml")
    assert config.output_dir == "b" and config.data.resolution == 32
    assert (config.optim.lr, config.optim.min_lr, config.optim.warmup_steps) == (3.0e-4, 1.0e-4, 100)
    assert config.freeze == ()


def test_base_config_missing_or_looping_is_a_clear_error(tmp_path):
    from mqeval.errors import ConfigError

    (tmp_path / "orphan.yaml").write_text("base: gone.yaml\nmodel: metaquery-smol\n")
    with pytest.raises(ConfigError, match="base config 'gone.yaml' not found"):
        load_train_config(tmp_path / "orphan.yaml")
    (tmp_path / "a.yaml").write_text("base: b.yaml\n")
    (tmp_path / "b.yaml").write_text("base: a.yaml\n")
    with pytest.raises(ConfigError, match="inheritance loops"):
        load_train_config(tmp_path / "a.yaml")
