"""Checkpoints of the authors' trainer (facebookresearch/metaquery @ 206f6de): read, mapped onto mqeval, and back.

The official `train.py` saves `models/metaquery.py:MetaQuery` (a transformers PreTrainedModel) as `checkpoint-N/`
folders: config.json (model_type "metaquery": the base model ids and the few architecture numbers) and the whole
model's weights in safetensors (one file, or shards with model.safetensors.index.json): the MLLM under
`model.mllm_backbone.` (its embedding grown by <begin_of_img>, <end_of_img> and one row per query), the connector
under `model.connector.` (an nn.Sequential: encoder, Linear, GELU, Linear, RMSNorm), the denoiser under
`model.transformer.` and the VAE under `vae.`. mqeval keeps the queries and markers as their own parameters and the
MLLM's embedding at its base size; everything else maps name for name.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mqeval.errors import ConfigError, UserError
from mqeval.model.metaquery_config import (
    BackboneConfig, ConditionConfig, ConnectorConfig, DecoderConfig, MetaQueryConfig,
)

if TYPE_CHECKING:
    import torch

MODEL_TYPE = "metaquery"
INDEX_NAME = "model.safetensors.index.json"
WEIGHTS_NAME = "model.safetensors"
_CHECKPOINT_DIR = re.compile(r"^checkpoint-(\d+)$")

# Official (transformers 4.49 module names) -> mqeval (transformers 5) prefixes of the MLLM, by backbone family.
_BACKBONE_PREFIXES = {
    "qwen2_5_vl": (("model.mllm_backbone.model.", "backbone.model.model.language_model."),
                   ("model.mllm_backbone.visual.", "backbone.model.model.visual.")),
    "llava_onevision": (("model.mllm_backbone.language_model.model.", "backbone.model.model.language_model."),
                        # transformers 5 drops SigLIP's inner vision_model level
                        ("model.mllm_backbone.vision_tower.vision_model.", "backbone.model.model.vision_tower."),
                        ("model.mllm_backbone.multi_modal_projector.", "backbone.model.model.multi_modal_projector."),
                        ("model.mllm_backbone.image_newline", "backbone.model.model.image_newline")),
}
_EMBEDDING = {"qwen2_5_vl": "model.mllm_backbone.model.embed_tokens.weight",
              "llava_onevision": "model.mllm_backbone.language_model.model.embed_tokens.weight"}
_DECODER_PREFIXES = {"sana": (("model.transformer.", "decoder.transformer."), ("vae.", "decoder.vae.")),
                     "sd15": (("model.transformer.", "decoder.unet."), ("vae.", "decoder.vae."))}
# The connector: nn.Sequential(Qwen2Encoder, Linear, GELU, Linear, RMSNorm) -> EncProjConnector.
_CONNECTOR_LAYERS = ("model.connector.0.layers.", "connector.encoder.layers.")
_CONNECTOR_NAMES = (
    ("model.connector.1.", "connector.projector.0."),
    ("model.connector.3.", "connector.projector.2."),
    ("model.connector.4.", "connector.out_norm."),
)
# Inside one encoder layer; read backwards the last pair ("", "mlp.") catches the MLP's three projections, which sit
# directly in mqeval's layer.
_LAYER_NAMES = (
    ("input_layernorm.", "input_norm."), ("post_attention_layernorm.", "post_attention_norm."),
    ("self_attn.", "attn."), ("mlp.", ""),
)


# --- the folder ---------------------------------------------------------------------------------------------------
def is_official(folder: Path) -> bool:
    """A folder written by the official trainer: itself a checkpoint, or a run folder holding checkpoint-N/."""
    try:
        return read_raw_config(newest_checkpoint(folder)).get("model_type") == MODEL_TYPE
    except UserError:
        return False


def newest_checkpoint(folder: Path) -> Path:
    """The official rule (trainer_utils.find_newest_checkpoint): the folder itself when it holds weight files,
    else its checkpoint-N with the largest N."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{folder} is not a folder")
    if any(p.name.endswith(("pt", "safetensors", "pth")) for p in folder.iterdir()):
        return folder
    numbered = [(int(m.group(1)), p) for p in folder.iterdir() if p.is_dir() and (m := _CHECKPOINT_DIR.match(p.name))]
    if not numbered:
        raise UserError(f"{folder} holds neither weights nor checkpoint-N folders")
    return max(numbered)[1]


