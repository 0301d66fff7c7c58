"""The adapters around the authors' own code (mqeval/model/official: Janus, JanusFlow, Show-o), driven through the
stand-ins of tests/official_standins.py (the real packages cannot be installed here): the prompt as the authors'
scripts format it, the classifier-free guidance layout, per-image seeding, output size, the cards' fit with the
adapters, and the one-line error when the authors' code is missing."""
from __future__ import annotations

import sys

import pytest
import torch

import official_standins as standins
from mqeval.errors import UserError
from mqeval.model.kinds import kind_of
from mqeval.zoo import load_card

FACTORY_KWARGS = {
    "janus": dict(dtype="float32", image_size=32, patch_size=16),
    "janusflow": dict(dtype="float32", image_size=32),
    "showo": dict(num_vq_tokens=4, max_seq_length=16, codebook_size=standins.VOCAB),
}
WEIGHTS = {"janus": ("model",), "janusflow": ("model", "vae"), "showo": ("model", "vq", "tokenizer")}
STEPS = {"janus": 1, "janusflow": 3, "showo": 4}


@pytest.fixture
def installed(monkeypatch):
    import diffusers

    # diffusers first: importing its AutoencoderKL the first time resets transformers' AutoTokenizer
    monkeypatch.setattr(diffusers, "AutoencoderKL",
                        type("AutoencoderKL", (), {"from_pretrained": staticmethod(lambda path: standins.SDXLVae())}))
    standins.install(monkeypatch)
    return monkeypatch


def build(name, tmp_path, **extra):
    import importlib

    weights = {role: tmp_path / role for role in WEIGHTS[name]}
    module = importlib.import_module(f"mqeval.model.official.{name}")
    return module.build(weights=weights, device="cpu", **{**FACTORY_KWARGS[name], **extra})


def gens(*seeds):
    return [torch.Generator().manual_seed(seed) for seed in seeds]


def call(model, name, prompts, seeds, guidance_scale=1.0):
    return model(prompts, negative_prompts=None, generators=gens(*seeds), guidance_scale=guidance_scale,
                 num_inference_steps=STEPS[name], resolution=32)


@pytest.mark.parametrize("name", ["janus", "janusflow", "showo"])
def test_each_image_depends_only_on_its_prompt_and_generator(installed, tmp_path, name):
    model = build(name, tmp_path)
    prompts = ["a red cube", "two dogs", "a cat"]  # "two dogs" and "a cat" have different token counts
    batch = call(model, name, prompts, (11, 12, 13))
    alone = [call(model, name, [prompt], (seed,))[0] for prompt, seed in zip(prompts, (11, 12, 13))]
    assert [image.tobytes() for image in batch] == [image.tobytes() for image in alone]
    assert all(image.size == (32, 32) and image.mode == "RGB" for image in batch)
    again = call(model, name, ["a red cube", "a red cube"], (11, 99))
    assert again[0].tobytes() == batch[0].tobytes() and again[1].tobytes() != batch[0].tobytes()


def test_janus_prompt_rows_and_guidance_follow_generation_inference_py(installed, tmp_path):
    model = build("janus", tmp_path)
    call(model, "janus", ["  a red cube "], (1,))
    conversation, sft_format, system_prompt = model.processor.templated[-1]
    assert conversation == [{"role": "User", "content": "  a red cube "}, {"role": "Assistant", "content": ""}]
    assert (sft_format, system_prompt) == ("deepseek", "")
    assert model.processor.tokenizer.encoded[-1] == "User: a red cube\n\nAssistant:<begin_of_image>"
    # Rows alternate conditional / unconditional; the unconditional one keeps only its first and last token.
    ids = torch.tensor(standins.Tokenizer().encode("User: a red cube\n\nAssistant:<begin_of_image>"))
    blank = ids.clone()
    blank[1:-1] = standins.PAD
    two = ["a red cube", "a big cube"]  # same token count: one group of four rows
    call(model, "janus", two, (1, 2))
    rows = model.model.language_model.embedding.seen[-1]
    assert rows.shape[0] == 4 and torch.equal(rows[1], blank) and torch.equal(rows[0], ids)
    assert torch.equal(rows[3][1:-1], blank[1:-1]) and not torch.equal(rows[2], rows[0])
    # uncond + w * (cond - uncond): at a near-zero temperature, w = 5 takes the conditional row's favourite token,
    # w = 0 the unconditional row's; with the rows swapped, or w ignored, one of the two would differ.
    cold = build("janus", tmp_path, temperature=0.01)
    for guidance, token in ((5.0, standins.VOCAB - 1), (0.0, 0)):
        call(cold, "janus", ["a red cube"], (3,), guidance_scale=guidance)
        codes, shape = cold.model.gen_vision_model.decoded[-1]
        assert shape == [1, 8, 2, 2] and codes.tolist() == [[token] * 4]


