"""One structured log line per request: id, method, path, mode, backend, status, latency. No texts. The same
timing feeds the metrics (metrics.py), when they are on."""
from __future__ import annotations

import json
import logging
import time
import uuid
from urllib.parse import parse_qs

log = logging.getLogger("moviegenre.requests")


class RequestLog:
    def __init__(self, app, metrics=None):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        request_id = uuid.uuid4().hex[:12]
        started = time.perf_counter()
        status = 500

        async def send_with_id(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", []).append((b"x-request-id", request_id.encode()))
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            if self.metrics is not None:
                self.metrics.observe(scope, status, seconds)
            if log.isEnabledFor(logging.INFO):
                query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
                log.info(json.dumps({
                    "id": request_id, "method": scope["method"], "path": scope["path"],
                    "mode": query.get("mode", [None])[0], "backend": scope.get("state", {}).get("backend"),
                    "status": status, "latency_ms": round(seconds * 1000, 2)}))
