"""A client for any OpenAI-compatible chat-completions endpoint that judges images, with a response cache.

- One request = one text instruction (+ optional system text) and at most one image, sent as a base64 data URL
  (PNG or JPEG, sniffed from the bytes), temperature 0.
- Transport: the official `openai` client (`chat.completions.create`) over its own httpx2 client, which mqeval
  subclasses only to count every HTTP request and to tell an endpoint that cannot be reached from one that is slow.
- Retries are the SDK's: up to `max_retries` (2) more attempts on timeouts, dropped connections, 408, 409, 429 and
  5xx, after 0.5 s, 1 s, ... (at most 8 s, minus up to 25% jitter) or the server's Retry-After (at most 2 min).
  Not retried: an endpoint that cannot be reached at all (connection refused, unknown host, no route) stops the run
  at the first request; 401/403/404 stop the run too (a wrong key, model or URL would fail every request); other
  4xx answers and malformed bodies are counted as failures.
- Waiting is bounded: each attempt waits at most `timeout_s` for the answer (10 s to connect). An endpoint that has
  answered nothing stops the run as soon as one request has timed out on every attempt, so a black hole costs at
  most (max_retries + 1) x timeout_s + 1.5 s (6 min with the defaults; `probe`: one attempt, timeout_s), whatever
  the number of workers; it also stops after `max_consecutive_failures` failed requests in a row. Answers already
  received stay in the cache, so a rerun continues where the run stopped.
- Credentials: the API key (and a `user:password@` in the URL, sent as basic auth) goes only over https or to this
  machine (loopback), unless `allow_http_key` (--judge-allow-http-key); URLs are recorded without credentials.
- Cache: one JSON file per answer under `<cache>/judge/`, keyed by the sha256 of (endpoint, judge model, image
  bytes, instruction text, instruction version, request parameters, attempt). Only successful answers are cached,
  so a rerun costs nothing and retries only what failed. Writes are atomic.
- Counters: HTTP calls, cache hits, retries, failures and unparseable answers (the scorer reports the last).
"""
from __future__ import annotations

import base64
import errno
import hashlib
import json
import os
import socket
import threading
import urllib.parse
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import httpx2
import openai

from mqeval.contract.scoring import ScoreOptions
from mqeval.errors import UserError
from mqeval.fileio import write_json
from mqeval.paths import cache_dir

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_JUDGE_MODEL = "gpt-4o-2024-05-13"
CACHE_FORMAT = 2  # 2: the endpoint is part of the key
CONNECT_TIMEOUT_S = 10.0


class JudgeConfigError(UserError):
    """The endpoint refuses every request (bad key, model or URL)."""


class JudgeUnreachableError(JudgeConfigError):
    """The endpoint cannot be reached, or fails every request."""


def split_credentials(url: str) -> tuple[str, Optional[str]]:
    """(url without `user:password@`, "user:password" or None)."""
    parts = urllib.parse.urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, None
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    userinfo = urllib.parse.unquote(parts.username or "") + ":" + urllib.parse.unquote(parts.password or "")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc)), userinfo


def redact_url(url: str) -> str:
    """The URL as it may be written to results and messages: no credentials, no query string values."""
    bare, _ = split_credentials(url)
    parts = urllib.parse.urlsplit(bare)
    if parts.query:
        query = "&".join(f"{item.partition('=')[0]}=***" for item in parts.query.split("&"))
        bare = urllib.parse.urlunsplit(parts._replace(query=query))
    return bare


def may_send_credentials(url: str, allow_http_key: bool) -> bool:
    """Credentials go over https, to this machine, or anywhere when the user allows plain http."""
    parts = urllib.parse.urlsplit(url)
    return parts.scheme == "https" or is_loopback(parts.hostname or "") or allow_http_key


