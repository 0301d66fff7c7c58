"""Training core on the tiny random model: exact resume, falling loss, optimizer holds no frozen parameter."""
import pytest

from mqeval.config import from_dict
from mqeval.train.config import TrainConfig
from mqeval.train.loop import Trainer, train


def tiny_config(out, **over):
    raw = {
        "model": "metaquery-tiny", "output_dir": str(out), "max_steps": 6, "batch_size": 4, "seed": 3,
        "data": {"kind": "shapes", "resolution": 32, "images_per_caption": 2, "num_examples": 400},
        "optim": {"lr": 3e-3, "min_lr": 3e-4, "warmup_steps": 2, "grad_clip": 1.0},
        "save_every": 100, "trackers": [], "condition_cache_size": 64,
    }
    raw.update(over)
    return from_dict(TrainConfig, raw)


def test_interrupted_and_resumed_run_repeats_the_loss_curve(tmp_path):
    full = train(tiny_config(tmp_path / "full"), progress=False)
    first = train(tiny_config(tmp_path / "cut"), max_steps=3, progress=False)
    assert first.final_step == 3
    second = train(tiny_config(tmp_path / "cut"), progress=False)  # resumes from step 3
    assert sorted(second.losses) == [3, 4, 5]
    resumed = {**first.losses, **second.losses}
    assert list(resumed) and resumed.keys() == full.losses.keys()
    for step, loss in full.losses.items():
        assert resumed[step] == pytest.approx(loss, rel=1e-5, abs=1e-7), step


def test_optimizer_never_holds_frozen_parameters(tmp_path):
    trainer = Trainer(tiny_config(tmp_path, optim={"lr_multipliers": {"decoder.": 3.0}}))
    held = {id(p) for g in trainer.optimizer.param_groups for p in g["params"]}
    names = {id(p): n for n, p in trainer.unwrapped.named_parameters()}
    frozen = {id(p) for p in trainer.unwrapped.parameters() if not p.requires_grad}
    assert frozen and not (held & frozen)
    assert held == {id(p) for p in trainer.unwrapped.trainable_parameters()}
    for group in trainer.optimizer.param_groups:
        for p in group["params"]:
            if names[id(p)].startswith("query_tokens.") or p.ndim < 2:
                assert group["weight_decay"] == 0.0, names[id(p)]
            if names[id(p)].startswith("decoder."):
                assert group["lr_scale"] == 3.0


def test_loss_falls_on_a_short_cpu_run(tmp_path):
    cfg = tiny_config(tmp_path, max_steps=40, batch_size=8, optim={"lr": 1e-2, "min_lr": 3e-3, "warmup_steps": 5})
    result = train(cfg, progress=False)
    losses = [result.losses[s] for s in sorted(result.losses)]
    assert sum(losses[-8:]) / 8 < 0.97 * sum(losses[:4]) / 4  # loosely: it must learn something