def read_raw_config(checkpoint: Path) -> dict[str, Any]:
    path = checkpoint / "config.json"
    if not path.is_file():
        raise UserError(f"{checkpoint} has no config.json")
    try:
        raw = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path} is not valid JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise UserError(f"{path} is not a JSON object")
    return raw


def weight_files(checkpoint: Path) -> list[Path]:
    """The safetensors files of a checkpoint (one, or the shards its index names); pickles are refused."""
    from mqeval.model.hub import pickle_files

    single, index = checkpoint / WEIGHTS_NAME, checkpoint / INDEX_NAME
    if single.is_file():
        return [single]
    if index.is_file():
        try:
            shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
            raise UserError(f"{index} is not a safetensors index ({exc!r})") from None
        missing = [s for s in shards if not (checkpoint / s).is_file()]
        if missing:
            raise UserError(f"{index} names shards that are not there: {', '.join(missing[:3])}")
        return [checkpoint / s for s in shards]
    pickles = pickle_files(checkpoint)
    if pickles:
        raise UserError(f"{checkpoint} holds {', '.join(p.name for p in pickles)} but no safetensors. mqeval never "
                        "unpickles weights (pickle can run code); save the checkpoint with safe_serialization.")
    raise UserError(f"{checkpoint} has no {WEIGHTS_NAME} and no {INDEX_NAME}")


def weights_sha256(checkpoint: Path) -> str:
    """sha256 of the one weights file; for shards, of the index followed by each shard's sha256 in order."""
    from mqeval.fileio import sha256_bytes, sha256_file

    files = weight_files(checkpoint)
    if len(files) == 1 and files[0].name == WEIGHTS_NAME:
        return sha256_file(files[0])
    parts = [(checkpoint / INDEX_NAME).read_bytes()] + [sha256_file(f).encode() for f in files]
    return sha256_bytes(b"".join(parts))


def read_weights(checkpoint: Path) -> dict[str, "torch.Tensor"]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    state: dict[str, Any] = {}
    for path in weight_files(checkpoint):
        try:
            state.update(load_file(str(path), device="cpu"))
        except (SafetensorError, OSError) as exc:
            raise UserError(f"{path} is not a readable safetensors file ({exc})") from None
    return state


# --- config -------------------------------------------------------------------------------------------------------
def backbone_family(mllm_id: str) -> str:
    """The official code's own rule (models/model.py): by the substrings of mllm_id."""
    if "Qwen2.5-VL" in mllm_id:
        return "qwen2_5_vl"
    if "Qwen" in mllm_id or "Llama" in mllm_id:
        raise UserError(f"mllm_id {mllm_id!r}: the official code's text-only LLM branch (qwenlm / llamaml) has no "
                        "mqeval counterpart; MetaQuery checkpoints on Qwen2.5-VL or LLaVA-OneVision load")
    return "llava_onevision"


def decoder_family(diffusion_model_id: str) -> str:
    if "Sana" in diffusion_model_id:
        return "sana"
    if "stable-diffusion-v1-5" in diffusion_model_id:
        return "sd15"
    raise UserError(f"diffusion_model_id {diffusion_model_id!r} is neither Sana nor stable-diffusion-v1-5, the "
                    "two decoders the official code builds")


