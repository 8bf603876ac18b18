"""A local stand-in for LLM servers speaking Ollama's and OpenAI's wire protocols, with scripted answers."""
from __future__ import annotations

import json
import time

from .local_server import LocalServer

GOOD = json.dumps({"genres": ["Fantasy", "Adventure"]})


class FakeLLMServer(LocalServer):
    """`answer` is the model's text for /api/chat or /v1/chat/completions, or one of: 'http500', 'hang'
    (sleeps `hang_s`, then answers well), 'close' (drops the connection mid-answer), 'badbody' (an HTTP 200
    whose body is not JSON at all)."""

    def __init__(self, answer: str = GOOD, hang_s: float = 5.0):
        super().__init__()
        self.answer = answer
        self.hang_s = hang_s

    def chat_requests(self) -> list[dict]:
        return [body for method, path, body in self.requests if method == "POST"]

    def respond(self, method, path, query, body):
        if method == "GET":
            if path == "/api/tags":
                return 200, {"models": [{"name": "qwen2:7b", "model": "qwen2:7b"}]}
            if path == "/v1/models":
                return 200, {"object": "list", "data": [{"id": "qwen", "object": "model"}]}
            return 404, {"error": "not found"}
        if self.answer == "hang":
            time.sleep(self.hang_s)
        if self.answer == "http500":
            return 500, {"error": "model crashed"}
        if self.answer == "close":
            return None
        if self.answer == "badbody":
            return 200, b"<html>proxy error</html>"
        text = GOOD if self.answer == "hang" else self.answer
        if path == "/api/chat":
            return 200, {"model": body.get("model"), "created_at": "2026-11-25T00:00:00Z",
                         "message": {"role": "assistant", "content": text}, "done": True, "done_reason": "stop"}
        if path == "/v1/chat/completions":
            return 200, {"id": "c1", "object": "chat.completion", "created": 0, "model": body.get("model"),
                         "choices": [{"index": 0, "finish_reason": "stop",
                                      "message": {"role": "assistant", "content": text}}]}
        return 404, {"error": "not found"}
