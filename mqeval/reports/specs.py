"""Declarative specs of the paper's Tables 1-7: which published rows, which benchmark metric per column.

A row is a labelled line of results/paper/tableN_*.csv; the model cards name these labels in their `paper` field,
so a row's measured numbers come from runs of the card(s) that list it. A column names the benchmark and metric that
reproduce it; the small-scale twins of the ablation tables (1, 2, 3, 7) map each row to a card trained on `shapes`.
Pure data: no pandas here.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from mqeval.errors import UnknownNameError


@dataclass(frozen=True)
class ColumnSpec:
    key: str  # the CSV column holding the published number
    title: str
    # Benchmark spec that measures it. Runs of its variants (benchmarks/<x>.yaml with `variant_of: <benchmark>`,
    # e.g. geneval-rewritten) feed the column too, in their own sub-column, unless another column names them.
    benchmark: str
    metric: str  # metric key in that benchmark's results.json
    higher_is_better: bool
    # Only runs whose card uses this decoder family feed the column (Table 4's COCO FID is measured with SD1.5).
    decoder: Optional[str] = None
    # Prompt set the published number used: a fixed name, or "flag:<csv column>" -> "rewritten" where that row's
    # flag is true and "original" otherwise. None: the original prompts.
    prompt_set: Optional[str] = None
    scale: float = 1.0  # measured value x scale is on the published scale (e.g. 0-1 fraction -> percent)
    decimals: int = 2


@dataclass(frozen=True)
class RowSpec:
    """A published row picked out of the CSV by column values (for tables whose method names repeat)."""

    label: str
    match: tuple[tuple[str, str], ...]  # (csv column, value as written in the CSV)
    title: str = ""


@dataclass(frozen=True)
class TableSpec:
    number: int
    csv: str  # file name in results/paper/
    title: str
    columns: tuple[ColumnSpec, ...]
    # Explicit rows (label + CSV match); empty: every CSV row, labelled by `label_column`.
    rows: tuple[RowSpec, ...] = ()
    label_column: str = "method"
    # Descriptive CSV columns shown next to the label (e.g. number of tokens).
    info_columns: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    # Small-scale twin: published row label -> card trained on `shapes` in the same relative setting.
    small_scale: tuple[tuple[str, str], ...] = ()
    small_scale_columns: tuple[ColumnSpec, ...] = ()
    small_scale_reference: Optional[str] = None  # reference row of the twin table (default: reference_row)
    small_scale_notes: tuple[str, ...] = ()
    # Row every other measured row is compared with, pair by pair (ablation tables: the base setting).
    reference_row: Optional[str] = None


def _geneval(prompt_set: Optional[str] = None) -> ColumnSpec:
    return ColumnSpec("geneval", "GenEval", "geneval", "overall", True, prompt_set=prompt_set)


MJHQ = ColumnSpec("mjhq30k_fid", "MJHQ-30K FID", "mjhq-30k-fid", "fid", False)
DPG = ColumnSpec("dpg_bench", "DPG-Bench", "dpg-bench", "dpg_score", True)

# What the small-scale twins are measured on: the `shapes` benchmark (GenEval's rules on a synthetic world).
SHAPES_COLUMNS = (
    ColumnSpec("shapes_overall", "shapes overall", "shapes", "overall", True),
    ColumnSpec("shapes_counting", "shapes counting", "shapes", "counting", True),
    ColumnSpec("shapes_position", "shapes position", "shapes", "position", True),
    ColumnSpec("shapes_color_attr", "shapes color attr", "shapes", "color_attr", True),
)

ABLATION_NOTE = (
    "Tables 1-3 share one ablation setting: LLaVA-OneVision 0.5B + Sana-1.6B, 64 queries, frozen MLLM, 24-layer "
    "Enc-Proj (rows with identical numbers are the same experiment, card metaquery-b-q64); GenEval and DPG-Bench "
    "without prompt rewriting."
)
SHAPES_KNOWLEDGE_COLUMNS = (
    ColumnSpec("shapes_overall", "shapes overall", "shapes", "overall", True),
    ColumnSpec("knowledge_colors", "knowledge colours", "shapes-knowledge", "knowledge_colors", True),
    ColumnSpec("control_colors", "direct colours", "shapes-knowledge", "control_colors", True),
)

SMALL_SCALE_NOTE = (
    "Small-scale twin: metaquery-smol models (frozen SmolLM2-135M, 32 px pixel decoder trained from scratch) trained "
    "on the synthetic `shapes` world and scored on it. NOT the paper's setting: compare rows with each other, never "
    "with the published numbers. A row's twin is the card named here or a card tagged small-scale-of:<table>/<row>."
)

TABLES: tuple[TableSpec, ...] = (
    TableSpec(
        1,
        "table1_conditions.csv",
        "Condition type and number of tokens",
        (MJHQ, _geneval(), DPG),
        rows=(
            RowSpec("llm_last_layer_embedding", (("method", "llm_last_layer_embedding"),), "LLM last layer embedding*"),
            RowSpec(
                "learnable_queries_64", (("method", "learnable_queries"), ("num_tokens", "64")), "Learnable queries"
            ),
            RowSpec(
                "learnable_queries_512", (("method", "learnable_queries"), ("num_tokens", "512")), "Learnable queries"
            ),
        ),
        info_columns=("num_tokens",),
        reference_row="learnable_queries_64",
        notes=(ABLATION_NOTE, "* embeddings of the prompt's input tokens."),
        small_scale=(
            ("llm_last_layer_embedding", "metaquery-smol-last-layer"),
            ("learnable_queries_64", "metaquery-smol"),
            ("learnable_queries_512", "metaquery-smol-more-queries"),
        ),
        small_scale_columns=SHAPES_COLUMNS,
    ),
    TableSpec(
        2,
        "table2_adaptation.csv",
        "Strategies for adapting the MLLM",
        (MJHQ, _geneval(), DPG),
        rows=(
            RowSpec("mllm_tuning", (("method", "mllm_tuning"),), "MLLM tuning"),
            RowSpec("e2e_tuning", (("method", "e2e_tuning"),), "E2E tuning"),
            RowSpec("frozen_mllm", (("method", "frozen_mllm"), ("train_dit", "false")), "Frozen MLLM"),
            RowSpec("frozen_mllm_train_dit", (("method", "frozen_mllm"), ("train_dit", "true")), "Frozen MLLM"),
        ),
        info_columns=("train_llm", "train_dit"),
        reference_row="frozen_mllm",
        notes=(ABLATION_NOTE,),
        small_scale=(
            ("e2e_tuning", "metaquery-smol-e2e"),
            ("frozen_mllm_train_dit", "metaquery-smol"),
        ),
        small_scale_columns=SHAPES_COLUMNS,
        small_scale_reference="frozen_mllm_train_dit",
        small_scale_notes=(
            "The rows with a frozen DiT have no small-scale twin: the small pixel decoder starts from random weights, "
            "so it is always trained (metaquery-smol is 'frozen MLLM + train DiT').",
        ),
    ),
    TableSpec(
        3,
        "table3_connector.csv",
        "Connector design",
        (MJHQ, _geneval(), DPG),
        rows=(
            RowSpec("proj_enc_6", (("architecture", "proj_enc"), ("num_layers", "6")), "Proj-Enc"),
            RowSpec("proj_enc_24", (("architecture", "proj_enc"), ("num_layers", "24")), "Proj-Enc"),
            RowSpec("enc_proj_6", (("architecture", "enc_proj"), ("num_layers", "6")), "Enc-Proj"),
            RowSpec("enc_proj_24", (("architecture", "enc_proj"), ("num_layers", "24")), "Enc-Proj"),
        ),
        info_columns=("num_layers", "dims", "num_params", "rel_wall_time"),
        reference_row="enc_proj_24",
        notes=(ABLATION_NOTE,),
        small_scale=(
            ("proj_enc_6", "metaquery-smol"),
            ("proj_enc_24", "metaquery-smol-proj-enc-deep"),
            ("enc_proj_6", "metaquery-smol-enc-proj"),
            ("enc_proj_24", "metaquery-smol-enc-proj-deep"),
        ),
        small_scale_columns=SHAPES_COLUMNS,
        small_scale_reference="proj_enc_6",
        small_scale_notes=("Small-scale depths are 2 (shallow) and more (deep) layers, not 6 and 24.",),
    ),
    TableSpec(
        4,
        "table4_main.csv",
        "Multimodal understanding and generation",
        (
            ColumnSpec("mme_p", "MME-P", "mme", "perception", True, decimals=1),
            ColumnSpec("mmb", "MMB", "mmbench", "accuracy", True, decimals=1),
            ColumnSpec("seed", "SEED", "seed-bench", "accuracy", True, decimals=1),
            ColumnSpec("mmmu", "MMMU", "mmmu", "accuracy", True, decimals=1),
            ColumnSpec("mm_vet", "MM-Vet", "mm-vet", "score", True, decimals=1),
            ColumnSpec("coco_fid", "COCO FID", "coco-30k-fid", "fid", False, decoder="sd15"),
            ColumnSpec("mjhq_fid", "MJHQ FID", "mjhq-30k-fid", "fid", False, decoder="sana"),
            ColumnSpec(
                "geneval", "GenEval", "geneval", "overall", True, decoder="sana", prompt_set="flag:geneval_rewritten"
            ),
            ColumnSpec("dpg_bench", "DPG-Bench", "dpg-bench", "dpg_score", True, decoder="sana"),
        ),
        info_columns=("base_llm",),
        notes=(
            "COCO FID uses the SD v1.5 decoder cards (metaquery-*-sd15); every other column the Sana cards.",
            "GenEval marked rewritten used rewritten prompts (MetaQuery's own rewrites were never published).",
            "MJHQ FID of Janus-Pro rows was re-measured by the MetaQuery authors.",
            "With a frozen MLLM, understanding scores are the base MLLM's by construction. mqeval has no understanding "
            "plug-in yet: those columns read runs stored under benchmarks mme / mmbench / seed-bench / mmmu / mm-vet "
            "(lmms-eval tasks mme, mmbench_en_dev, seedbench, mmmu_val, mmvet).",
        ),
    ),
    TableSpec(
        5,
        "table5_wise.csv",
        "World knowledge reasoning on WISE (WiScore)",
        tuple(
            ColumnSpec(key, key.capitalize(), "wise", metric, True)
            for key, metric in [("cultural", "culture"), ("time", "time"), ("space", "space"), ("biology", "biology"),
                                ("physics", "physics"), ("chemistry", "chemistry"), ("overall", "overall")]
        ),
        info_columns=("group",),
        notes=(
            "WISE legacy protocol (GPT-4o judge, 0.7/0.2/0.1 WiScore); judge versions drift: see the scorer field.",
        ),
    ),
    TableSpec(
        6,
        "table6_commonsenset2i.csv",
        "Visual commonsense reasoning on CommonsenseT2I",
        (
            ColumnSpec("without_negative_prompt", "w/o neg. prompt", "commonsense-t2i", "score", True),
            ColumnSpec("with_negative_prompt", "w/ neg. prompt", "commonsense-t2i-negative", "score", True),
        ),
    ),
    TableSpec(
        7,
        "table7_metaquery_vs_last_layer.csv",
        "MetaQuery vs LLM last-layer embeddings (Large model)",
        (
            MJHQ,
            _geneval(prompt_set="rewritten"),
            DPG,
            ColumnSpec("wiscore", "WiScore", "wise", "overall", True),
            ColumnSpec("commonsenset2i", "CommonsenseT2I", "commonsense-t2i-negative", "score", True),
        ),
        rows=(
            RowSpec(
                "ours_l_last_layer_embedding",
                (("method", "ours_l_last_layer_embedding"),),
                "Ours-L w/ last layer embed*",
            ),
            RowSpec("ours_l_metaquery", (("method", "ours_l_metaquery"),), "Ours-L w/ MetaQuery"),
        ),
        reference_row="ours_l_metaquery",
        notes=(
            "GenEval taken as rewritten-prompt and CommonsenseT2I as with-negative-prompt: the MetaQuery row equals "
            "MetaQuery-L's Table 4 (rewritten GenEval) and Table 6 (w/ neg. prompt) figures.",
        ),
        small_scale=(
            ("ours_l_last_layer_embedding", "metaquery-smol-last-layer"),
            ("ours_l_metaquery", "metaquery-smol"),
        ),
        small_scale_columns=SHAPES_KNOWLEDGE_COLUMNS,
        small_scale_notes=(
            "knowledge colours: prompts whose colour needs world knowledge SmolLM2 holds ('a circle the colour of the "
            "sky'), the small-scale analogue of WiScore; direct colours: the same colours named outright.",
        ),
    ),
)


def table_spec(number: int) -> TableSpec:
    for spec in TABLES:
        if spec.number == number:
            return spec
    raise UnknownNameError("paper table", str(number), [str(s.number) for s in TABLES])
