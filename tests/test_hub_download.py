"""mqeval.hub_download, the one Hugging Face hub code path: offline, on a hub cache built in tmp_path in the layout
huggingface_hub writes, and through huggingface_hub's own downloader against a loopback server that answers as the
hub does (nothing leaves this machine)."""
from __future__ import annotations

import hashlib
import os
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from mqeval.downloads import DataFile
from mqeval.benchmarks.catalog import load_spec
from mqeval.downloads import TRUST_ENV, resolve_data_file
from mqeval.errors import DataIntegrityError, UserError
from mqeval.hub_download import HubFile, cached, fetch
from mqeval.model.hub import resolve_model_path

REPO = "someone/some-data"
COMMIT = hashlib.sha1(b"a commit of someone/some-data").hexdigest()
CONTENT = b'[{"prompt1": "a"}]\n'
SHA = hashlib.sha256(CONTENT).hexdigest()


def write_hub_cache(cache: Path, repo_id: str, repo_type: str, commit: str, files: dict[str, bytes]) -> Path:
    """What huggingface_hub leaves after a download: blobs/<hash>, snapshots/<commit>/<file> -> blob, refs/main."""
    repo = cache / f"{repo_type}s--{repo_id.replace('/', '--')}"
    for name, data in files.items():
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = repo / "snapshots" / commit / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    return repo / "snapshots" / commit


@pytest.fixture
def hub_cache(tmp_path, monkeypatch) -> Path:
    cache = tmp_path / "hf-hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return cache


def entry(sha256: str, revision: str | None = COMMIT) -> DataFile:
    return DataFile(sha256=sha256, hub=HubFile(REPO, "data.json", revision))


def test_a_cached_hub_file_is_used_offline_and_checked(hub_cache, tmp_path):
    snapshot = write_hub_cache(hub_cache, REPO, "dataset", COMMIT, {"data.json": CONTENT})
    for revision in (COMMIT, None):  # pinned, or the cached refs/main
        got = resolve_data_file(entry(SHA[:16], revision), "pairs", cache_root=tmp_path / "mq")
        assert got.source == "cache" and got.path == snapshot / "data.json" and got.sha256 == SHA
    wrong = "0" * 64
    with pytest.raises(DataIntegrityError) as failure:
        resolve_data_file(entry(wrong), "pairs", cache_root=tmp_path / "mq")
    message = str(failure.value)
    assert "data.json" in message and f"sha256 {SHA}" in message and f"expected {wrong}" in message
    assert "\n" not in message