def is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class JudgeSettings:
    base_url: str = DEFAULT_BASE_URL
    model: str = DEFAULT_JUDGE_MODEL
    api_key_env: str = "OPENAI_API_KEY"
    timeout_s: float = 120.0  # per attempt
    max_retries: int = 2  # more attempts after a timeout, dropped connection, 408, 409, 429 or 5xx
    cache_dir: Optional[Path] = None  # None: <mqeval cache>/judge
    use_cache: bool = True
    workers: int = 8
    allow_http_key: bool = False  # send credentials over plain http to a host other than this machine
    max_consecutive_failures: int = 4  # requests failed in a row, none answered yet: the endpoint is down

    def __post_init__(self) -> None:
        if self.timeout_s <= 0 or self.max_retries < 0:
            raise JudgeConfigError(f"judge timeout must be > 0 and retries >= 0, got {self.timeout_s}, "
                                   f"{self.max_retries}")
        parts = urllib.parse.urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise JudgeConfigError(f"--judge-base-url must be an http(s) URL, got {redact_url(self.base_url)!r}")
        try:
            parts.port
        except ValueError:
            raise JudgeConfigError(f"--judge-base-url has an invalid port: {redact_url(self.base_url)!r}") from None
        if not self.model.strip():
            raise JudgeConfigError("--judge-model must not be empty")

    @property
    def public_url(self) -> str:
        return redact_url(self.base_url)

    @classmethod
    def from_options(cls, options: ScoreOptions, default_model: str = DEFAULT_JUDGE_MODEL,
                     workers: Optional[int] = None) -> "JudgeSettings":
        """Settings from the user's JudgeOptions (None values: the benchmark's default model, the OpenAI API, the
        default timeout) and the scoring cache folder."""
        judge = options.judge
        values: dict[str, Any] = dict(
            base_url=judge.base_url or DEFAULT_BASE_URL, model=judge.model or default_model,
            api_key_env=judge.api_key_env, allow_http_key=judge.allow_http_key,
            cache_dir=Path(options.cache_dir) / "judge" if options.cache_dir else None,
        )
        if judge.timeout_s is not None:
            values["timeout_s"] = float(judge.timeout_s)
        if workers is not None:
            values["workers"] = workers
        return cls(**values)


@dataclass(frozen=True)
class JudgeRequest:
    text: str
    image: Optional[bytes] = None
    system: Optional[str] = None
    max_tokens: int = 300
    detail: Optional[str] = None  # OpenAI image detail ("low", "high", "auto"); None: not sent
    extra_body: tuple[tuple[str, Any], ...] = ()  # extra top-level request fields, e.g. chat_template_kwargs
    instruction_version: str = ""  # changes the cache key when the instruction template changes
    attempt: int = 0  # re-asking after an unparseable answer must not hit the cached unparseable answer


@dataclass(frozen=True)
class JudgeReply:
    text: Optional[str]  # None when the request failed
    cached: bool = False
    error: Optional[str] = None


@dataclass
class JudgeStats:
    calls: int = 0  # HTTP requests sent (retries included, cache hits not)
    cache_hits: int = 0
    retries: int = 0
    failures: int = 0  # requests that produced no answer after all retries
    unparseable: int = 0  # answers the scorer could not read (reported by the scorer)

    def as_metrics(self, prefix: str = "judge_") -> dict[str, float]:
        return {f"{prefix}{key}": float(value) for key, value in asdict(self).items()}


def image_data_url(image: bytes) -> str:
    mime = "image/jpeg" if image[:3] == b"\xff\xd8\xff" else "image/png"
    return f"data:{mime};base64,{base64.b64encode(image).decode('ascii')}"


def build_messages(request: JudgeRequest) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    if request.system is not None:
        messages.append({"role": "system", "content": [{"type": "text", "text": request.system}]})
    content: list[dict[str, Any]] = [{"type": "text", "text": request.text}]
    if request.image is not None:
        image_url: dict[str, Any] = {"url": image_data_url(request.image)}
        if request.detail:
            image_url["detail"] = request.detail
        content.append({"type": "image_url", "image_url": image_url})
    messages.append({"role": "user", "content": content})
    return messages


