"""mqeval.downloads: pinned downloads over real HTTP (loopback), digests, local override, pins."""
from __future__ import annotations

import hashlib
import os

import pytest
from mqeval.downloads import TRUST_ENV, check_digest, fetch_data_file, git_blob_sha1
from mqeval.errors import DataIntegrityError

from fake_openai_server import FakeOpenAIServer

CONTENT = b'[{"prompt_id": 1}]\n'
SHA = hashlib.sha256(CONTENT).hexdigest()


@pytest.fixture(autouse=True)
def _online(monkeypatch):
    # These tests download from 127.0.0.1 only; the global offline switch would forbid it.
    for name in ("MQEVAL_OFFLINE", "HF_HUB_OFFLINE", TRUST_ENV):
        monkeypatch.delenv(name, raising=False)


def test_git_blob_sha1_matches_git(tmp_path):
    path = tmp_path / "f.txt"
    path.write_bytes(b"hello\n")
    # `git hash-object` of "hello\n" is a well-known constant
    assert git_blob_sha1(path) == "ce013625030ba8dba906f756967f9e9ca394464a"
    check_digest(path, "git-blob-sha1:ce013625030ba8dba906f756967f9e9ca394464a", "t")
    with pytest.raises(DataIntegrityError):
        check_digest(path, "git-blob-sha1:" + "0" * 40, "t")


def test_download_checks_and_caches(tmp_path):
    with FakeOpenAIServer(files={"/pinned/data.json": CONTENT}) as server:
        url = f"http://127.0.0.1:{server.port}/pinned/data.json"
        first = fetch_data_file("data.json", url, SHA[:12], cache_root=tmp_path)
        assert first.source == "download" and first.sha256 == SHA
        assert first.path.read_bytes() == CONTENT
    # server gone: the cache answers
    again = fetch_data_file("data.json", url, SHA, cache_root=tmp_path)
    assert again.source == "cache" and again.path == first.path


def test_wrong_hash_is_rejected_and_not_kept(tmp_path):
    with FakeOpenAIServer(files={"/d.json": CONTENT}) as server:
        url = f"http://127.0.0.1:{server.port}/d.json"
        with pytest.raises(DataIntegrityError, match="sha256"):
            fetch_data_file("d.json", url, "deadbeef" * 8, cache_root=tmp_path)
    assert not list((tmp_path / "downloads").rglob("d.json"))


def test_local_dir_overrides_and_is_checked(tmp_path):
    local = tmp_path / "mine"
    local.mkdir()
    (local / "d.json").write_bytes(CONTENT)
    got = fetch_data_file("d.json", "http://127.0.0.1:9/never", SHA, local_dir=local, cache_root=tmp_path)
    assert got.source == "local" and got.path == local / "d.json"
    (local / "d.json").write_bytes(b"tampered")
    with pytest.raises(DataIntegrityError):
        fetch_data_file("d.json", "http://127.0.0.1:9/never", SHA, local_dir=local, cache_root=tmp_path)


def test_unknown_hash_needs_opt_in_then_pins(tmp_path, monkeypatch):
    files = {"/u.json": CONTENT}
    with FakeOpenAIServer(files=files) as server:
        url = f"http://127.0.0.1:{server.port}/u.json"
        with pytest.raises(DataIntegrityError, match=TRUST_ENV):
            fetch_data_file("u.json", url, "", cache_root=tmp_path)
        monkeypatch.setenv(TRUST_ENV, "1")
        got = fetch_data_file("u.json", url, "", cache_root=tmp_path)
        assert got.sha256 == SHA and "trusted" in got.note
    # the recorded pin now guards the cached copy
    got.path.write_bytes(b"changed")
    with pytest.raises(DataIntegrityError):
        fetch_data_file("u.json", url, "", cache_root=tmp_path)


def test_offline_mode_refuses_to_download(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DataIntegrityError, match="--data-dir"):
        fetch_data_file("x.json", "http://127.0.0.1:9/x.json", SHA, cache_root=tmp_path)
    assert os.environ["HF_HUB_OFFLINE"] == "1"


def test_recorded_hashes_fill_in_unknown_and_git_blob_entries(tmp_path, monkeypatch):
    from mqeval.downloads import DataFile
    from mqeval.downloads import recorded_hashes

    with FakeOpenAIServer(files={"/a.json": CONTENT, "/b.json": CONTENT}) as server:
        url_a, url_b = (f"http://127.0.0.1:{server.port}/{n}.json" for n in "ab")
        data = {"a": DataFile(sha256="", url=url_a),
                "b": DataFile(sha256="git-blob-sha1:" + hashlib.sha1(b"blob %d\0" % len(CONTENT) + CONTENT).hexdigest(),
                              url=url_b),
                "c": DataFile(sha256=SHA, path="x")}
        assert recorded_hashes(data, tmp_path) == {"a": "", "b": data["b"].sha256, "c": SHA}
        monkeypatch.setenv(TRUST_ENV, "1")
        fetch_data_file("a.json", url_a, "", cache_root=tmp_path)
        fetch_data_file("b.json", url_b, data["b"].sha256, cache_root=tmp_path)
    assert recorded_hashes(data, tmp_path) == {"a": SHA, "b": SHA, "c": SHA}
