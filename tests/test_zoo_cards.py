"""The paper's model cards: they load, ablations differ from their base only where the table says, every paper row
of Tables 1-3 and 7 (and the MetaQuery rows of 4-6) is reproduced by exactly one card (per decoder in Table 4)."""
from __future__ import annotations

from collections import defaultdict

import pytest

from mqeval.dataclass_io import load_yaml, to_dict
from mqeval.reports.published import row_labels
from mqeval.zoo import card_names, card_paths, load_card

PAPER_CARDS = [n for n in card_names()
               if n.startswith("metaquery-") and not n.startswith(("metaquery-tiny", "metaquery-smol"))]

# card -> (base, {dotted model path: value}) : what the paper's table says differs.
ABLATIONS = {
    "metaquery-b-q64": ("metaquery-b", {"condition.num_queries": 64}),
    "metaquery-b-q512": ("metaquery-b-q64", {"condition.num_queries": 512}),
    "metaquery-b-last-layer": ("metaquery-b-q64", {"condition.mode": "last-layer"}),
    "metaquery-b-q64-mllm-tuning": ("metaquery-b-q64", {"backbone.tuning": "full"}),
    "metaquery-b-q64-e2e": ("metaquery-b-q64", {"backbone.tuning": "full", "decoder.train": True}),
    "metaquery-b-q64-train-dit": ("metaquery-b-q64", {"decoder.train": True}),
    "metaquery-b-q64-proj-enc-6": ("metaquery-b-q64", {"connector.architecture": "proj-enc",
                                                       "connector.num_layers": 6}),
    "metaquery-b-q64-proj-enc-24": ("metaquery-b-q64", {"connector.architecture": "proj-enc"}),
    "metaquery-b-q64-enc-proj-6": ("metaquery-b-q64", {"connector.num_layers": 6}),
    "metaquery-l-last-layer": ("metaquery-l", {"condition.mode": "last-layer"}),
    "metaquery-l": ("metaquery-b", {"backbone.family": "qwen2_5_vl",
                                    "backbone.model_id": "Qwen/Qwen2.5-VL-3B-Instruct"}),
    "metaquery-xl": ("metaquery-b", {"backbone.family": "qwen2_5_vl",
                                     "backbone.model_id": "Qwen/Qwen2.5-VL-7B-Instruct"}),
}
SD15 = {"decoder.family": "sd15", "decoder.model_id": "stable-diffusion-v1-5/stable-diffusion-v1-5",
        "decoder.prediction_type": "epsilon"}
for size in ("b", "l", "xl"):
    ABLATIONS[f"metaquery-{size}-sd15"] = (f"metaquery-{size}", SD15)


