"""A real HTTP server on 127.0.0.1 that speaks enough of the OpenAI chat-completions API for offline tests.

    with FakeOpenAIServer(answer=lambda request: "Consistency: 2\nRealism: 1\nAesthetic Quality: 0") as server:
        ... server.base_url ...   # http://127.0.0.1:<port>/v1
        server.script.append(Reply(status=429))   # the next request gets a 429, then `answer` again

It also works as a plain-http proxy (HTTP_PROXY=http://127.0.0.1:<port>): requests for any http host land here.
`port` reopens a server on the port of an earlier one (same endpoint URL). Also serves static files for download
tests (`files={"/data/x.json": b"..."}`). Every request is recorded.
"""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Optional


@dataclass
class Reply:
    status: int = 200
    content: Optional[str] = None  # chat answer text (wrapped in a chat-completions body)
    body: Optional[bytes] = None  # raw body instead (malformed answers)
    delay: float = 0.0  # seconds to sleep before answering (timeouts)
    headers: dict[str, str] = field(default_factory=dict)


class FakeOpenAIServer:
    def __init__(
        self,
        answer: Callable[[dict[str, Any]], str] | None = None,
        files: dict[str, bytes] | None = None,
        api_key: str | None = None,
        port: int = 0,
    ):
        self.answer = answer or (lambda request: "1")
        self.files = dict(files or {})
        self.api_key = api_key
        self.script: list[Reply] = []
        self.requests: list[dict[str, Any]] = []
        self.headers: list[Any] = []  # the request headers (case-insensitive `get`)
        self._lock = threading.Lock()
        self._port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def num_chat_requests(self) -> int:
        return len(self.requests)

    def _next_reply(self, request: dict[str, Any]) -> Reply:
        with self._lock:
            self.requests.append(request)
            if self.script:
                return self.script.pop(0)
        answer = self.answer(request)  # a text, or a whole Reply (e.g. an error for some requests only)
        return answer if isinstance(answer, Reply) else Reply(content=answer)

    def __enter__(self) -> "FakeOpenAIServer":
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def do_GET(self) -> None:
                if self.path in owner.files:
                    self._send(200, owner.files[self.path])
                else:
                    self._send(404, b'{"error": "not found"}')

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                if not self.path.endswith("/chat/completions"):
                    self._send(404, b'{"error": "not found"}')
                    return
                owner.headers.append(self.headers)
                if owner.api_key and self.headers.get("Authorization") != f"Bearer {owner.api_key}":
                    self._send(401, b'{"error": {"message": "bad key"}}')
                    return
                request = json.loads(raw)
                reply = owner._next_reply(request)
                if reply.delay:
                    time.sleep(reply.delay)
                if reply.body is not None:
                    body = reply.body
                elif reply.status == 200:
                    body = json.dumps(
                        {
                            "id": "fake",
                            "object": "chat.completion",
                            "model": request.get("model"),
                            "choices": [
                                {"index": 0, "message": {"role": "assistant", "content": reply.content},
                                 "finish_reason": "stop"}
                            ],
                        }
                    ).encode()
                else:
                    body = json.dumps({"error": {"message": f"status {reply.status}"}}).encode()
                self._send(reply.status, body, reply.headers)

        self._server = ThreadingHTTPServer(("127.0.0.1", self._port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        assert self._server is not None and self._thread is not None
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
