"""Nested training state (optimizer, RNG) written and read without pickle: one safetensors file per state.

Tensors and numpy arrays go into the safetensors body; everything around them (dicts, lists, tuples, numbers,
strings, None) becomes a JSON skeleton stored in the file's metadata, with each tensor replaced by its key. Reading
parses JSON and safetensors only, so a crafted file can be malformed but can never run code.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mqeval.errors import DataIntegrityError

SKELETON_KEY = "mqeval_state"
PICKLE_SUFFIXES = (".pt", ".pth", ".pkl", ".pickle", ".bin", ".ckpt")


class UnsupportedState(TypeError):
    """A value that has no pickle-free form (an arbitrary object)."""


def _flatten(value: Any, tensors: dict, drop_unsupported: bool, dropped: list, where: str) -> Any:
    import numpy as np
    import torch

    if isinstance(value, torch.Tensor):
        key = f"t{len(tensors)}"
        tensors[key] = value.detach().cpu().clone().contiguous()
        return {"__tensor__": key}
    if isinstance(value, np.ndarray):
        key = f"t{len(tensors)}"
        tensors[key] = torch.from_numpy(value.astype(np.int64) if value.dtype.kind in "ui" else value.copy())
        return {"__ndarray__": key, "dtype": str(value.dtype)}
    if value is None or isinstance(value, (bool, int, float, str)):
        return int(value) if isinstance(value, int) and not isinstance(value, bool) else value  # IntEnum -> int
    if isinstance(value, dict):
        pairs = []
        for k, v in value.items():
            try:
                pairs.append([_flatten(k, tensors, False, dropped, where), _flatten(v, tensors, drop_unsupported,
                                                                                     dropped, f"{where}.{k}")])
            except UnsupportedState:
                if not drop_unsupported:
                    raise
                dropped.append(f"{where}.{k}")
        return {"__dict__": pairs}
    if isinstance(value, (list, tuple)):
        items = [_flatten(v, tensors, drop_unsupported, dropped, f"{where}[{i}]") for i, v in enumerate(value)]
        return items if isinstance(value, list) else {"__tuple__": items}
    raise UnsupportedState(f"{where} is a {type(value).__name__}, which has no pickle-free form")


def _restore(node: Any, tensors: dict) -> Any:
    import numpy as np

    if isinstance(node, list):
        return [_restore(v, tensors) for v in node]
    if not isinstance(node, dict):
        return node
    if "__tensor__" in node:
        return tensors[node["__tensor__"]]
    if "__ndarray__" in node:
        return tensors[node["__ndarray__"]].numpy().astype(np.dtype(node["dtype"]))
    if "__tuple__" in node:
        return tuple(_restore(v, tensors) for v in node["__tuple__"])
    if "__dict__" in node:
        return {_hashable(_restore(k, tensors)): _restore(v, tensors) for k, v in node["__dict__"]}
    raise ValueError(f"unknown node {sorted(node)[:3]}")


def _hashable(key: Any) -> Any:
    return tuple(key) if isinstance(key, list) else key


def save_state(path: Path, state: Any, drop_unsupported: bool = False) -> list[str]:
    """Write `state` to `path` (safetensors); returns the places of values dropped because they had no
    pickle-free form (only with drop_unsupported; otherwise such a value raises UnsupportedState)."""
    from safetensors.torch import save_file

    from mqeval.fileio import atomic_path

    tensors: dict = {}
    dropped: list[str] = []
    skeleton = _flatten(state, tensors, drop_unsupported, dropped, "state")
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={SKELETON_KEY: json.dumps(skeleton), "format": "pt"})
    return dropped


def load_state(path: Path) -> Any:
    """Read a file written by save_state; any other content is a DataIntegrityError (nothing is unpickled)."""
    from safetensors import safe_open

    path = Path(path)
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            metadata = handle.metadata() or {}
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
        return _restore(json.loads(metadata[SKELETON_KEY]), tensors)
    except FileNotFoundError:
        raise DataIntegrityError(f"{path} is missing: the checkpoint is incomplete") from None
    except Exception as exc:  # safetensors / JSON parse errors, or a skeleton that does not fit its tensors
        raise DataIntegrityError(f"{path} is not a valid mqeval state file (safetensors with a JSON skeleton): "
                                 f"{type(exc).__name__}: {exc}") from None


def read_json(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataIntegrityError(f"{path} is missing: the checkpoint is incomplete") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataIntegrityError(f"{path} is not valid JSON ({exc}); the checkpoint is damaged") from None


def pickle_like_files(folder: Path) -> list[Path]:
    """Files of `folder` that are (or are named like) pickles: torch.save zips or raw pickle streams."""
    found = []
    for path in sorted(Path(folder).iterdir()):
        if not path.is_file():
            continue
        with open(path, "rb") as handle:
            head = handle.read(4)
        if path.suffix in PICKLE_SUFFIXES or head[:2] in (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05") \
                or head == b"PK\x03\x04":
            found.append(path)
    return found
