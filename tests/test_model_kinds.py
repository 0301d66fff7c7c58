"""Model kinds: card validation, settings resolved without a MetaQuery (published settings, capabilities,
deviations), the capability guard, the python kind's factory, and per-image seeding of the diffusers kind."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from mqeval.benchmarks.base import GenerationSpec
from mqeval.dataclass_io import from_dict
from mqeval.contract.samples import Sample
from mqeval.contract.text_to_image import Capabilities, TextToImage
from mqeval.errors import ConfigError
from mqeval.generation.settings import SettingOverrides, deviations, resolve_settings
from mqeval.model.kinds import CheckedModel, kind_of
from mqeval.model.card import ModelCard
from mqeval.zoo import load_card

DIFFUSERS = {"model_id": "tiny://sd15_pipeline"}


@pytest.mark.parametrize("raw, message", [
    ({"kind": "diffusers"}, "needs a `diffusers:` block"),
    ({"kind": "diffusers", "diffusers": DIFFUSERS, "python": {"factory": "a:b"}}, "no `python:` block"),
    ({"model": None, "kind": "python", "python": {"factory": "a:b"}, "transformers": {"model_id": "a/b"}},
     "no `transformers:` block"),
    ({"kind": "jax", "python": {"factory": "a:b"}}, "'jax' is not one of"),
    ({"kind": "diffusers", "diffusers": DIFFUSERS, "published": [{"benchmark": "wise", "source": "s"}] * 2},
     "names a benchmark twice"),
])
def test_a_card_holds_exactly_the_block_of_its_kind(raw, message):
    with pytest.raises(ConfigError, match=message):
        from_dict(ModelCard, {"name": "x", "description": "", **raw})


def test_metaquery_is_the_default_kind_and_its_capabilities_are_fixed():
    card = load_card("metaquery-tiny")
    assert card.kind == "metaquery" and card.metaquery is card.model
    raw = {"name": "x", "description": "", "model": {"backbone": {"family": "causal_lm", "model_id": "a/b"},
                                                      "decoder": {"family": "pixel"}}, "capabilities": {}}
    with pytest.raises(ConfigError, match="a MetaQuery's are fixed"):
        from_dict(ModelCard, raw)
    with pytest.raises(ConfigError, match="needs a MetaQuery card"):
        load_card("tiny-python").metaquery


def test_metaquery_settings_are_unchanged_by_kinds():
    settings = resolve_settings(load_card("metaquery-tiny"), GenerationSpec(images_per_prompt=4), benchmark="shapes")
    assert (settings.resolution, settings.guidance_scale, settings.num_inference_steps, settings.scheduler) == (
        32, 2.0, 4, "flow-euler")


def _negative_samples():
    return [Sample(sample_id="p0", index=0, prompt="a cat", negative_prompt="a dog")]


def test_published_settings_win_over_the_protocol_and_the_variant_uses_its_base_entry():
    card = load_card("sdxl")
    protocol = GenerationSpec(images_per_prompt=4, guidance_scale=7.5, num_inference_steps=30)
    settings = resolve_settings(card, protocol, benchmark="commonsense-t2i-negative", variant_of="commonsense-t2i")
    assert (settings.guidance_scale, settings.num_inference_steps, settings.resolution) == (5.0, 50, 1024)
    found = deviations(card, settings, _negative_samples(), "commonsense-t2i-negative", "commonsense-t2i")
    assert len(found) == 1 and "are not stated" in found[0] and "guidance 5" in found[0]
    # Elsewhere the protocol decides, as for any card.
    other = resolve_settings(card, protocol, benchmark="geneval")
    assert (other.guidance_scale, other.num_inference_steps) == (7.5, 30)
    assert deviations(card, other, [], "geneval") == []


def test_an_override_is_a_deviation_from_the_published_setting():
    card = load_card("sdxl")
    settings = resolve_settings(card, GenerationSpec(), SettingOverrides(guidance_scale=7.0), benchmark="wise")
    assert settings.guidance_scale == 7.0
    assert any(d.startswith("guidance_scale 7.0 differs from the published setting 5.0")
               for d in deviations(card, settings, [], "wise"))


def test_what_a_model_cannot_do_is_a_deviation_or_an_error():
    flux = load_card("flux.1-dev")
    settings = resolve_settings(flux, GenerationSpec(scheduler="dpm-solver"), benchmark="commonsense-t2i")
    found = deviations(flux, settings, _negative_samples(), "commonsense-t2i")
    assert any("cannot use negative prompts" in d for d in found)
    other = resolve_settings(flux, GenerationSpec(scheduler="dpm-solver"), benchmark="geneval")
    assert any("does not take scheduler 'dpm-solver'" in d for d in deviations(flux, other, [], "geneval"))
    janus = load_card("janus-pro-1b")
    assert resolve_settings(janus, GenerationSpec(), benchmark="shapes").resolution == 384
    with pytest.raises(ConfigError, match="512 px is above the model's maximum of 384 px"):
        resolve_settings(janus, GenerationSpec(resolution=512), benchmark="shapes")
    with pytest.raises(ConfigError, match="not a multiple of 16"):
        resolve_settings(load_card("tiny-diffusers"), GenerationSpec(resolution=40), benchmark="shapes")


class Recorder:
    capabilities = Capabilities()

    def __init__(self, count=None):
        self.calls, self.count = [], count

    def __call__(self, prompts, **kwargs):
        from PIL import Image

        self.calls.append(kwargs)
        return [Image.new("RGB", (8, 8))] * (self.count or len(prompts))


def _call(model, **extra):
    args = dict(negative_prompts=["n"], generators=[None], guidance_scale=2.0, num_inference_steps=3, resolution=8)
    return model(["p"], **{**args, **extra})


def test_the_capability_guard_drops_what_a_model_cannot_use():
    inner = Recorder()
    guard = CheckedModel(inner, Capabilities(negative_prompt=False, schedulers=("default", "ddim")))
    assert len(_call(guard, scheduler="euler").images) == 1
    assert inner.calls[-1]["negative_prompts"] is None and "scheduler" not in inner.calls[-1]
    _call(guard, scheduler="ddim")
    assert inner.calls[-1]["scheduler"] == "ddim" and "input_images" not in inner.calls[-1]
    with pytest.raises(ConfigError, match="does not take any"):
        _call(guard, input_images=[[None]])
    with pytest.raises(RuntimeError, match="returned 2 images for 1 prompts"):
        _call(CheckedModel(Recorder(count=2), Capabilities()))


def test_python_factory_errors_are_one_line():
    from mqeval.model.kinds.python_factory import KIND

    card = load_card("tiny-python")
    for factory, message in [("mqeval_examples.tiny_python_model", "must read"), ("no_such_pkg.mod:f", "cannot import"),
                             ("mqeval_examples.tiny_python_model:nothing", "has no callable")]:
        broken = dataclasses.replace(card, python=dataclasses.replace(card.python, factory=factory))
        with pytest.raises(ConfigError, match=message):
            KIND.load(broken, None, "cpu")
    wrong = dataclasses.replace(card, capabilities=Capabilities(max_resolution=64))
    with pytest.raises(ConfigError, match="differ from the card's"):
        KIND.load(wrong, None, "cpu")


def test_the_example_model_meets_the_protocol_and_is_batch_independent():
    import torch

    model = kind_of(load_card("tiny-python")).load(load_card("tiny-python"), None, "cpu")
    assert isinstance(model, TextToImage)
    gens = lambda *seeds: [torch.Generator().manual_seed(s) for s in seeds]  # noqa: E731
    args = dict(negative_prompts=None, guidance_scale=3.0, num_inference_steps=2, resolution=16)
    pair = model(["a red circle", "a blue square"], generators=gens(1, 2), **args)
    alone = model(["a blue square"], generators=gens(2), **args)
    assert pair[1].tobytes() == alone[0].tobytes() and pair[0].tobytes() != pair[1].tobytes()


@pytest.mark.parametrize("name", ["tiny-diffusers", "tiny-diffusers-sana"])
def test_diffusers_images_depend_only_on_their_own_generator(name):
    """Initial latents of image i come from generators[i] alone (exactly); whole images agree up to float rounding
    of batched products on CPU (the runner's fixed batches make them byte-identical across process counts)."""
    import torch
    from mqeval.model.kinds.diffusers_pipeline import initial_latents

    card = load_card(name)
    kind = kind_of(card)
    model = kind.load(card, kind.locate_weights(card), "cpu")
    gens = lambda *seeds: [torch.Generator().manual_seed(s) for s in seeds]  # noqa: E731
    pair, alone = initial_latents(model.pipe, gens(5, 6), 32), initial_latents(model.pipe, gens(6), 32)
    assert torch.equal(pair[1], alone[0]) and not torch.equal(pair[0], pair[1])
    args = dict(negative_prompts=["", "blurry"], guidance_scale=3.0, num_inference_steps=2, resolution=32)
    both = model(["a red circle", "two blue squares"], generators=gens(5, 6), **args)
    args["negative_prompts"] = ["blurry"]
    one = model(["two blue squares"], generators=gens(6), **args)
    assert both[1].size == (32, 32)
    assert np.abs(np.asarray(both[1], dtype=int) - np.asarray(one[0], dtype=int)).max() <= 1


@pytest.mark.parametrize("name", ["tiny-janus", "tiny-emu3"])
def test_transformers_images_depend_only_on_their_own_generator(name):
    """Janus and Emu3 sample with the global RNG; each image is drawn alone under an RNG forked from its generator."""
    import torch

    card = load_card(name)
    kind = kind_of(card)
    assert resolve_settings(card, GenerationSpec(), benchmark="shapes").resolution == 16
    model = kind.load(card, kind.locate_weights(card), "cpu")
    gens = lambda *seeds: [torch.Generator().manual_seed(s) for s in seeds]  # noqa: E731
    args = dict(negative_prompts=None, guidance_scale=5.0, num_inference_steps=1, resolution=16)
    pair = model(["a red circle", "a cat"], generators=gens(1, 2), **args)
    alone = model(["a cat"], generators=gens(2), **args)
    assert pair[1].size == (16, 16) and pair[1].tobytes() == alone[0].tobytes()
    assert pair[0].tobytes() != pair[1].tobytes()
    torch.manual_seed(0)
    model(["x"], generators=gens(3), **args)
    after = torch.randn(1)
    torch.manual_seed(0)
    assert torch.equal(after, torch.randn(1)), "the global RNG must be left as it was"


def test_a_run_plan_records_the_deviations_and_the_weights_revision(tmp_path):
    """A card file over tiny-diffusers with published settings for shapes: the plan's warnings carry the deviations,
    its fingerprint the kind's block (and the hub commit, None for a tiny:// folder)."""
    from mqeval.evaluation.plan import plan_run

    card = tmp_path / "my-baseline.yaml"
    card.write_text(
        "base: tiny-diffusers\ndescription: test\npublished:\n"
        "  - {benchmark: shapes, source: nobody says, guidance_scale: 2.0, num_inference_steps: 3}\n"
    )
    from mqeval.paths import MODEL_ZOO_DIR

    (tmp_path / "tiny-diffusers.yaml").write_text((MODEL_ZOO_DIR / "tiny-diffusers.yaml").read_text())
    plan = plan_run("shapes", str(card), limit=1, overrides=SettingOverrides(num_inference_steps=5))
    assert (plan.settings.guidance_scale, plan.settings.num_inference_steps) == (2.0, 5)
    warnings = plan.warnings()
    assert any(w.startswith("num_inference_steps 5 differs from the published setting 3") for w in warnings)
    assert any("are not stated (nobody says)" in w for w in warnings)
    model = plan.fingerprint()["model"]
    assert model["kind"] == "diffusers" and model["config"]["model_id"] == "tiny://sd15_pipeline"
    assert model["revision"] is None and plan.checkpoint.name == "sd15_pipeline"


def test_a_local_weights_folder_is_used_as_it_is_never_downloaded(tmp_path):
    """An absolute folder as model_id resolves to itself, which is not a hub id to fetch."""
    card = load_card("sdxl")
    local = dataclasses.replace(card, diffusers=dataclasses.replace(card.diffusers, model_id=str(tmp_path)))
    assert kind_of(local).locate_weights(local) == tmp_path