def config_from_official(raw: dict[str, Any], where: str = "config.json") -> MetaQueryConfig:
    """The MetaQueryConfig of an official config.json (defaults as the official MetaQueryConfig's)."""
    def get(key: str, default: Any) -> Any:
        return raw.get(key, default)

    sana = "Efficient-Large-Model/Sana_1600M_512px_diffusers"
    diffusion_id = get("diffusion_model_id", sana)
    for key in ("vae_id", "scheduler_id", "noise_scheduler_id"):
        if get(key, sana) != diffusion_id:
            raise UserError(f"{where}: {key} {get(key, sana)!r} differs from diffusion_model_id {diffusion_id!r}; "
                            "mqeval's decoder takes its VAE and schedulers from the diffusion model's repository")
    loss_type = get("loss_type", "flow")
    family = decoder_family(diffusion_id)
    if (family, loss_type) not in (("sana", "flow"), ("sd15", "diff")):
        raise UserError(f"{where}: loss_type {loss_type!r} with a {family} decoder is not a combination mqeval "
                        "trains (sana: flow, stable-diffusion-v1-5: diff)")
    frozen = set(get("modules_to_freeze", ()))
    num_queries = int(get("num_metaqueries", 64))
    if num_queries < 1:
        raise UserError(f"{where}: num_metaqueries {num_queries}: checkpoints without queries are not supported")
    mllm_id = get("mllm_id", "llava-hf/llava-onevision-qwen2-0.5b-ov-hf")
    return MetaQueryConfig(
        backbone=BackboneConfig(family=backbone_family(mllm_id), model_id=mllm_id,  # type: ignore[arg-type]
                                tuning="frozen" if "model.mllm_backbone" in frozen else "full"),
        decoder=DecoderConfig(family=family, model_id=diffusion_id,  # type: ignore[arg-type]
                              train="model.transformer" not in frozen,
                              prediction_type="flow" if family == "sana" else "epsilon",
                              resolution=int(get("input_size", 16)) * int(get("vae_downsample_f", 32))),
        condition=ConditionConfig(num_queries=num_queries, max_prompt_tokens=int(get("max_input_text_tokens", 256)),
                                  system_prompt=get("system_prompt", ConditionConfig.system_prompt),
                                  markers="learned"),
        connector=ConnectorConfig(architecture="enc-proj", num_layers=int(get("connector_num_hidden_layers", 24)),
                                  layout="official"),
    )


def check_official_compatible(config: MetaQueryConfig) -> None:
    """What the official classes can represent; a field they cannot is a ConfigError naming it."""
    def need(ok: bool, field: str, value: Any, wanted: str) -> None:
        if not ok:
            raise ConfigError(f"{field} {value!r}: the official MetaQuery has {wanted}")

    need(config.backbone.family in _BACKBONE_PREFIXES, "backbone.family", config.backbone.family,
         "Qwen2.5-VL or LLaVA-OneVision")
    need(config.decoder.family in _DECODER_PREFIXES, "decoder.family", config.decoder.family, "Sana or SD1.5")
    need(config.condition.mode == "metaquery", "condition.mode", config.condition.mode, "queries")
    need(config.condition.markers == "learned", "condition.markers", config.condition.markers, "learned markers")
    need(config.connector.architecture == "enc-proj", "connector.architecture", config.connector.architecture,
         "an Enc-Proj connector")
    need(config.connector.layout == "official", "connector.layout", config.connector.layout, "its own layout")
    need(config.backbone.tuning != "lora", "backbone.tuning", config.backbone.tuning, "no LoRA")


def latent_geometry(config: MetaQueryConfig) -> tuple[int, int]:
    """(latent channels, VAE downsampling factor) from the decoder repository's vae/config.json."""
    from mqeval.model.decoders.base import diffusers_source

    path = Path(diffusers_source(config.decoder)[0]) / "vae" / "config.json"
    try:
        vae = json.loads(path.read_text())
        blocks = vae.get("encoder_block_out_channels") or vae["block_out_channels"]
        return int(vae["latent_channels"]), 2 ** (len(blocks) - 1)
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise UserError(f"{path}: cannot read the VAE's latent channels and downsampling ({exc!r})") from None


def official_config(config: MetaQueryConfig) -> dict[str, Any]:
    """The official config.json for an mqeval config (the inverse of config_from_official)."""
    check_official_compatible(config)
    decoder_id = config.decoder.model_id
    sana = config.decoder.family == "sana"
    channels, factor = latent_geometry(config)
    freeze = ["vae"] + (["model.mllm_backbone"] if config.backbone.tuning == "frozen" else []) + (
        [] if config.decoder.train else ["model.transformer"])
    return {
        "architectures": ["MetaQuery"], "model_type": MODEL_TYPE,
        "mllm_id": config.backbone.model_id, "diffusion_model_id": decoder_id, "vae_id": decoder_id,
        "noise_scheduler_id": decoder_id, "scheduler_id": decoder_id,
        "input_size": config.decoder.resolution // factor, "in_channels": channels,
        "vae_downsample_f": factor, "loss_type": "flow" if sana else "diff",
        "num_metaqueries": config.condition.num_queries, "max_input_text_tokens": config.condition.max_prompt_tokens,
        "connector_num_hidden_layers": config.connector.num_layers, "system_prompt": config.condition.system_prompt,
        "modules_to_freeze": freeze,
        "modules_to_unfreeze": [_EMBEDDING[config.backbone.family].removesuffix(".weight")],
        "_gradient_checkpointing": False,
    }


