"""A local stand-in for LLM servers speaking Ollama's and OpenAI's wire protocols, with scripted answers."""
from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable

from .local_server import LocalServer

GOOD = json.dumps({"genres": ["Fantasy", "Adventure"]})
BROKEN = {"http500", "http503", "hang", "close", "badbody"}


class FakeLLMServer(LocalServer):
    """`answer` is the model's text for /api/chat or /v1/chat/completions, a function of the chat messages
    returning that text, or one of: 'http500', 'http503' (busy, as Ollama says when its queue is full), 'hang'
    (sleeps `hang_s`, then answers well), 'close' (drops the connection mid-answer), 'badbody' (an HTTP 200 whose
    body is not JSON at all). `models` breaks the
    model-list routes (/api/tags, /v1/models) the same ways; `model` is what they list (Ollama's digest, the id an
    OpenAI-compatible server lists). With `gate` set, chat answers wait for it."""

    def __init__(self, answer: str | Callable[[list[dict]], str] = GOOD, hang_s: float = 5.0,
                 models: str = "ok", gate: threading.Event | None = None, model: str = "qwen"):
        super().__init__()
        self.answer = answer
        self.hang_s = hang_s
        self.models = models
        self.model = model
        self.gate = gate
        self.chat_started = threading.Event()

    def chat_requests(self) -> list[dict]:
        return [body for method, path, body in self.requests if method == "POST"]

    def model_list_requests(self) -> int:
        return sum(method == "GET" for method, _, _ in self.requests)

    def _broken(self, how: str):
        if how == "hang":
            time.sleep(self.hang_s)
        if how == "http500":
            return 500, {"error": "model crashed"}
        if how == "http503":
            return 503, {"error": "server busy, please try again. maximum pending requests exceeded"}
        if how == "close":
            return None
        if how == "badbody":
            return 200, b"<html>proxy error</html>"
        return "fine"

    def respond(self, method, path, query, body):
        if method == "GET":
            if self.models in BROKEN and (broken := self._broken(self.models)) != "fine":
                return broken
            if path == "/api/tags":
                return 200, {"models": [{"name": "qwen2:7b", "model": "qwen2:7b", "digest": f"sha256:{self.model}"}]}
            if path == "/v1/models":
                return 200, {"object": "list", "data": [{"id": self.model, "object": "model"}]}
            return 404, {"error": "not found"}
        self.chat_started.set()
        if self.gate is not None:
            self.gate.wait(30)
        if isinstance(self.answer, str) and self.answer in BROKEN and (broken := self._broken(self.answer)) != "fine":
            return broken
        text = self.answer(body["messages"]) if callable(self.answer) else \
            GOOD if self.answer == "hang" else self.answer
        if path == "/api/chat":
            return 200, {"model": body.get("model"), "created_at": "2026-11-25T00:00:00Z",
                         "message": {"role": "assistant", "content": text}, "done": True, "done_reason": "stop"}
        if path == "/v1/chat/completions":
            return 200, {"id": "c1", "object": "chat.completion", "created": 0, "model": body.get("model"),
                         "choices": [{"index": 0, "finish_reason": "stop",
                                      "message": {"role": "assistant", "content": text}}]}
        return 404, {"error": "not found"}
