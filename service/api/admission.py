"""Who gets classified, before any work is done: a per-client rate limit (429), then a bounded number of
requests in classification at once with a bounded wait for a slot (503). Both answer at once with a JSON
error and Retry-After. Only the classifying routes are guarded: /health, /livez, /readyz, /metrics, the page
and its static files are never refused.

A pure ASGI middleware, so a refused request costs no body read, no validation and no thread."""
from __future__ import annotations

import asyncio
import hashlib
import json
import math
import time

from starlette.datastructures import Headers

from service.settings import Settings

GUARDED = ("/classify", "/feedback")  # path prefixes whose requests classify or store text


def presented_key(headers) -> str:
    """The API key a request presents, as X-API-Key or Authorization: Bearer."""
    header = headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return headers.get("x-api-key", "")


class RateLimit:
    """MOVIEGENRE_RATE_LIMIT ("60/minute") per API key, or per client address when no key is presented, kept
    in MOVIEGENRE_RATE_LIMIT_STORAGE (memory:// in this process; a shared store such as redis:// for several
    replicas) by the `limits` library's moving window."""

    def __init__(self, rate: str, storage_uri: str):
        from limits import parse, storage
        from limits.aio import strategies

        uri = storage_uri if storage_uri.startswith("async+") else f"async+{storage_uri}"
        self.rate = parse(rate)
        self.limiter = strategies.MovingWindowRateLimiter(storage.storage_from_string(uri))

    async def retry_after(self, scope) -> int | None:
        """None when the request may go on; else the seconds until its client may ask again."""
        headers = Headers(scope=scope)
        key = presented_key(headers)
        who = f"key:{hashlib.sha256(key.encode()).hexdigest()[:16]}" if key else \
            f"address:{(scope.get('client') or ('unknown',))[0]}"
        if await self.limiter.hit(self.rate, who):
            return None
        stats = await self.limiter.get_window_stats(self.rate, who)
        return max(1, math.ceil(stats.reset_time - time.time()))


class Admission:
    def __init__(self, app, settings: Settings, metrics=None):
        self.app = app
        self.slots = asyncio.Semaphore(settings.max_in_flight)
        self.wait_s = settings.queue_timeout_s
        self.limit = RateLimit(settings.rate_limit, settings.rate_limit_storage) if settings.rate_limit else None
        self.metrics = metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not scope["path"].startswith(GUARDED):
            return await self.app(scope, receive, send)
        if self.limit is not None and (retry := await self.limit.retry_after(scope)) is not None:
            return await self._refuse(send, 429, "rate_limited", retry,
                                      f"rate limit of {self.limit.rate} exceeded: try again in {retry} s")
        if not await self._slot():
            return await self._refuse(send, 503, "overloaded", 1, "the service is at capacity: try again shortly")
        try:
            await self.app(scope, receive, send)
        finally:
            self.slots.release()

    async def _slot(self) -> bool:
        if not self.slots.locked():
            await self.slots.acquire()  # free: taken at once
            return True
        try:
            await asyncio.wait_for(self.slots.acquire(), self.wait_s)
            return True
        except TimeoutError:
            return False

    async def _refuse(self, send, status: int, reason: str, retry_after: int, message: str) -> None:
        if self.metrics is not None:
            self.metrics.refused.labels(reason).inc()
        body = json.dumps({"error": message}).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"retry-after", str(retry_after).encode())]})
        await send({"type": "http.response.body", "body": body})
