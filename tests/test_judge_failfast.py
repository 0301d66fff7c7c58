"""Judge endpoints: a dead one fails fast with a clear error and keeps what was answered; unanswered requests mark
the result incomplete; the cache key holds the endpoint; credentials are never recorded and never sent in clear
to another machine."""
from __future__ import annotations

import base64
import json
import socket
import time

import pytest
from PIL import Image

from fake_openai_server import FakeOpenAIServer, Reply
from helpers_cli_inprocess import closed_port, run_cli
from mqeval.scorers.judge import (
    JudgeClient, JudgeRequest, JudgeSettings, JudgeUnreachableError, cache_key, may_send_credentials, redact_url,
)
from test_wise import use_standins, write_standins


def _client(url, tmp_path, **kw):
    return JudgeClient(JudgeSettings(base_url=url, model="m", cache_dir=tmp_path / "cache", **kw))


def test_a_closed_loopback_port_fails_in_seconds_without_retrying(tmp_path):
    requests = [JudgeRequest(text=f"q{i}", image=b"\x89PNG" + bytes([i])) for i in range(64)]
    client = _client(f"http://127.0.0.1:{closed_port()}/v1", tmp_path)
    start = time.monotonic()
    with pytest.raises(JudgeUnreachableError, match="cannot be reached.*Connection refused"):
        client.ask_many(requests)
    assert time.monotonic() - start < 10
    assert client.stats.retries == 0 and client.stats.calls <= client.settings.workers  # one try per worker at most


def test_a_black_hole_stops_the_run_after_one_request_timed_out_on_every_attempt(tmp_path):
    with socket.socket() as hole:  # takes connections (the kernel does) and never answers
        hole.bind(("127.0.0.1", 0))
        hole.listen(64)
        client = _client(f"http://127.0.0.1:{hole.getsockname()[1]}/v1", tmp_path, timeout_s=0.2, max_retries=1,
                         workers=1)
        with pytest.raises(JudgeUnreachableError, match=r"has answered nothing.*no answer within 0.2 s in each of 2"):
            client.ask_many([JudgeRequest(text=f"q{i}") for i in range(8)])
    assert client.stats.calls == 2 and client.stats.retries == 1 and client.stats.failures == 1


def test_answers_received_before_the_endpoint_died_stay_cached(tmp_path):
    requests = [JudgeRequest(text=f"q{i}") for i in range(5)]
    with FakeOpenAIServer(answer=lambda r: "yes") as server:
        client = _client(server.base_url, tmp_path, workers=1)
        assert [r.text for r in client.ask_many(requests[:3])] == ["yes"] * 3
        url, port = server.base_url, server.port
    with pytest.raises(JudgeUnreachableError):
        _client(url, tmp_path, workers=1).ask_many(requests)
    with FakeOpenAIServer(answer=lambda r: "yes", port=port) as server:  # back on the same port: same endpoint
        replies = _client(url, tmp_path, workers=1).ask_many(requests)
        assert server.num_chat_requests == 2
    assert [r.cached for r in replies] == [True, True, True, False, False]


def test_the_cache_key_holds_the_endpoint_but_no_credentials():
    request = JudgeRequest(text="q", image=b"img")
    a, b = cache_key(request, "m", "http://a:8000/v1"), cache_key(request, "m", "http://b:8000/v1")
    assert a != b != cache_key(request, "n", "http://b:8000/v1")
    assert cache_key(request, "m", "http://user:pw@a:8000/v1") == a
    assert cache_key(JudgeRequest(text="q", image=b"other"), "m", "http://a:8000/v1") != a


def test_urls_are_redacted():
    assert redact_url("http://user:secret@judge.lan:8000/v1") == "http://judge.lan:8000/v1"
    assert redact_url("https://h/v1?api-key=secret&x=1") == "https://h/v1?api-key=***&x=***"
    assert redact_url("https://h/v1") == "https://h/v1"