def cache_key(request: JudgeRequest, model: str, endpoint: str = DEFAULT_BASE_URL) -> str:
    fields = {
        "format": CACHE_FORMAT,
        "endpoint": redact_url(endpoint).rstrip("/"),
        "image_sha256": hashlib.sha256(request.image).hexdigest() if request.image is not None else None,
        "system": request.system,
        "text": request.text,
        "model": model,
        "instruction_version": request.instruction_version,
        "max_tokens": request.max_tokens,
        "detail": request.detail,
        "extra_body": [list(item) for item in request.extra_body],
        "attempt": request.attempt,
    }
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()


def answer_text(completion: Any) -> str:
    """The assistant text of a parsed chat completion; ValueError if it is not one (the SDK parses leniently)."""
    try:
        content = completion.choices[0].message.content
    except (AttributeError, IndexError, TypeError) as exc:
        raise ValueError(f"malformed chat-completions response ({exc!r})") from None
    if isinstance(content, list):  # some servers return content parts
        content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
    if not isinstance(content, str):
        raise ValueError(f"malformed chat-completions response: content is {type(content).__name__}")
    return content


class _Failed(Exception):
    """A request that got no answer after the SDK's retries (counted, not fatal by itself)."""

    def __init__(self, message: str, timed_out: bool = False):
        super().__init__(message)
        self.timed_out = timed_out


class _CountingHttpClient(openai.DefaultHttpxClient):
    """The SDK's default httpx2 client (its limits, proxies from the environment) that reports every request it
    sends, and raises JudgeUnreachableError when the endpoint cannot be reached at all: the SDK passes such
    application errors on unchanged instead of retrying them, so a dead endpoint fails in milliseconds."""

    def __init__(self, on_send: Callable[[httpx2.Request], None], public_url: str, **kwargs: Any):
        super().__init__(**kwargs)
        self._on_send = on_send
        self._public_url = public_url

    def send(self, request: httpx2.Request, **kwargs: Any) -> httpx2.Response:
        self._on_send(request)
        try:
            return super().send(request, **kwargs)
        except httpx2.ConnectError as exc:
            reason = _unreachable_reason(exc)
            if reason is None:
                raise
            raise JudgeUnreachableError(
                f"The judge endpoint {self._public_url} cannot be reached: {reason}. Start the server or fix "
                "--judge-base-url; answers received so far are cached.") from None


