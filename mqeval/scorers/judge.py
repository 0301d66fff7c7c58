"""A client for any OpenAI-compatible chat-completions endpoint that judges images, with a response cache.

- One request = one text instruction (+ optional system text) and at most one image, sent as a base64 data URL
  (PNG or JPEG, sniffed from the bytes), temperature 0.
- Transport: stdlib urllib (no extra dependency). Timeouts, and up to `max_retries` retries with exponential
  backoff (or the server's Retry-After) on 429, 5xx, timeouts and dropped connections. 401/403/404 stop the run
  (a wrong key, model or URL would otherwise fail every request); other 4xx answers are counted as failures.
- Cache: one JSON file per answer under `<cache>/judge/`, keyed by the sha256 of (image bytes, instruction text,
  judge model, instruction version, request parameters, attempt). Only successful answers are cached, so a rerun
  costs nothing and retries only what failed. Writes are atomic.
- Counters: HTTP calls, cache hits, retries, failures and unparseable answers (the scorer reports the last).
"""
from __future__ import annotations

import base64
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
CACHE_FORMAT = 1


class JudgeConfigError(UserError):
    """The endpoint refuses every request (bad key, model or URL)."""


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


def cache_key(request: JudgeRequest, model: str) -> str:
    fields = {
        "format": CACHE_FORMAT,
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
        self._api_key = os.environ.get(settings.api_key_env, "").strip()
        host = urllib.parse.urlparse(settings.base_url).hostname or ""
        if not self._api_key and host.endswith("openai.com"):
            raise JudgeConfigError(
                f"The judge endpoint {settings.base_url} needs an API key: set the environment variable "
                f"{settings.api_key_env} (or point --judge-base-url at an OpenAI-compatible server of your own)."
            )
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
                "model": self.settings.model,
                "instruction_version": request.instruction_version,
                "text_sha256": hashlib.sha256(request.text.encode()).hexdigest(),
                "attempt": request.attempt,
                "answer": answer,
            },
        )

    # ---- transport -----------------------------------------------------------------------------------------
    def _post(self, payload: dict[str, Any]) -> str:
        url = self.settings.base_url.rstrip("/") + "/chat/completions"
        headers = {"Content-Type": "application/json", "User-Agent": "mqeval-judge"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
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
                    f"The judge endpoint refused the request (HTTP {status}): check the key in "
                    f"${self.settings.api_key_env}. Server said: {detail!r}"
                ) from None
            if status == 404:
                raise JudgeConfigError(
                    f"HTTP 404 from {url}: is --judge-base-url right (it should end in /v1) and does the server "
                    f"serve model '{self.settings.model}'? Server said: {detail!r}"
                ) from None
            raise RuntimeError(f"HTTP {status}: {detail!r}") from None
        except (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError,
                http.client.HTTPException) as exc:
            raise _Retryable(f"{type(exc).__name__}: {exc}") from None
        return answer_text(body)

    def _backoff(self, attempt: int, retry_after: Optional[float]) -> float:
        delay = retry_after if retry_after is not None else self.settings.backoff_s * (2 ** attempt)
        return max(0.0, min(delay, self.settings.max_backoff_s))

    # ---- public --------------------------------------------------------------------------------------------
    def ask(self, request: JudgeRequest) -> JudgeReply:
        key = cache_key(request, self.settings.model)
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
            try:
                answer = self._post(payload)
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
            return JudgeReply(answer)
        self._count("failures")
        return JudgeReply(None, error=error)

    def ask_many(self, requests: Sequence[JudgeRequest], workers: Optional[int] = None) -> list[JudgeReply]:
        """Answers in the order of `requests`; cached ones cost nothing."""
        from tqdm.auto import tqdm

        workers = max(1, workers or self.settings.workers)
        with tqdm(total=len(requests), desc="judging", unit="req", disable=None if len(requests) > 1 else True) as bar:
            if workers == 1 or len(requests) <= 1:
                replies = []
                for request in requests:
                    replies.append(self.ask(request))
                    bar.update()
                return replies
            with ThreadPoolExecutor(max_workers=workers) as pool:
                futures = [pool.submit(self.ask, r) for r in requests]
                for future in as_completed(futures):
                    bar.update()
                return [f.result() for f in futures]


def _retry_after(headers: Any) -> Optional[float]:
    value = headers.get("Retry-After") if headers is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