@pytest.mark.parametrize("url, allow, sent", [
    ("https://judge.example/v1", False, True),
    ("http://127.0.0.1:8000/v1", False, True),
    ("http://localhost:8000/v1", False, True),
    ("http://judge.example/v1", False, False),
    ("http://10.0.0.7:8000/v1", False, False),
    ("http://10.0.0.7:8000/v1", True, True),
])
def test_the_key_goes_only_over_https_or_to_this_machine(tmp_path, monkeypatch, url, allow, sent):
    assert may_send_credentials(url, allow) == sent
    if url.startswith("https"):
        return  # the fake server speaks no TLS
    monkeypatch.setenv("MQEVAL_TEST_KEY", "sk-test")
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    with FakeOpenAIServer(answer=lambda r: "ok") as server:  # as the proxy every plain-http request goes through
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{server.port}")
        settings = JudgeSettings(base_url=url, model="m", cache_dir=tmp_path, api_key_env="MQEVAL_TEST_KEY",
                                 allow_http_key=allow)
        assert JudgeClient(settings).ask(JudgeRequest(text="q")).text == "ok"
        assert server.headers[0].get("Authorization") == ("Bearer sk-test" if sent else None)


@pytest.fixture
def wise_standins(tmp_path, monkeypatch):
    standins = write_standins(tmp_path / "data")
    use_standins(monkeypatch, standins)
    monkeypatch.setenv("MQEVAL_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "images" / "cultural_common_sense"
    out.mkdir(parents=True)
    for pid in range(1, 4):
        Image.new("RGB", (32, 32), (pid, 40, 0)).save(out / f"{pid}.png")
    return standins


def test_credentials_in_the_url_are_used_but_never_recorded(tmp_path, wise_standins):
    with FakeOpenAIServer(answer=lambda r: "Consistency: 2\nRealism: 1\nAesthetic Quality: 0") as server:
        url = server.base_url.replace("http://", "http://judge-user:s3cret@")
        result = run_cli("score", "wise", "--images", tmp_path / "images", "--judge-base-url", url, "--judge-model",
                         "X", "--data-dir", wise_standins, "--limit", 3, "--out", tmp_path / "scored")
        auth = {h.get("Authorization") for h in server.headers}
    assert result.code == 0, result.stderr
    assert auth == {"Basic " + base64.b64encode(b"judge-user:s3cret").decode()}  # loopback: sent
    written = "".join(p.read_text() for p in (tmp_path / "scored").glob("*.json*"))
    assert "s3cret" not in written + result.stdout + result.stderr and server.base_url in written
    cached = "".join(p.read_text() for p in (tmp_path / "cache").rglob("*.json"))
    assert cached and "s3cret" not in cached


def test_unanswered_requests_mark_the_result_incomplete(tmp_path, wise_standins):
    def answer(request):  # the judge never answers about prompt 2
        if "prompt 2" in json.dumps(request):
            return Reply(status=503, headers={"retry-after-ms": "1"})
        return "Consistency: 2\nRealism: 1\nAesthetic Quality: 0"

    with FakeOpenAIServer(answer=answer) as server:
        result = run_cli("score", "wise", "--images", tmp_path / "images", "--judge-base-url", server.base_url,
                         "--judge-model", "X", "--data-dir", wise_standins, "--limit", 3, "--out", tmp_path / "scored")
    assert result.code == 0, result.stderr
    record = json.loads((tmp_path / "scored" / "results.json").read_text())
    assert record["metrics"]["judge_failures"] == 1
    assert "1 judge request(s) unanswered" in record["incomplete"]
    assert "* INCOMPLETE: " in result.stdout and "*  higher" in result.stdout


def test_judge_timeout_bounds_the_wait_on_an_endpoint_that_never_answers(tmp_path, wise_standins):
    with socket.socket() as hole:
        hole.bind(("127.0.0.1", 0))
        hole.listen(64)
        start = time.monotonic()
        result = run_cli("score", "wise", "--images", tmp_path / "images", "--judge-base-url",
                         f"http://127.0.0.1:{hole.getsockname()[1]}/v1", "--judge-model", "X", "--data-dir",
                         wise_standins, "--limit", 3, "--out", tmp_path / "scored", "--judge-timeout", "0.3")
        elapsed = time.monotonic() - start
    assert result.code == 2 and result.stderr.strip().splitlines()[-1].startswith("Error:")
    assert "no answer within 0.3 s" in result.stderr and elapsed < 30