class JudgeClient:
    def __init__(self, settings: JudgeSettings):
        self.settings = settings
        self._lock = threading.Lock()
        self.stats = JudgeStats()
        url, userinfo = split_credentials(settings.base_url)
        api_key = os.environ.get(settings.api_key_env, "").strip()
        if not api_key and (urllib.parse.urlsplit(url).hostname or "").endswith("openai.com"):
            raise JudgeConfigError(
                f"The judge endpoint {settings.public_url} needs an API key: set the environment variable "
                f"{settings.api_key_env} (or point --judge-base-url at an OpenAI-compatible server of your own)."
            )
        self._withheld = ""
        if (api_key or userinfo) and not may_send_credentials(url, settings.allow_http_key):
            self._withheld = (f" (credentials were not sent: {settings.public_url} is plain http to another machine; "
                              "use https, or pass --judge-allow-http-key)")
            api_key, userinfo = "", None
        # The SDK sends `Bearer <api_key>`; without a key the header is basic auth or left out (the SDK needs a
        # non-empty api_key even then, which the per-request header replaces).
        self._auth_headers: dict[str, Any] = {}
        if not api_key:
            self._auth_headers["Authorization"] = (
                "Basic " + base64.b64encode(userinfo.encode()).decode("ascii") if userinfo else openai.omit)
        self._openai = openai.OpenAI(
            base_url=url, api_key=api_key or "unused", max_retries=settings.max_retries,
            timeout=httpx2.Timeout(settings.timeout_s, connect=min(settings.timeout_s, CONNECT_TIMEOUT_S)),
            http_client=_CountingHttpClient(self._on_send, settings.public_url))
        self._fatal: Optional[JudgeConfigError] = None
        self._failures_in_a_row = 0
        self._answered = 0
        self.cache_root = settings.cache_dir or (cache_dir() / "judge")

    # ---- counters ------------------------------------------------------------------------------------------
    def _count(self, name: str, n: int = 1) -> None:
        with self._lock:
            setattr(self.stats, name, getattr(self.stats, name) + n)

    def note_unparseable(self, n: int = 1) -> None:
        self._count("unparseable", n)

    # ---- cache ---------------------------------------------------------------------------------------------
    def _cache_path(self, key: str) -> Path:
        return self.cache_root / key[:2] / f"{key}.json"

    def _cache_get(self, key: str) -> Optional[str]:
        path = self._cache_path(key)
        if not (self.settings.use_cache and path.is_file()):
            return None
        try:
            return json.loads(path.read_text(encoding="utf-8"))["answer"]
        except (ValueError, KeyError):
            return None  # a damaged entry is asked again and overwritten

    def _cache_put(self, key: str, request: JudgeRequest, answer: str) -> None:
        if not self.settings.use_cache:
            return
        write_json(
            self._cache_path(key),
            {
                "format": CACHE_FORMAT,
                "endpoint": self.settings.public_url,
                "model": self.settings.model,
                "instruction_version": request.instruction_version,
                "text_sha256": hashlib.sha256(request.text.encode()).hexdigest(),
                "attempt": request.attempt,
                "answer": answer,
            },
        )

    # ---- transport -----------------------------------------------------------------------------------------
    def _on_send(self, request: httpx2.Request) -> None:
        self._count("calls")
        if request.headers.get("x-stainless-retry-count", "0") != "0":  # the SDK numbers its attempts
            self._count("retries")

    def _complete(self, client: openai.OpenAI, request: JudgeRequest) -> str:
        """The answer text; JudgeConfigError if the endpoint refuses every request, _Failed if this one failed."""
        settings = self.settings
        try:
            raw = client.chat.completions.with_raw_response.create(
                model=settings.model, messages=build_messages(request), temperature=0.0,  # type: ignore[arg-type]
                max_tokens=request.max_tokens, extra_body=dict(request.extra_body) or None,
                extra_headers=self._auth_headers or None)
        except openai.APIStatusError as exc:
            status, said = exc.status_code, exc.response.text[:300]
            if status in (401, 403):
                raise JudgeConfigError(
                    f"The judge endpoint {settings.public_url} refused the request (HTTP {status}): check the key "
                    f"in ${settings.api_key_env}{self._withheld}. Server said: {said!r}") from None
            if status == 404:
                raise JudgeConfigError(
                    f"HTTP 404 from {settings.public_url.rstrip('/')}/chat/completions: is --judge-base-url right "
                    f"(it should end in /v1) and does the server serve model '{settings.model}'? Server said: "
                    f"{said!r}") from None
            raise _Failed(f"HTTP {status}: {said!r}") from None
        except openai.APITimeoutError:
            raise _Failed(f"no answer within {settings.timeout_s:g} s", timed_out=True) from None
        except openai.APIConnectionError as exc:
            raise _Failed(f"connection failed: {exc.__cause__ or exc}") from None
        try:
            return answer_text(raw.parse())
        except ValueError as exc:  # also the SDK's JSONDecodeError on a body that is not JSON
            raise _Failed(f"malformed chat-completions response ({exc}): {raw.http_response.text[:200]!r}") from None

    # ---- public --------------------------------------------------------------------------------------------
    def ask(self, request: JudgeRequest) -> JudgeReply:
        if self._fatal is not None:
            raise self._fatal
        key = cache_key(request, self.settings.model, self.settings.base_url)
        cached = self._cache_get(key)
        if cached is not None:
            self._count("cache_hits")
            return JudgeReply(cached, cached=True)
        try:
            answer = self._complete(self._openai, request)
        except JudgeConfigError as exc:
            with self._lock:
                self._fatal = self._fatal or exc
            raise self._fatal from None
        except _Failed as exc:
            self._count("failures")
            with self._lock:
                self._failures_in_a_row += 1
                if not self._answered and exc.timed_out:
                    self._fatal = self._fatal or JudgeUnreachableError(
                        f"The judge endpoint {self.settings.public_url} has answered nothing, and one request got "
                        f"{exc} in each of {self.settings.max_retries + 1} attempts; answers received so far are "
                        "cached.")
                elif not self._answered and self._failures_in_a_row >= self.settings.max_consecutive_failures:
                    self._fatal = self._fatal or JudgeUnreachableError(
                        f"The judge endpoint {self.settings.public_url} failed {self._failures_in_a_row} requests "
                        f"in a row and answered none (last: {exc}); answers received so far are cached.")
            return JudgeReply(None, error=str(exc))
        self._cache_put(key, request, answer)
        with self._lock:
            self._answered += 1
            self._failures_in_a_row = 0
        return JudgeReply(answer)

    def probe(self) -> None:
        """One short text request, one attempt, outside the cache: raise a UserError unless the endpoint answers."""
        request = JudgeRequest(text="Answer with the word OK.", max_tokens=5)
        try:
            self._complete(self._openai.with_options(max_retries=0), request)
        except _Failed as exc:
            if exc.timed_out:
                raise JudgeUnreachableError(f"The judge endpoint {self.settings.public_url} did not answer a test "
                                            f"request: {exc}") from None
            raise JudgeConfigError(f"The judge endpoint {self.settings.public_url} answered a test request "
                                   f"with an error: {exc}") from None

    def ask_many(self, requests: Sequence[JudgeRequest], workers: Optional[int] = None) -> list[JudgeReply]:
        """Answers in the order of `requests`; cached ones cost nothing. A dead endpoint raises (see the module)."""
        from tqdm.auto import tqdm

        workers = max(1, workers or self.settings.workers)
        with tqdm(total=len(requests), desc="judging", unit="req", disable=None if len(requests) > 1 else True) as bar:
            if workers == 1 or len(requests) <= 1:
                replies = []
                for request in requests:
                    replies.append(self.ask(request))
                    bar.update()
            else:
                with ThreadPoolExecutor(max_workers=workers) as pool:
                    futures = [pool.submit(self.ask, r) for r in requests]
                    for _ in as_completed(futures):
                        bar.update()
                    replies = [f.result() for f in futures]
        if self._fatal is not None:
            raise self._fatal
        return replies


class JudgedPreflight:
    """Mix-in for judged benchmarks (before Benchmark in the bases): before generation, the data files, the judge
    instructions (`self.instructions(options)`), then one test request with the settings scoring will use."""

    def preflight(self, options: ScoreOptions) -> None:
        super().preflight(options)  # type: ignore[misc]
        self.instructions(options)  # type: ignore[attr-defined]
        default = self.options.judge_model  # type: ignore[attr-defined]
        JudgeClient(JudgeSettings.from_options(options, default_model=default)).probe()


_UNREACHABLE = {errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH}


def _unreachable_reason(exc: BaseException) -> Optional[OSError]:
    """The OS error under an httpx2 ConnectError when it says the endpoint cannot be reached (refused, unknown
    host, no route); None for other connection failures (those are retried)."""
    seen: Optional[BaseException] = exc
    while seen is not None:
        if isinstance(seen, (ConnectionRefusedError, socket.gaierror)) or (
                isinstance(seen, OSError) and seen.errno in _UNREACHABLE):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None
