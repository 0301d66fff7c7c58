"""The one way mqeval fetches anything from the Hugging Face hub: huggingface_hub, at a pinned revision, cache first.

`fetch` resolves one file (`hf_hub_download`) or one repository snapshot (`snapshot_download`, or a library's own
downloader such as diffusers' `DiffusionPipeline.download`) in this order:
1. the Hugging Face cache (HF_HUB_CACHE / HF_HOME, read when called), without any network;
2. offline (HF_HUB_OFFLINE or MQEVAL_OFFLINE) or the hub not reachable within a few seconds: one UserError naming the
   repository, revision, file and size (when known) and how to get them, instead of the libraries' long retries;
3. a download into that cache.
Content checks (sha256) are the caller's: mqeval.downloads checks data files, model runs record the snapshot commit.
"""
from __future__ import annotations

import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal, Optional, Sequence
from urllib.parse import urlparse

from mqeval.errors import UserError

OFFLINE_ENVS = ("MQEVAL_OFFLINE", "HF_HUB_OFFLINE")
# What transformers' from_pretrained reads from a model repository (weights, configs, tokenizer, chat template).
TRANSFORMERS_FILES = ("*.json", "*.safetensors", "*.model", "*.txt", "*.jinja", "*.tiktoken")
RepoType = Literal["model", "dataset"]


@dataclass(frozen=True)
class HubFile:
    """One file of a hub repository, as a benchmark spec names it (`data: {key: {hub: ...}}`)."""

    repo_id: str
    filename: str  # path inside the repository
    revision: Optional[str] = None  # a 40-hex commit pins the file; None: the default branch (unpinned)
    repo_type: RepoType = "dataset"

    @property
    def key(self) -> str:
        """A stable name for this file (what pinned sha256 values are recorded under)."""
        return f"hf://{self.repo_type}s/{self.repo_id}@{self.revision or 'main'}/{self.filename}"


def offline_switches() -> list[str]:
    """The offline environment variables that are set (read now, so a test or a user may set them late)."""
    return [name for name in OFFLINE_ENVS
            if os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no", "off")]


def offline() -> bool:
    return bool(offline_switches())


def hub_reachable(timeout: float = 3.0) -> bool:
    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    host, port = endpoint.hostname or "huggingface.co", endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def hub_cache_dir() -> Optional[str]:
    """The cache huggingface_hub uses, read now (its own constant is read once, at import)."""
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    return os.path.join(os.environ["HF_HOME"], "hub") if os.environ.get("HF_HOME") else None


def describe(repo_id: str, revision: Optional[str], repo_type: str = "model", filename: Optional[str] = None,
             size_gb: Optional[float] = None) -> str:
    """e.g. "data.json in dataset 'owner/name' (revision 7be5a84..., about 0.1 GB)"."""
    details = f"revision {revision or 'main, unpinned'}" + (f", about {size_gb:g} GB" if size_gb else "")
    kind = "dataset " if repo_type == "dataset" else ""
    return (f"{filename} in " if filename else "") + f"{kind}'{repo_id}' ({details})"


def download_command(repo_id: str, revision: Optional[str], repo_type: str = "model",
                     filename: Optional[str] = None) -> str:
    return " ".join(["hf", "download", repo_id] + ([filename] if filename else [])
                    + (["--repo-type", repo_type] if repo_type != "model" else [])
                    + (["--revision", revision] if revision else []))


def cached(repo_id: str, revision: Optional[str] = None, repo_type: str = "model",
           filename: Optional[str] = None) -> Optional[Path]:
    """The cached file (or snapshot folder, snapshots/<commit>) at `revision`, without any network; None if absent."""
    try:
        if filename is not None:
            from huggingface_hub import try_to_load_from_cache

            found = try_to_load_from_cache(repo_id, filename, cache_dir=hub_cache_dir(), revision=revision,
                                           repo_type=repo_type)
            return Path(found) if isinstance(found, str) else None
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id, revision=revision, repo_type=repo_type, cache_dir=hub_cache_dir(),
                                      local_files_only=True))
    except Exception:  # not cached, or not a valid hub id: nothing here
        return None


def fetch(repo_id: str, what: str, *, revision: Optional[str] = None, repo_type: str = "model",
          filename: Optional[str] = None, size_gb: Optional[float] = None,
          allow_patterns: Optional[Sequence[str]] = None, download: Optional[Callable[[], str]] = None,
          before_download: Optional[Callable[[], None]] = None,
          elsewhere: str = "or point the model card at a local folder") -> Path:
    """The cached path of `filename` (or of the repository snapshot when None), downloaded now when it is not cached
    and the hub is on. `download` replaces snapshot_download (a library's own downloader into the same cache);
    `before_download` may refuse (raise) just before anything is transferred. `what` names the thing for errors,
    `elsewhere` the other way to provide it."""
    found = cached(repo_id, revision, repo_type, filename)
    if found is not None:
        return found
    named = f"The {what} {describe(repo_id, revision, repo_type, filename, size_gb)}"
    command = download_command(repo_id, revision, repo_type, filename)
    how = (f"download it on a machine with network access (`{command}`) and copy the Hugging Face cache here "
           f"(HF_HOME), {elsewhere}")
    if offline():
        switches = " and ".join(offline_switches())
        raise UserError(f"{named} is not in the local Hugging Face cache and {switches} is set: {how}.")
    if not hub_reachable():
        raise UserError(f"{named} is not cached and the Hugging Face hub cannot be reached: {how}.")
    if before_download is not None:
        before_download()
    print(f"Downloading {describe(repo_id, revision, repo_type, filename, size_gb)} into the Hugging Face cache",
          file=sys.stderr)
    try:
        if download is not None:
            return Path(download())
        from huggingface_hub import hf_hub_download, snapshot_download

        where = {"cache_dir": hub_cache_dir(), "endpoint": os.environ.get("HF_ENDPOINT") or None}
        if filename is not None:
            return Path(hf_hub_download(repo_id, filename, revision=revision, repo_type=repo_type, **where))
        return Path(snapshot_download(repo_id, revision=revision, repo_type=repo_type, **where,
                                      allow_patterns=list(allow_patterns) if allow_patterns else None))
    except Exception as exc:  # any failure of the transfer (HTTP status, connection, missing revision or file)
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise UserError(f"Could not download {describe(repo_id, revision, repo_type, filename, size_gb)} "
                        f"for the {what}: {first}") from None


def forget(path: Path) -> None:
    """Remove one cached file (a bad download is not kept): a hub cache's snapshot entry and the blob it points to,
    or a plain file."""
    blob = path.resolve()
    path.unlink(missing_ok=True)
    if blob != path:
        blob.unlink(missing_ok=True)
