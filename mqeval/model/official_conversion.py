"""Converting between the official trainer's checkpoints and mqeval's (mqeval convert-checkpoint; --checkpoint).

official -> mqeval: the newest checkpoint-N is read, its config mapped onto a MetaQueryConfig and every weight onto
an mqeval parameter (mqeval.model.official_checkpoint); the folder written holds mqeval's config.json, all the
weights in model.safetensors (the whole model, as the official checkpoint has it) and conversion.json with the
sha256 of both sides. It is then loaded once, which checks every name and shape against the model the config builds.
mqeval -> official: the inverse, with the base weights filled in from the base models where an mqeval checkpoint
holds only its trained parts, so that the authors' app.py and eval/sample_*.py load the folder.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mqeval.errors import UserError
from mqeval.model import official_checkpoint as official

CONVERSION_NAME = "conversion.json"
UNUSED_BY_OFFICIAL = ("backbone.model.lm_head.",)  # the official model replaces the MLLM's head by an identity


def _save(tensors: dict[str, Any], path: Path) -> None:
    from safetensors.torch import save_file

    from mqeval.fileio import atomic_path

    with atomic_path(path) as tmp:
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp), metadata={"format": "pt"})


def from_official(source: Path, target: Path, check: bool = True, source_sha256: str | None = None) -> Path:
    """Write the mqeval checkpoint of an official checkpoint (or run folder) into `target`; returns `target`.
    `source_sha256`: the weights' hash when the caller has it (hashing a real checkpoint takes minutes)."""
    from mqeval.fileio import sha256_file, write_json
    from mqeval.model.metaquery import WEIGHTS_NAME, MetaQuery, write_config

    checkpoint = official.newest_checkpoint(Path(source))
    raw = official.read_raw_config(checkpoint)
    if raw.get("model_type") != official.MODEL_TYPE:
        raise UserError(f"{checkpoint}/config.json has model_type {raw.get('model_type')!r}, not "
                        f"{official.MODEL_TYPE!r}: not a checkpoint of the official MetaQuery trainer")
    config = official.config_from_official(raw, str(checkpoint / "config.json"))
    state = official.to_mqeval(official.read_weights(checkpoint), config)
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    _save(state, target / WEIGHTS_NAME)
    write_config(target, config)
    if check:  # every saved name and shape against the model the config builds, and nothing of it left out
        model = MetaQuery.from_pretrained(target)
        absent = sorted(name for name, _ in model.named_parameters()
                        if name not in state and not name.startswith(UNUSED_BY_OFFICIAL))
        if absent:
            (target / WEIGHTS_NAME).unlink()
            raise UserError(f"{checkpoint} lacks {len(absent)} weight(s) the official model has, e.g. "
                            + ", ".join(absent[:3]))
    write_json(target / CONVERSION_NAME, {
        "from": "official", "official_code": "facebookresearch/metaquery@206f6de", "source": str(checkpoint),
        "source_sha256": source_sha256 or official.weights_sha256(checkpoint),
        "sha256": sha256_file(target / WEIGHTS_NAME),
    })
    return target


def to_official(source: Path, target: Path) -> Path:
    """Write an mqeval checkpoint in the official layout (config.json + model.safetensors) into `target`."""
    from safetensors.torch import load_file

    from mqeval.fileio import sha256_file, write_json
    from mqeval.model.metaquery import WEIGHTS_NAME, MetaQuery

    source = Path(source)
    config = MetaQuery.read_config(source)
    official.check_official_compatible(config)
    saved = load_file(str(source / WEIGHTS_NAME), device="cpu")
    if not any(name.startswith("decoder.vae.") for name in saved):  # only trained parts: take the rest from bases
        model = MetaQuery.from_pretrained(source, config=config)
        saved = {**{k: v.detach() for k, v in model.state_dict().items()}, **saved}
    state = official.to_official(saved, config)
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    _save(state, target / official.WEIGHTS_NAME)
    (target / "config.json").write_text(json.dumps(official.official_config(config), indent=2) + "\n")
    write_json(target / CONVERSION_NAME, {
        "from": "mqeval", "official_code": "facebookresearch/metaquery@206f6de", "source": str(source),
        "source_sha256": sha256_file(source / WEIGHTS_NAME), "sha256": sha256_file(target / official.WEIGHTS_NAME),
    })
    return target


def converted_folder(source: Path) -> tuple[Path, str]:
    """The mqeval checkpoint of an official one, converted once into the cache (keyed by its weights' sha256), and
    the sha256 of its model.safetensors (checked against the record on reuse: the hash a run records)."""
    from mqeval.fileio import sha256_file
    from mqeval.model.metaquery import WEIGHTS_NAME
    from mqeval.paths import cache_dir

    checkpoint = official.newest_checkpoint(Path(source))
    sha = official.weights_sha256(checkpoint)
    target = cache_dir() / "converted" / f"official-{sha[:16]}"
    record, weights = target / CONVERSION_NAME, target / WEIGHTS_NAME
    if record.is_file() and weights.is_file():
        try:
            done = json.loads(record.read_text())
        except json.JSONDecodeError:
            done = {}
        converted = sha256_file(weights)
        if done.get("source_sha256") == sha and converted == done.get("sha256"):
            return target, converted
    from_official(checkpoint, target, source_sha256=sha)
    return target, json.loads(record.read_text())["sha256"]