# --- weights ------------------------------------------------------------------------------------------------------
def _rename(name: str, pairs) -> str | None:
    for source, target in pairs:
        if name.startswith(source):
            return target + name[len(source):]
    return None


def _flipped(pairs):
    return tuple((target, source) for source, target in pairs)


def _connector_name(name: str, to_mqeval: bool) -> str | None:
    """A connector weight's name in the other layout (official <-> mqeval); None: it has no place there."""
    layers = _CONNECTOR_LAYERS if to_mqeval else _CONNECTOR_LAYERS[::-1]
    if name.startswith(layers[0]):
        index, _, inner = name[len(layers[0]):].partition(".")
        mapped = _rename(inner, _LAYER_NAMES if to_mqeval else _flipped(_LAYER_NAMES))
        return None if mapped is None else f"{layers[1]}{index}.{mapped}"
    return _rename(name, _CONNECTOR_NAMES if to_mqeval else _flipped(_CONNECTOR_NAMES))


def _renamed(state: dict[str, Any], rename, unknown_message: str) -> dict[str, Any]:
    """`state` under the names `rename` gives; names it maps to None are a UserError ("{n} {unknown_message} ...")."""
    out, unknown = {}, []
    for name, tensor in state.items():
        mapped = rename(name)
        if mapped is None:
            unknown.append(name)
        else:
            out[mapped] = tensor
    if unknown:
        raise UserError(f"{len(unknown)} {unknown_message}, e.g. {', '.join(unknown[:3])}")
    return out


def to_mqeval(state: dict[str, "torch.Tensor"], config: MetaQueryConfig) -> dict[str, "torch.Tensor"]:
    """Official weights -> mqeval parameter names; the grown embedding is split into base rows, the two markers
    and the queries. A key that maps nowhere is a UserError naming it."""
    family, n = config.backbone.family, config.condition.num_queries
    pairs = _BACKBONE_PREFIXES[family] + _DECODER_PREFIXES[config.decoder.family]
    embedding_key = _EMBEDDING[family]
    if embedding_key not in state:
        raise UserError(f"the checkpoint has no {embedding_key} (the embedding that holds the queries)")
    embedding = state[embedding_key]
    rows = embedding.shape[0] - n - 2
    if rows < 1:
        raise UserError(f"{embedding_key} has {embedding.shape[0]} rows, fewer than num_metaqueries + 2 = {n + 2}")
    out = _renamed(state, lambda name: _connector_name(name, True) if name.startswith("model.connector.")
                   else _rename(name, pairs), "checkpoint key(s) map onto no mqeval module")
    out[_rename(embedding_key, pairs)] = embedding[:rows].clone()
    out["query_tokens.markers"] = embedding[rows:rows + 2].clone()
    out["query_tokens.queries"] = embedding[rows + 2:].clone()
    return out


def to_official(state: dict[str, "torch.Tensor"], config: MetaQueryConfig) -> dict[str, "torch.Tensor"]:
    """mqeval parameter names -> official weights (the inverse of to_mqeval); the MLLM's unused head is dropped,
    as the official model replaces it by an identity."""
    import torch

    check_official_compatible(config)
    family = config.backbone.family
    pairs = _flipped(_BACKBONE_PREFIXES[family] + _DECODER_PREFIXES[config.decoder.family])
    embedding_key = _EMBEDDING[family]
    kept = {name: tensor for name, tensor in state.items()
            if not name.startswith(("query_tokens.", "backbone.model.lm_head."))}
    out = _renamed(kept, lambda name: _connector_name(name, False) if name.startswith("connector.")
                   else _rename(name, pairs), "mqeval parameter(s) have no place in the official layout")
    base = out[embedding_key]
    out[embedding_key] = torch.cat([base, state["query_tokens.markers"].to(base.dtype),
                                    state["query_tokens.queries"].to(base.dtype)])
    return out
