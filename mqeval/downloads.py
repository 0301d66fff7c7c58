"""Data files a benchmark cannot ship: a file pinned to a commit, a content check, a local-copy override.

A file lives either on the Hugging Face hub (`hub`: repository, file, revision; fetched by mqeval.hub_download, the
one hub code path, into the Hugging Face cache) or elsewhere at a URL pinned to a commit (raw.githubusercontent.com;
fetched over HTTPS with stdlib urllib into `<cache>/downloads/<digest of url>/<name>`, written atomically).
`fetch_data_file` resolves one file in this order:
1. a local copy (`local_dir/<name>`, e.g. from `--data-dir`), checked like a download;
2. the cache, checked again on every use;
3. a download (refused at once when offline), checked before it is kept.

The expected content is given as a *digest spec*:
- "<hex>": a sha256 or a prefix of at least 8 hex digits;
- "git-blob-sha1:<hex>": the git blob id of the file at the pinned commit (what `git ls-tree` prints), for files
  whose sha256 nobody could compute before their first download; the verified file's sha256 is recorded;
- "" (unknown): nothing is known. A download then needs an explicit opt-in (env MQEVAL_TRUST_FIRST_DOWNLOAD=1);
  the first file's sha256 is recorded in `<cache>/downloads/pins.json` and every later use must match it.
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from mqeval import hub_download
from mqeval.errors import DataIntegrityError
from mqeval.fileio import atomic_path, sha256_file, write_json
from mqeval.hub_download import HubFile
from mqeval.paths import cache_dir


@dataclass(frozen=True)
class DataFile:
    """A data file: shipped (path relative to benchmarks/) or downloaded: from the Hugging Face hub (`hub`: repo_id,
    filename, revision, repo_type) or from a URL pinned to a commit (files on GitHub)."""

    sha256: str
    path: Optional[str] = None
    url: Optional[str] = None
    hub: Optional[HubFile] = None
    licence: Optional[str] = None

    def __post_init__(self) -> None:
        if self.url and self.hub:
            raise ValueError("a data file comes from the hub or from a url, not both")

    @property
    def file_name(self) -> str:
        """The name a local copy has in --data-dir."""
        where = self.path or (self.hub.filename if self.hub else None) or (self.url or "").split("?")[0]
        return where.rstrip("/").rsplit("/", 1)[-1]

    @property
    def source(self) -> Optional[str]:
        """Where a download comes from (the key a first download's sha256 is recorded under)."""
        return self.hub.key if self.hub is not None else self.url


TRUST_ENV = "MQEVAL_TRUST_FIRST_DOWNLOAD"
GIT_BLOB_PREFIX = "git-blob-sha1:"
_PINS_LOCK = threading.Lock()


@dataclass(frozen=True)
class Resolved:
    path: Path
    sha256: str
    source: str  # "local", "cache" or "download"
    note: Optional[str] = None  # e.g. "sha256 recorded on first download (no published hash)"


def git_blob_sha1(path: str | Path) -> str:
    """The id git gives a file's content: sha1(b"blob <size>\\0" + content)."""
    data = Path(path).read_bytes()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def url_key(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()[:16]


def _pins_path(root: Path) -> Path:
    return root / "downloads" / "pins.json"


def _read_pins(root: Path) -> dict[str, str]:
    path = _pins_path(root)
    return json.loads(path.read_text()) if path.is_file() else {}


def _record_pin(root: Path, url: str, sha256: str) -> None:
    with _PINS_LOCK:
        pins = _read_pins(root)
        pins[url] = sha256
        write_json(_pins_path(root), pins)


def check_digest(path: Path, expected: str, what: str) -> str:
    """Check `path` against a digest spec; return its full sha256. Raises DataIntegrityError on mismatch."""
    actual = sha256_file(path)
    expected = (expected or "").strip().lower()
    if expected.startswith(GIT_BLOB_PREFIX):
        want = expected[len(GIT_BLOB_PREFIX):]
        got = git_blob_sha1(path)
        if got != want:
            raise DataIntegrityError(
                f"{what}: {path} has git blob id {got}, expected {want} (the file at the pinned commit). "
                "It is corrupt or a different version; delete it and fetch it again."
            )
    elif expected:
        if len(expected) < 8:
            raise DataIntegrityError(f"{what}: expected sha256 '{expected}' is too short (need >= 8 hex digits)")
        if not actual.startswith(expected):
            raise DataIntegrityError(
                f"{what}: {path} has sha256 {actual}, expected {expected}. "
                "It is corrupt or a different version; delete it and fetch it again."
            )
    return actual


def _download(url: str, dest: Path, timeout: float, opener: Callable = urllib.request.urlopen) -> None:
    request = urllib.request.Request(url, headers={"User-Agent": "mqeval"})
    try:
        with opener(request, timeout=timeout) as response, atomic_path(dest) as tmp:
            with open(tmp, "wb") as handle:
                while True:
                    block = response.read(1 << 20)
                    if not block:
                        break
                    handle.write(block)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        raise DataIntegrityError(
            f"Could not download {url}: {exc}. Download it by hand and pass its folder with --data-dir."
        ) from None


def fetch_data_file(
    name: str,
    url: Optional[str],
    expected: str,
    *,
    hub: Optional[HubFile] = None,
    local_dir: Optional[str | Path] = None,
    cache_root: Optional[Path] = None,
    what: str = "data file",
    timeout: float = 120.0,
    opener: Callable = urllib.request.urlopen,
) -> Resolved:
    """Resolve data file `name`, from the hub (`hub`) or a URL (see the module docstring). `expected` is a digest
    spec."""
    root = Path(cache_root) if cache_root is not None else cache_dir()
    expected = (expected or "").strip()
    source = hub.key if hub is not None else url  # what a first download's sha256 is recorded under
    pinned = source and _read_pins(root).get(source)

    def verify(path: Path, origin: str) -> Resolved:
        if expected:
            sha = check_digest(path, expected, what)
            note = None
            if expected.lower().startswith(GIT_BLOB_PREFIX) and source:
                _record_pin(root, source, sha)
                note = f"verified by git blob id; sha256 {sha}"
            return Resolved(path, sha, origin, note)
        if pinned:
            return Resolved(path, check_digest(path, pinned, what), origin, "sha256 pinned on first download")
        sha = sha256_file(path)
        if source:
            _record_pin(root, source, sha)
        return Resolved(path, sha, origin, f"no published sha256; this copy ({sha}) was trusted and recorded")

    def require_trust() -> None:
        if not expected and not pinned and os.environ.get(TRUST_ENV) != "1":
            raise DataIntegrityError(
                f"{what}: {source} has no published sha256, so mqeval will not trust a download silently. "
                f"Set {TRUST_ENV}=1 to accept and record the first download, or download it yourself and pass "
                "its folder with --data-dir."
            )

    if local_dir is not None:
        local = Path(local_dir) / name
        if local.is_file():
            return verify(local, "local")
        if source is None:
            raise DataIntegrityError(f"{what}: {local} not found")
    if source is None:
        raise DataIntegrityError(f"{what}: no URL and no local copy given (pass --data-dir)")
    if hub is not None:
        known = hub_download.cached(hub.repo_id, hub.revision, hub.repo_type, hub.filename)
        if known is not None:
            return verify(known, "cache")
        path = hub_download.fetch(hub.repo_id, what, revision=hub.revision, repo_type=hub.repo_type,
                                  filename=hub.filename, before_download=require_trust,
                                  elsewhere="or pass its folder with --data-dir")
    else:
        path = root / "downloads" / url_key(url) / name
        if path.is_file():
            return verify(path, "cache")
        if hub_download.offline():
            raise DataIntegrityError(
                f"{what}: {name} is not in the cache and downloads are disabled (offline mode). "
                f"Fetch {url} and pass its folder with --data-dir."
            )
        require_trust()
        _download(url, path, timeout, opener)
    try:
        return verify(path, "download")
    except DataIntegrityError:
        hub_download.forget(path)
        raise


def resolve_data_file(
    data_file: "DataFile",
    key: str,
    *,
    local_dir: Optional[str | Path] = None,
    cache_root: Optional[Path] = None,
    specs_dir: Optional[Path] = None,
    what: Optional[str] = None,
) -> Resolved:
    """Resolve one entry of a BenchmarkSpec's `data`: shipped (`path`, relative to benchmarks/) or downloaded (`hub`
    or `url`)."""
    what = what or f"data file '{key}'"
    if data_file.path is not None:
        from mqeval.paths import BENCHMARK_SPECS_DIR

        path = (specs_dir or BENCHMARK_SPECS_DIR) / data_file.path
        if not path.is_file():
            raise DataIntegrityError(f"{what}: shipped file {path} is missing; reinstall mqeval")
        return Resolved(path, check_digest(path, data_file.sha256, what), "shipped")
    if data_file.url is None and data_file.hub is None:
        raise DataIntegrityError(f"{what} has neither a path, a hub file nor a url")
    return fetch_data_file(data_file.file_name, data_file.url, data_file.sha256, hub=data_file.hub,
                           local_dir=local_dir, cache_root=cache_root, what=what)


def recorded_hashes(data: dict[str, DataFile], cache_root: Optional[Path] = None) -> dict[str, str]:
    """sha256 per data entry: the spec's, or, where the spec has none (or only a git blob id), the one recorded
    when the file was first verified; the spec's digest spec when nothing was recorded yet."""
    pins = _read_pins(Path(cache_root) if cache_root is not None else cache_dir())
    out = {}
    for key, entry in data.items():
        digest = (entry.sha256 or "").strip()
        if (not digest or digest.lower().startswith(GIT_BLOB_PREFIX)) and entry.source in pins:
            digest = pins[entry.source]
        out[key] = digest
    return out
