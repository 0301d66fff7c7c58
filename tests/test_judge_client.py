"""mqeval.scorers.judge (the openai client) against a real HTTP server on 127.0.0.1: payload, retries, timeouts,
failures, cache."""
from __future__ import annotations

import base64
import json
import time

import pytest

from fake_openai_server import FakeOpenAIServer, Reply
from mqeval.scorers.judge import (
    JudgeClient,
    JudgeConfigError,
    JudgeRequest,
    JudgeSettings,
    cache_key,
)

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 16
SOON = {"retry-after-ms": "1"}  # the server asks for a 1 ms wait, so retries cost no test time


def client_for(server, tmp_path, **overrides) -> JudgeClient:
    values = dict(base_url=server.base_url, model="judge-x", api_key_env="MQEVAL_TEST_KEY",
                  cache_dir=tmp_path / "judge", timeout_s=5.0)
    return JudgeClient(JudgeSettings(**{**values, **overrides}))


def test_payload_is_openai_chat_with_image_data_url(tmp_path, monkeypatch):
    monkeypatch.setenv("MQEVAL_TEST_KEY", "sk-test")
    with FakeOpenAIServer(answer=lambda r: "ok", api_key="sk-test") as server:
        reply = client_for(server, tmp_path).ask(
            JudgeRequest(text="rate it", image=PNG, system="be strict", max_tokens=7, detail="low",
                         extra_body=(("chat_template_kwargs", {"enable_thinking": False}),)))
        assert reply.text == "ok" and not reply.cached
        body = server.requests[0]
    assert body["model"] == "judge-x" and body["temperature"] == 0 and body["max_tokens"] == 7
    assert body["chat_template_kwargs"] == {"enable_thinking": False}
    system, user = body["messages"]
    assert system["role"] == "system" and system["content"][0]["text"] == "be strict"
    text, image = user["content"]
    assert text == {"type": "text", "text": "rate it"}
    assert image["image_url"]["detail"] == "low"
    url = image["image_url"]["url"]
    assert url.startswith("data:image/png;base64,") and base64.b64decode(url.split(",", 1)[1]) == PNG


def test_jpeg_is_sent_as_jpeg(tmp_path):
    with FakeOpenAIServer(answer=lambda r: "1") as server:
        client_for(server, tmp_path).ask(JudgeRequest(text="q", image=JPEG))
        url = server.requests[0]["messages"][0]["content"][1]["image_url"]["url"]
    assert url.startswith("data:image/jpeg;base64,")


def test_429_and_5xx_are_retried_then_succeed(tmp_path):
    with FakeOpenAIServer(answer=lambda r: "fine") as server:
        server.script += [Reply(status=429, headers=SOON), Reply(status=503, headers=SOON)]
        client = client_for(server, tmp_path)
        reply = client.ask(JudgeRequest(text="q", image=PNG))
        assert reply.text == "fine"
        assert server.num_chat_requests == 3
    assert client.stats.calls == 3 and client.stats.retries == 2 and client.stats.failures == 0


def test_gives_up_after_max_retries(tmp_path):
    with FakeOpenAIServer() as server:
        server.script += [Reply(status=500, headers=SOON)] * 5
        client = client_for(server, tmp_path, max_retries=3)
        reply = client.ask(JudgeRequest(text="q", image=PNG))
        assert reply.text is None and "500" in reply.error
        assert server.num_chat_requests == 4
    assert client.stats.failures == 1 and client.stats.retries == 3 and client.stats.calls == 4


def test_timeout_is_retried(tmp_path):
    with FakeOpenAIServer(answer=lambda r: "late but fine") as server:
        server.script.append(Reply(content="too slow", delay=1.0))
        client = client_for(server, tmp_path, timeout_s=0.3)
        reply = client.ask(JudgeRequest(text="q", image=PNG))
    assert reply.text == "late but fine"
    assert client.stats.retries == 1 and client.stats.calls == 2


def test_the_servers_retry_after_is_honoured(tmp_path):
    with FakeOpenAIServer(answer=lambda r: "x") as server:
        server.script.append(Reply(status=429, headers={"Retry-After": "0.4"}))
        start = time.monotonic()
        assert client_for(server, tmp_path).ask(JudgeRequest(text="q")).text == "x"
    assert time.monotonic() - start >= 0.4 and server.num_chat_requests == 2


