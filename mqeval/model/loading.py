"""Model card -> MetaQuery: from a checkpoint folder, or seeded random trainable parts for random-init test cards."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Optional

from mqeval.dataclass_io import to_dict
from mqeval.errors import ConfigError

if TYPE_CHECKING:
    import torch

    from mqeval.model.metaquery import MetaQuery
    from mqeval.model.card import ModelCard

# Settings that may differ between a card and the checkpoint it names without changing the weights' meaning.
_RUNTIME_KEYS = {"dtype", "gradient_checkpointing", "flow_shift"}  # settings, not architecture


def _architecture(config) -> dict:
    def strip(node):
        if isinstance(node, dict):
            return {k: strip(v) for k, v in node.items() if k not in _RUNTIME_KEYS}
        return node

    return strip(to_dict(config))


def _differences(a: dict, b: dict, prefix: str = "") -> list[str]:
    out = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key), b.get(key)
        if isinstance(va, dict) and isinstance(vb, dict):
            out += _differences(va, vb, f"{prefix}{key}.")
        elif va != vb:
            out.append(f"{prefix}{key}: card {va!r} vs checkpoint {vb!r}")
    return out


def load_model(
    card: "ModelCard",
    checkpoint: Optional[Path] = None,
    device: "str | torch.device" = "cpu",
    dtype: "Optional[torch.dtype]" = None,
    seed: int = 0,
) -> "MetaQuery":
    """checkpoint None -> the card's own (found and its pinned sha256 checked by the kind); a random-init card
    without a checkpoint gets seeded parts."""
    from mqeval.model.kinds import kind_of
    from mqeval.model.metaquery import MetaQuery

    path = Path(checkpoint) if checkpoint is not None else kind_of(card).resolve_weights(card, None).path
    if path is None:
        return MetaQuery(card.metaquery, dtype=dtype, seed=seed).to(device)
    saved = MetaQuery.read_config(path)
    diffs = _differences(_architecture(card.metaquery), _architecture(saved))
    if diffs:
        raise ConfigError(
            f"Checkpoint {path} was trained for another architecture than model card '{card.name}': "
            + "; ".join(diffs[:6])
        )
    return MetaQuery.from_pretrained(path, device=device, dtype=dtype, config=card.metaquery)
