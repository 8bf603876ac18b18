"""Local stand-ins for LLM servers that speak Ollama's and OpenAI's wire protocols, with scripted answers."""
from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

GOOD = json.dumps({"genres": ["Fantasy", "Adventure"]})


class FakeLLMServer:
    """`answer` is what /api/chat or /v1/chat/completions returns as the model's text, or one of:
    'http500', 'hang' (sleeps `hang_s` first), 'close' (drops the connection mid-answer), 'slow' (answers
    after `hang_s`). Every request is recorded as (method, path, json body)."""

    def __init__(self, answer: str = GOOD, hang_s: float = 5.0):
        self.answer = answer
        self.hang_s = hang_s
        self.requests: list[tuple[str, str, dict | None]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FakeLLMServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def chat_requests(self) -> list[dict]:
        return [body for method, path, body in self.requests if method == "POST"]

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                fake.requests.append(("GET", self.path, None))
                if self.path == "/api/tags":
                    return self._json(200, {"models": [{"name": "qwen2:7b", "model": "qwen2:7b"}]})
                if self.path == "/v1/models":
                    return self._json(200, {"object": "list", "data": [{"id": "qwen", "object": "model"}]})
                self._json(404, {"error": "not found"})

            def do_POST(self):
                length = int(self.headers.get("content-length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                fake.requests.append(("POST", self.path, body))
                if fake.answer in ("hang", "slow"):
                    time.sleep(fake.hang_s)
                if fake.answer == "http500":
                    return self._json(500, {"error": "model crashed"})
                if fake.answer == "close":
                    self.send_response(200)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", "500")
                    self.end_headers()
                    self.wfile.write(b'{"message": {"role": "assis')
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                text = GOOD if fake.answer == "slow" else fake.answer
                if self.path == "/api/chat":
                    return self._json(200, {"model": body.get("model"), "created_at": "2026-11-25T00:00:00Z",
                                            "message": {"role": "assistant", "content": text},
                                            "done": True, "done_reason": "stop"})
                if self.path == "/v1/chat/completions":
                    return self._json(200, {"id": "c1", "object": "chat.completion", "created": 0,
                                            "model": body.get("model"), "choices": [{
                                                "index": 0, "finish_reason": "stop",
                                                "message": {"role": "assistant", "content": text}}]})
                self._json(404, {"error": "not found"})

            def _json(self, status: int, data: dict) -> None:
                payload = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        return Handler


def closed_port_url() -> str:
    """An address where nothing listens: connections are refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"
