"""Training core on the tiny random model: exact resume, falling loss, optimizer holds no frozen parameter."""
import pytest

from helpers_train import tiny_train_config

from mqeval.train.loop import Trainer, train


def tiny_config(out, **over):
    return tiny_train_config(out, **{"max_steps": 6, **over})


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


def _unet_card(path, output_modulation: bool):
    import yaml

    from mqeval.zoo import MODEL_ZOO_DIR

    raw = yaml.safe_load((MODEL_ZOO_DIR / "metaquery-tiny.yaml").read_text())
    raw["model"]["decoder"]["train"] = True
    raw["model"]["decoder"]["pixel"] = {"architecture": "unet", "image_size": 32, "width": 8, "depth": 1,
                                        "num_heads": 2, "caption_dim": 32, "channel_mult": [1, 2],
                                        "output_modulation": output_modulation}
    path.write_text(yaml.safe_dump(raw))
    return str(path)


def test_init_checkpoint_warm_starts_a_model_with_a_new_layer(tmp_path):
    import torch
    from safetensors.torch import load_file

    from mqeval.errors import ConfigError, UserError

    before = _unet_card(tmp_path / "before.yaml", output_modulation=False)
    train(tiny_config(tmp_path / "first", model=before, max_steps=2), progress=False)
    ckpt = tmp_path / "first" / "checkpoints" / "step-0000002"
    saved = load_file(str(ckpt / "model.safetensors"))

    after = _unet_card(tmp_path / "after.yaml", output_modulation=True)
    new = ["decoder.dit.out_modulation."]
    trainer = Trainer(tiny_config(tmp_path / "second", model=after, init_checkpoint=str(ckpt), init_new_parameters=new))
    params = dict(trainer.unwrapped.named_parameters())
    assert all(torch.equal(params[name], tensor) for name, tensor in saved.items())
    assert not params["decoder.dit.out_modulation.weight"].any()  # zero-initialised: starts as the checkpoint
    assert params["decoder.dit.out_modulation.weight"].requires_grad
    # Without naming the new layer, the checkpoint does not fit the card: a clear error
    with pytest.raises((UserError, ConfigError), match="output_modulation: card True vs checkpoint False"):
        Trainer(tiny_config(tmp_path / "third", model=after, init_checkpoint=str(ckpt)))