def test_other_4xx_answers_are_counted_failures_not_retried(tmp_path):
    with FakeOpenAIServer() as server:
        server.script.append(Reply(status=422))
        client = client_for(server, tmp_path)
        reply = client.ask(JudgeRequest(text="q"))
        assert server.num_chat_requests == 1
    assert reply.text is None and "HTTP 422" in reply.error
    assert client.stats.failures == 1 and client.stats.retries == 0


def test_bad_key_stops_the_run(tmp_path, monkeypatch):
    monkeypatch.setenv("MQEVAL_TEST_KEY", "wrong")
    with FakeOpenAIServer(api_key="right") as server:
        with pytest.raises(JudgeConfigError, match="MQEVAL_TEST_KEY"):
            client_for(server, tmp_path).ask(JudgeRequest(text="q"))


def test_openai_without_key_is_a_user_error(monkeypatch):
    monkeypatch.delenv("MQEVAL_TEST_KEY", raising=False)
    with pytest.raises(JudgeConfigError, match="MQEVAL_TEST_KEY"):
        JudgeClient(JudgeSettings(api_key_env="MQEVAL_TEST_KEY"))


@pytest.mark.parametrize("body", [b"<html>proxy error</html>", b'{"choices": []}', b'{"x": 1}', b"[1, 2]",
                                  b'{"choices": [{"message": {"content": 7}}]}'])
def test_malformed_body_is_a_counted_failure_not_retried(tmp_path, body):
    with FakeOpenAIServer() as server:
        server.script.append(Reply(body=body))
        client = client_for(server, tmp_path)
        reply = client.ask(JudgeRequest(text="q"))
        assert server.num_chat_requests == 1
    assert reply.text is None and "malformed" in reply.error and client.stats.failures == 1
    assert body[:10].decode() in reply.error  # the start of what the server sent, for the user


def test_content_given_as_parts_is_joined(tmp_path):
    parts = [{"type": "text", "text": "a"}, {"text": "b"}, "junk"]
    with FakeOpenAIServer() as server:
        server.script.append(Reply(body=json.dumps({"choices": [{"message": {"content": parts}}]}).encode()))
        assert client_for(server, tmp_path).ask(JudgeRequest(text="q")).text == "ab"


def test_second_run_is_served_from_cache_with_zero_http_calls(tmp_path):
    requests = [JudgeRequest(text=f"question {i}", image=PNG, instruction_version="v1") for i in range(6)]
    with FakeOpenAIServer(answer=lambda r: r["messages"][-1]["content"][0]["text"].upper()) as server:
        first = client_for(server, tmp_path).ask_many(requests, workers=3)
        assert server.num_chat_requests == 6
        second_client = client_for(server, tmp_path)
        second = second_client.ask_many(requests, workers=3)
        assert server.num_chat_requests == 6  # nothing new went over the wire
    assert [r.text for r in first] == [f"QUESTION {i}" for i in range(6)] == [r.text for r in second]
    assert all(r.cached for r in second) and second_client.stats.cache_hits == 6 and second_client.stats.calls == 0


def test_cache_key_covers_image_text_model_version_and_attempt():
    base = JudgeRequest(text="t", image=PNG, instruction_version="v1")
    key = cache_key(base, "m")
    variants = [
        cache_key(JudgeRequest(text="t", image=JPEG, instruction_version="v1"), "m"),
        cache_key(JudgeRequest(text="t2", image=PNG, instruction_version="v1"), "m"),
        cache_key(base, "other-model"),
        cache_key(JudgeRequest(text="t", image=PNG, instruction_version="v2"), "m"),
        cache_key(JudgeRequest(text="t", image=PNG, instruction_version="v1", attempt=1), "m"),
    ]
    assert len({key, *variants}) == 6
    assert cache_key(JudgeRequest(text="t", image=PNG, instruction_version="v1"), "m") == key


def test_failures_are_not_cached(tmp_path):
    with FakeOpenAIServer(answer=lambda r: "good") as server:
        server.script += [Reply(status=400)]
        client = client_for(server, tmp_path)
        assert client.ask(JudgeRequest(text="q")).text is None
        assert client.ask(JudgeRequest(text="q")).text == "good"
        assert server.num_chat_requests == 2


@pytest.mark.parametrize("bad", [dict(timeout_s=0), dict(timeout_s=-1.0), dict(max_retries=-1)])
def test_a_wait_that_is_not_bounded_is_refused(bad):
    with pytest.raises(JudgeConfigError, match="judge timeout"):
        JudgeSettings(base_url="http://127.0.0.1:1/v1", **bad)