def test_a_missing_hub_file_fails_at_once_offline_naming_repo_revision_and_file(hub_cache, tmp_path):
    start = time.monotonic()
    with pytest.raises(UserError) as failure:
        resolve_data_file(entry(SHA), "pairs", cache_root=tmp_path / "mq")
    message = str(failure.value)
    for part in (f"data.json in dataset '{REPO}'", f"revision {COMMIT}", "HF_HUB_OFFLINE",
                 f"`hf download {REPO} data.json --repo-type dataset --revision {COMMIT}`", "--data-dir"):
        assert part in message
    # the shipped spec names its pinned hub file the same way
    pairs = load_spec("commonsense-t2i").data["pairs"]
    with pytest.raises(UserError, match="data.json in dataset 'CommonsenseT2I/CommonsensenT2I' \\(revision 7be5a84"):
        resolve_data_file(pairs, "pairs", cache_root=tmp_path / "mq")
    assert time.monotonic() - start < 5


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_unreachable_hub_fails_at_once(hub_cache, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    start = time.monotonic()
    with pytest.raises(UserError, match="cannot be reached"):
        resolve_model_path("someone/some-model", None, "backbone", 1.5)
    assert time.monotonic() - start < 5


def test_a_model_snapshot_comes_from_the_cache_at_its_revision(hub_cache):
    snapshot = write_hub_cache(hub_cache, "someone/some-model", "model", COMMIT, {"config.json": b"{}"})
    assert resolve_model_path("someone/some-model") == str(snapshot)
    assert resolve_model_path("someone/some-model", COMMIT) == str(snapshot)
    assert cached("someone/some-model", COMMIT) == snapshot  # what a run records: snapshots/<commit>
    other = hashlib.sha1(b"another commit").hexdigest()
    with pytest.raises(UserError, match=f"'someone/some-model' \\(revision {other}, about 2 GB\\)"):
        resolve_model_path("someone/some-model", other, "backbone", 2)


def test_coco_from_the_hub_fails_at_once_offline(hub_cache):
    from mqeval.benchmarks.fid.coco import REPO as COCO, load_coco

    with pytest.raises(UserError, match=f"dataset '{COCO}' \\(revision main\\)"):
        load_coco("main", None, None)


def test_scorer_weights_on_the_hub_fail_at_once_offline(hub_cache):
    from mqeval.scorers.clip_color import ClipColorClassifier
    from mqeval.scorers.detectors import HF_MODEL, DetectorOptions, load_hf_mask2former

    import open_clip  # noqa: F401  (the libraries' import time is not what is measured)
    import transformers.models.mask2former  # noqa: F401
    start = time.monotonic()
    with pytest.raises(UserError, match="open_clip_model.safetensors in 'timm/vit_large_patch14_clip_224.openai'"):
        ClipColorClassifier.load()
    with pytest.raises(UserError, match=f"GenEval detector weights '{HF_MODEL}' \\(revision main, unpinned\\)"):
        load_hf_mask2former(DetectorOptions(weights="hf"), "mask2former-swin-small-coco-instance")
    assert time.monotonic() - start < 5


class FakeHub:
    """Answers HEAD and GET of /<type>s/<repo>/resolve/<revision>/<file> as the hub does, for hf_hub_download."""

    def __init__(self, files: dict[str, bytes], commit: str):
        self.files, self.commit, self.gets = files, commit, []

    def __enter__(self) -> "FakeHub":
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _reply(self, with_body: bool) -> None:
                data = owner.files.get(self.path.split("?")[0].rsplit("/", 1)[-1])
                if data is None or "/resolve/" not in self.path:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("X-Repo-Commit", owner.commit)
                self.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if with_body:
                    owner.gets.append(self.path)
                    self.wfile.write(data)

            def do_HEAD(self) -> None:
                self._reply(False)

            def do_GET(self) -> None:
                self._reply(True)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def online_hub(hub_cache, monkeypatch):
    import huggingface_hub.constants

    for name in ("HF_HUB_OFFLINE", "MQEVAL_OFFLINE", TRUST_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)  # read once, at its import
    with FakeHub({"data.json": CONTENT}, COMMIT) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        yield hub


def test_a_hub_download_goes_through_huggingface_hub_and_is_checked(online_hub, hub_cache, tmp_path):
    got = resolve_data_file(entry(SHA), "pairs", cache_root=tmp_path / "mq")
    assert got.source == "download" and got.sha256 == SHA and got.path.read_bytes() == CONTENT
    assert got.path.parent.name == COMMIT and hub_cache in got.path.parents  # the hub cache, at the pinned commit
    assert online_hub.gets == [f"/datasets/{REPO}/resolve/{COMMIT}/data.json"]
    again = resolve_data_file(entry(SHA), "pairs", cache_root=tmp_path / "mq")
    assert again.source == "cache" and len(online_hub.gets) == 1


def test_a_hub_download_of_the_wrong_content_is_refused_and_not_kept(online_hub, hub_cache, tmp_path):
    wrong = hashlib.sha256(b"what the spec pinned").hexdigest()
    with pytest.raises(DataIntegrityError, match=f"has sha256 {SHA}, expected {wrong}"):
        resolve_data_file(entry(wrong), "pairs", cache_root=tmp_path / "mq")
    assert len(online_hub.gets) == 1
    assert cached(REPO, COMMIT, "dataset", "data.json") is None
    assert not [p for p in hub_cache.rglob("*") if p.is_file() and p.read_bytes() == CONTENT]


def test_a_hub_file_without_a_published_hash_needs_the_opt_in_before_any_transfer(online_hub, tmp_path, monkeypatch):
    with pytest.raises(DataIntegrityError, match=TRUST_ENV):
        resolve_data_file(entry(""), "pairs", cache_root=tmp_path / "mq")
    assert online_hub.gets == []
    monkeypatch.setenv(TRUST_ENV, "1")
    got = resolve_data_file(entry(""), "pairs", cache_root=tmp_path / "mq")
    assert got.sha256 == SHA and "trusted" in got.note
    # the recorded sha256 now guards the cached copy
    got.path.resolve().write_bytes(b"changed")
    with pytest.raises(DataIntegrityError, match=f"expected {SHA}"):
        resolve_data_file(entry(""), "pairs", cache_root=tmp_path / "mq")


def test_fetch_names_what_it_could_not_download(online_hub):
    with pytest.raises(UserError, match=f"Could not download missing.bin in dataset '{REPO}'"):
        fetch(REPO, "test file", revision=COMMIT, repo_type="dataset", filename="missing.bin")