def test_janusflow_rows_mask_and_velocity_follow_the_readme_example(installed, tmp_path):
    model = build("janusflow", tmp_path)
    guidance, steps = 2.0, STEPS["janusflow"]
    call(model, "janusflow", ["a red cube", "a big cube"], (5, 6), guidance_scale=guidance)
    text = model.processor.tokenizer.encoded[-1]
    assert text == "User: a big cube\n\nAssistant:" + standins.IMAGE_GEN
    ids = torch.tensor(standins.Tokenizer().encode(text))
    rows = model.model.language_model.embedding.seen[-1]
    # First half conditional, second half the prompt with everything after its first token padded.
    assert rows.shape[0] == 4 and torch.equal(rows[1], ids) and torch.equal(rows[3][1:], torch.zeros(len(ids) - 1))
    prompt = len(ids) - 1  # the generation tag's place is taken by the time embedding
    mask = model.model.language_model.masks[-1]
    assert mask.shape == (4, prompt + 1 + 4) and mask[:2].all() and not mask[2:, 1:prompt].any()
    assert mask[2:, 0].all() and mask[2:, prompt:].all()
    assert len(model.model.language_model.masks) >= steps
    # z_final = z0 + sum of dt * (w * v_cond - (w - 1) * v_uncond); the stand-ins' velocity is (prompt mean - 0.5).
    z0 = torch.randn((4, 4, 4), generator=gens(6)[0])
    expected = guidance * 1.0 - (guidance - 1) * (1 / prompt) - 0.5
    latents = model.vae.decoded[-1][1] * model.vae.config.scaling_factor
    assert torch.allclose(latents - z0, torch.full_like(z0, expected), atol=1e-5)


def test_showo_prompting_and_guidance_follow_inference_t2i_py(installed, tmp_path):
    model = build("showo", tmp_path)
    assert standins.PhiTokenizer.loaded == [{"path": str(tmp_path / "tokenizer"), "padding_side": "left"}]
    assert model.prompting.special_tokens[:2] == ("<|soi|>", "<|eoi|>") and model.prompting.max_text_len == 17
    call(model, "showo", ["a red cube"], (4,), guidance_scale=5.0)
    assert model.prompting.calls[-2:] == [(["a red cube"], "t2i_gen"), ([""], "t2i_gen")]
    generated = model.model.generated[-1]
    masked = generated["input_ids"][0, 18:-1]
    assert masked.tolist() == [standins.MASK_TOKEN] * 4  # the image tokens start fully masked
    mask_call = standins.create_attention_mask_predict_next.calls[-1]
    assert torch.equal(mask_call["sequence"], torch.cat([generated["input_ids"], generated["uncond_input_ids"]]))
    assert (mask_call["pad_id"], mask_call["soi_id"], mask_call["eoi_id"], mask_call["rm_pad_in_image"]) == (5, 6, 7,
                                                                                                           True)
    assert (generated["guidance_scale"], generated["temperature"], generated["timesteps"]) == (5.0, 1.0, 4)
    assert (generated["noise_type"], generated["seq_len"], generated["noise_schedule"].method) == ("mask", 4,
                                                                                                  "cosine")
    assert generated["config"].dataset.preprocessing.max_seq_length == 16
    # Guidance 0: no unconditional sequence, the mask over the conditional rows only (as the script does).
    call(model, "showo", ["a red cube"], (4,), guidance_scale=0.0)
    assert model.model.generated[-1]["uncond_input_ids"] is None
    assert standins.create_attention_mask_predict_next.calls[-1]["sequence"].shape[0] == 1


@pytest.mark.parametrize("card, name", [("janus-1.3b", "janus"), ("janusflow-1.3b", "janusflow"),
                                        ("show-o-512", "showo")])
def test_the_cards_load_their_adapter_with_matching_capabilities(installed, tmp_path, card, name):
    """The python kind passes the weight folders by role; the adapter's capabilities equal the card's (else the kind
    refuses it), at the authors' resolution."""
    card = load_card(card)
    kind = kind_of(card)
    folders = {role: tmp_path / role for role in card.python.weights}
    assert tuple(folders) == WEIGHTS[name]
    installed.setattr(type(kind), "weight_folders", lambda self, c: folders)
    model = kind.load(card, folders[WEIGHTS[name][0]], "cpu")
    resolution = card.generation.resolution
    assert model.capabilities.max_resolution == resolution == model.capabilities.min_resolution
    loaded = {"janus": standins.JanusModel, "janusflow": standins.JanusFlowModel, "showo": standins.Showo}[name]
    assert loaded.loaded_from == [str(tmp_path / "model")]


@pytest.mark.parametrize("name, module, words", [
    ("janus", "janus.models", 'pip install "git+https://github.com/deepseek-ai/Janus@1daa72fa409002d40931bd7b36a92'),
    ("janusflow", "janus.janusflow.models", '"transformers==4.46.3" "tokenizers==0.20.3"'),
    ("showo", "models", "git clone https://github.com/showlab/Show-o && git -C Show-o checkout 45a5a2de01d1ebd10"),
])
def test_missing_official_code_is_one_line_naming_what_to_install(monkeypatch, tmp_path, name, module, words):
    monkeypatch.setitem(sys.modules, module, None)  # import fails as when the package is not installed
    with pytest.raises(UserError) as caught:
        build(name, tmp_path)
    message = str(caught.value)
    assert "\n" not in message and words in message and f"`{module}` is not importable" in message