def _flatten(data: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in data.items():
        path = f"{prefix}{key}"
        out.update(_flatten(value, path + ".") if isinstance(value, dict) else {path: value})
    return out


def test_all_paper_cards_present():
    assert set(ABLATIONS) | {"metaquery-b"} == set(PAPER_CARDS)


@pytest.mark.parametrize("name", PAPER_CARDS)
def test_card_loads_with_its_own_checkpoint_and_train_config(name):
    card = load_card(name)
    assert card.name == name and card.description
    assert card.checkpoint.path == f"checkpoints/{name}" and not card.checkpoint.random_init
    assert card.train_config == f"model_zoo/{name}.train.yaml"
    assert card.train_config in card.checkpoint.source
    # Every card names its own paper rows (inheriting the base's would double-count them).
    assert "paper" in load_yaml(card_paths()[name]) and card.paper
    assert card.generation.guidance_scale == 7.5 and card.generation.num_inference_steps == 30
    assert card.generation.scheduler == "dpm-solver"
    assert card.model.connector.architecture in ("enc-proj", "proj-enc")


def test_main_models_match_the_paper_description():
    for name, family, model_id in [
        ("metaquery-b", "llava_onevision", "llava-hf/llava-onevision-qwen2-0.5b-ov-hf"),
        ("metaquery-l", "qwen2_5_vl", "Qwen/Qwen2.5-VL-3B-Instruct"),
        ("metaquery-xl", "qwen2_5_vl", "Qwen/Qwen2.5-VL-7B-Instruct"),
    ]:
        model = load_card(name).model
        assert (model.backbone.family, model.backbone.model_id, model.backbone.tuning) == (family, model_id, "frozen")
        assert (model.condition.mode, model.condition.num_queries) == ("metaquery", 256)
        assert (model.connector.architecture, model.connector.num_layers) == ("enc-proj", 24)
        assert (model.decoder.family == "sana"
                and model.decoder.model_id == "Efficient-Large-Model/Sana_1600M_512px_diffusers")
        assert model.decoder.prediction_type == "flow" and not model.decoder.train


@pytest.mark.parametrize("name", sorted(ABLATIONS))
def test_card_differs_from_its_base_only_where_the_table_says(name):
    base, expected = ABLATIONS[name]
    assert load_yaml(card_paths()[name]).get("base") == base
    mine, theirs = _flatten(to_dict(load_card(name).model)), _flatten(to_dict(load_card(base).model))
    diff = {k: v for k, v in mine.items() if theirs.get(k) != v}
    assert diff == expected


def test_every_paper_row_is_covered_by_exactly_one_card():
    labels = row_labels()
    covered = defaultdict(list)  # (table, row, decoder family) -> cards
    for name in PAPER_CARDS:
        card = load_card(name)
        for row in card.paper:
            assert row.row in labels[row.table], f"{name}: no row '{row.row}' in table {row.table}"
            covered[(row.table, row.row, card.model.decoder.family)].append(name)
    required = [(t, r, "sana") for t in (1, 2, 3, 7) for r in labels[t]]
    required += [(t, r, "sana") for t in (4, 5, 6) for r in labels[t] if r.startswith("MetaQuery-")]
    required += [(4, r, "sd15") for r in labels[4] if r.startswith("MetaQuery-")]
    for key in required:
        assert len(covered.get(key, [])) == 1, f"{key} covered by {covered.get(key)}"
    assert set(covered) == set(required)
    assert all(len(cards) == 1 for cards in covered.values())


def test_ablation_base_rows_are_one_experiment():
    """Tables 1-3 print identical numbers for 64 queries / frozen MLLM / 24-layer Enc-Proj: one card reproduces all."""
    rows = {(p.table, p.row) for p in load_card("metaquery-b-q64").paper}
    assert rows == {(1, "learnable_queries_64"), (2, "frozen_mllm"), (3, "enc_proj_24")}


@pytest.mark.parametrize(
    "name, trains",
    [
        ("metaquery-b-q64-e2e", {"backbone", "connector", "decoder", "query_tokens"}),
        ("metaquery-b-q64-mllm-tuning", {"backbone", "connector", "query_tokens"}),
        ("metaquery-b-q64-train-dit", {"connector", "decoder", "query_tokens"}),
        ("metaquery-b-last-layer", {"connector"}),
        ("metaquery-l-sd15", {"connector", "query_tokens"}),
    ],
)
def test_card_semantics_survive_the_model_code_at_tiny_scale(name, trains):
    """The card's architecture with tiny:// weights of the same families: what trains is what the table says."""
    import torch

    from mqeval.dataclass_io import deep_merge, from_dict
    from mqeval.model.metaquery_config import MetaQueryConfig
    from mqeval.model.metaquery import MetaQuery

    raw = to_dict(load_card(name).model)
    shrink = {
        "backbone": {"model_id": f"tiny://{raw['backbone']['family']}", "dtype": "float32"},
        "decoder": {"model_id": f"tiny://{raw['decoder']['family']}", "dtype": "float32", "resolution": 64},
        "connector": {"num_layers": 1, "num_heads": 2},
        "condition": {"num_queries": 4, "max_prompt_tokens": 32},
    }
    model = MetaQuery(from_dict(MetaQueryConfig, deep_merge(raw, shrink)), seed=0)
    assert {n.split(".")[0] for n, _ in model.named_trainable_parameters()} == trains
    out = model.loss(["a red circle"], torch.zeros(1, 3, 64, 64), generator=torch.Generator().manual_seed(0))
    out.loss.backward()
    assert torch.isfinite(out.loss)
