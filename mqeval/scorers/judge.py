"""A client for any OpenAI-compatible chat-completions endpoint that judges images, with a response cache.

- One request = one text instruction (+ optional system text) and at most one image, sent as a base64 data URL
  (PNG or JPEG, sniffed from the bytes), temperature 0.
- Transport: stdlib urllib (no extra dependency). Timeouts, and up to `max_retries` retries with exponential
  backoff (or the server's Retry-After) on 429, 5xx, timeouts and dropped connections. An endpoint that cannot be
  reached at all (connection refused, unknown host, no route) stops the run at the first request, and so does one
  that fails `max_consecutive_failures` requests in a row before answering any; 401/403/404 stop the run too (a
  wrong key, model or URL would fail every request). Other 4xx answers are counted as failures. Answers already
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
import http.client
import json
import os
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from mqeval.errors import UserError
from mqeval.fileio import write_json
from mqeval.paths import cache_dir

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_JUDGE_MODEL = "gpt-4o-2024-05-13"
CACHE_FORMAT = 2  # 2: the endpoint is part of the key


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
    timeout_s: float = 120.0
    max_retries: int = 3
    backoff_s: float = 2.0
    max_backoff_s: float = 60.0
    cache_dir: Optional[Path] = None  # None: <mqeval cache>/judge
    use_cache: bool = True
    workers: int = 8
    allow_http_key: bool = False  # send credentials over plain http to a host other than this machine
    max_consecutive_failures: int = 4  # requests failed in a row, none answered yet: the endpoint is down

    def __post_init__(self) -> None:
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
    def from_score_options(cls, options: Any, default_model: str = DEFAULT_JUDGE_MODEL,
                           **overrides: Any) -> "JudgeSettings":
        """Settings from a ScoreOptions (judge_base_url, judge_model, judge_api_key_env, cache_dir)."""
        cache_root = getattr(options, "cache_dir", None)
        values: dict[str, Any] = dict(
            base_url=getattr(options, "judge_base_url", None) or DEFAULT_BASE_URL,
            model=getattr(options, "judge_model", None) or default_model,
            api_key_env=getattr(options, "judge_api_key_env", None) or "OPENAI_API_KEY",
            cache_dir=Path(cache_root) / "judge" if cache_root else None,
            allow_http_key=bool(getattr(options, "judge_allow_http_key", False)),
        )
        values.update(overrides)
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
    calls: int = 0  # HTTP requests sent (retries included)
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


def answer_text(body: bytes) -> str:
    """The assistant text of a chat-completions response; ValueError if the body is not one."""
    try:
        data = json.loads(body)
        content = data["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise ValueError(f"malformed chat-completions response ({exc!r}): {body[:200]!r}") from None
    if isinstance(content, list):  # some servers return content parts
        content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
    if not isinstance(content, str):
        raise ValueError(f"malformed chat-completions response: content is {type(content).__name__}")
    return content


class _Retryable(Exception):
    def __init__(self, message: str, retry_after: Optional[float] = None):
        super().__init__(message)
        self.retry_after = retry_after


class JudgeClient:
    def __init__(
        self,
        settings: JudgeSettings,
        opener: Callable[..., Any] = urllib.request.urlopen,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.settings = settings
        self._opener = opener
        self._sleep = sleep
        self._lock = threading.Lock()
        self.stats = JudgeStats()
        self._url, self._userinfo = split_credentials(settings.base_url)
        self._api_key = os.environ.get(settings.api_key_env, "").strip()
        parts = urllib.parse.urlsplit(self._url)
        host = parts.hostname or ""
        if not self._api_key and host.endswith("openai.com"):
            raise JudgeConfigError(
                f"The judge endpoint {settings.public_url} needs an API key: set the environment variable "
                f"{settings.api_key_env} (or point --judge-base-url at an OpenAI-compatible server of your own)."
            )
        secure = parts.scheme == "https" or is_loopback(host) or settings.allow_http_key
        self._withheld = None
        if (self._api_key or self._userinfo) and not secure:
            self._withheld = (f"credentials were not sent: {settings.public_url} is plain http to another machine "
                              "(use https, or pass --judge-allow-http-key)")
            self._api_key, self._userinfo = "", None
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
    def _post(self, payload: dict[str, Any]) -> str:
        url = self._url.rstrip("/") + "/chat/completions"
        public = self.settings.public_url.rstrip("/") + "/chat/completions"
        headers = {"Content-Type": "application/json", "User-Agent": "mqeval-judge"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        elif self._userinfo:
            headers["Authorization"] = "Basic " + base64.b64encode(self._userinfo.encode()).decode("ascii")
        withheld = f" ({self._withheld})" if self._withheld else ""
        request = urllib.request.Request(url, data=json.dumps(payload).encode(), headers=headers, method="POST")
        self._count("calls")
        try:
            with self._opener(request, timeout=self.settings.timeout_s) as response:
                body = response.read()
        except urllib.error.HTTPError as exc:
            status = exc.code
            detail = exc.read()[:300]
            if status == 429 or 500 <= status < 600:
                raise _Retryable(f"HTTP {status}", _retry_after(exc.headers)) from None
            if status in (401, 403):
                raise JudgeConfigError(
                    f"The judge endpoint {self.settings.public_url} refused the request (HTTP {status}): check the key "
                    f"in ${self.settings.api_key_env}{withheld}. Server said: {detail!r}"
                ) from None
            if status == 404:
                raise JudgeConfigError(
                    f"HTTP 404 from {public}: is --judge-base-url right (it should end in /v1) and does the server "
                    f"serve model '{self.settings.model}'? Server said: {detail!r}"
                ) from None
            raise RuntimeError(f"HTTP {status}: {detail!r}") from None
        except (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError,
                http.client.HTTPException, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, (ConnectionRefusedError, socket.gaierror)) or (
                    isinstance(reason, OSError) and reason.errno in _UNREACHABLE):
                raise JudgeUnreachableError(
                    f"The judge endpoint {self.settings.public_url} cannot be reached: {reason}. Start the server or "
                    "fix --judge-base-url; answers received so far are cached."
                ) from None
            raise _Retryable(f"{type(exc).__name__}: {reason}") from None
        return answer_text(body)

    def _backoff(self, attempt: int, retry_after: Optional[float]) -> float:
        delay = retry_after if retry_after is not None else self.settings.backoff_s * (2 ** attempt)
        return max(0.0, min(delay, self.settings.max_backoff_s))

    # ---- public --------------------------------------------------------------------------------------------
    def ask(self, request: JudgeRequest) -> JudgeReply:
        if self._fatal is not None:
            raise self._fatal
        key = cache_key(request, self.settings.model, self.settings.base_url)
        cached = self._cache_get(key)
        if cached is not None:
            self._count("cache_hits")
            return JudgeReply(cached, cached=True)
        payload: dict[str, Any] = {
            "model": self.settings.model,
            "messages": build_messages(request),
            "temperature": 0.0,
            "max_tokens": request.max_tokens,
        }
        payload.update(dict(request.extra_body))
        error = "no attempt made"
        for attempt in range(self.settings.max_retries + 1):
            if self._fatal is not None:
                raise self._fatal
            try:
                answer = self._post(payload)
            except JudgeConfigError as exc:
                with self._lock:
                    self._fatal = self._fatal or exc
                raise self._fatal from None
            except _Retryable as exc:
                error = str(exc)
                if attempt < self.settings.max_retries:
                    self._count("retries")
                    self._sleep(self._backoff(attempt, exc.retry_after))
                    continue
                break
            except (RuntimeError, ValueError) as exc:
                error = str(exc)
                break
            self._cache_put(key, request, answer)
            with self._lock:
                self._answered += 1
                self._failures_in_a_row = 0
            return JudgeReply(answer)
        self._count("failures")
        with self._lock:
            self._failures_in_a_row += 1
            if not self._answered and self._failures_in_a_row >= self.settings.max_consecutive_failures:
                self._fatal = self._fatal or JudgeUnreachableError(
                    f"The judge endpoint {self.settings.public_url} failed {self._failures_in_a_row} requests in a row "
                    f"and answered none (last: {error}); answers received so far are cached.")
        return JudgeReply(None, error=error)

    def probe(self) -> None:
        """One short text request, outside the cache: raise a UserError unless the endpoint answers."""
        payload = {"model": self.settings.model, "temperature": 0.0, "max_tokens": 5,
                   "messages": [{"role": "user", "content": [{"type": "text", "text": "Answer with the word OK."}]}]}
        try:
            self._post(payload)
        except _Retryable as exc:
            raise JudgeUnreachableError(f"The judge endpoint {self.settings.public_url} did not answer a test "
                                        f"request: {exc}") from None
        except (RuntimeError, ValueError) as exc:
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

    def preflight(self, options: Any) -> None:
        super().preflight(options)  # type: ignore[misc]
        self.instructions(options)  # type: ignore[attr-defined]
        default = self.options.judge_model  # type: ignore[attr-defined]
        JudgeClient(JudgeSettings.from_score_options(options, default_model=default)).probe()


_UNREACHABLE = {errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH}


def _retry_after(headers: Any) -> Optional[float]:
    value = headers.get("Retry-After") if headers is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