def test_official_code_that_fails_while_importing_is_one_line_too(monkeypatch, tmp_path):
    """As DeepSeek's code does under transformers 5 (its config classes have mutable defaults)."""
    import importlib

    import mqeval.model.official as official

    def failing(name):
        raise ValueError("mutable default <class 'dict'> for field params is not allowed: use default_factory")

    monkeypatch.setattr(official, "importlib", type("I", (), {"import_module": staticmethod(failing)}))
    with pytest.raises(UserError) as caught:
        importlib.import_module("mqeval.model.official.janus").check()
    message = str(caught.value)
    assert "\n" not in message and "`janus.models` fails to import with transformers " in message
    assert "(ValueError: mutable default" in message and "does not import with transformers 5" in message


def test_offline_without_weights_a_card_whose_code_is_here_names_the_weights(installed, tmp_path, monkeypatch):
    from helpers_cli_inprocess import run_cli

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    result = run_cli("run", "shapes", "--model", "janusflow-1.3b", "--limit", "1", "--out", tmp_path / "run")
    assert result.code == 2 and result.stderr.count("Error: ") == 1
    for part in ("python weights 'model' of model 'janusflow-1.3b'", "deepseek-ai/JanusFlow-1.3B",
                 "revision main, unpinned", "about 4.1 GB", "HF_HUB_OFFLINE"):
        assert part in result.last_line


def test_a_models_module_of_another_project_is_not_taken_for_show_o(monkeypatch, tmp_path):
    import types

    monkeypatch.setitem(sys.modules, "models", types.ModuleType("models"))
    with pytest.raises(UserError, match="has no Showo, MAGVITv2, get_mask_chedule"):
        build("showo", tmp_path)


def _snapshot_card(tmp_path, commit="ab" * 20):
    """janus-1.3b for the stand-ins (32 px, no published settings) with its weights in a hub-cache-shaped folder."""
    import yaml

    from mqeval.paths import MODEL_ZOO_DIR

    folder = tmp_path / "hub" / "models--deepseek-ai--Janus-1.3B" / "snapshots" / commit
    folder.mkdir(parents=True)
    raw = yaml.safe_load((MODEL_ZOO_DIR / "janus-1.3b.yaml").read_text())
    raw["python"]["kwargs"].update(FACTORY_KWARGS["janus"])
    raw["python"]["weights"]["model"]["model_id"] = str(folder)
    raw["capabilities"].update(min_resolution=32, max_resolution=32)
    raw["generation"]["resolution"] = 32
    del raw["published"], raw["paper"]
    card = tmp_path / "janus-standin.yaml"
    card.write_text(yaml.safe_dump(raw, allow_unicode=True))
    return card, folder


def test_python_weights_are_located_recorded_and_passed_by_role(installed, tmp_path):
    from mqeval.zoo import resolve_card

    path, folder = _snapshot_card(tmp_path)
    card = resolve_card(str(path))
    kind = kind_of(card)
    assert kind.locate_weights(card) == folder
    assert kind.fingerprint(card, folder)["revisions"] == {"model": "ab" * 20}
    kind.load(card, folder, "cpu")
    assert standins.JanusModel.loaded_from == [str(folder)] == standins.VLChatProcessor.loaded_from
    clash = {**card.python.kwargs, "weights": {}}
    import dataclasses

    with pytest.raises(UserError, match="cannot hold `weights`"):
        kind.load(dataclasses.replace(card, python=dataclasses.replace(card.python, kwargs=clash)), folder, "cpu")
    plain = load_card("tiny-python")  # a card without weights keeps the fingerprint it had before they existed
    assert "weights" not in kind_of(plain).fingerprint(plain, None)["config"]


def test_a_run_through_the_cli_records_the_weights_and_is_batch_independent(installed, tmp_path):
    """The whole runner in this process (the stand-ins live in sys.modules): scored, recorded with the snapshot it
    loaded, and the images of --batch-size 2 equal those of --batch-size 1."""
    import json

    from helpers_cli_inprocess import run_cli
    from helpers_runner import png_bytes
    from mqeval.results.run import read_run

    card, folder = _snapshot_card(tmp_path)
    common = ("shapes", "--model", card, "--limit", "2", "--no-progress")
    result = run_cli("run", *common, "--batch-size", "2", "--out", tmp_path / "two")
    assert result.code == 0, result.stderr
    record = read_run(tmp_path / "two").record
    assert record.model.checkpoint == str(folder) and record.model.config["kind"] == "python"
    manifest = json.loads((tmp_path / "two" / "generation.json").read_text())
    assert "ab" * 20 in json.dumps(manifest)
    assert run_cli("generate", *common, "--batch-size", "1", "--out", tmp_path / "one").code == 0
    images = png_bytes(tmp_path / "one" / "images")
    assert len(images) == 8 and images == png_bytes(tmp_path / "two" / "images")
