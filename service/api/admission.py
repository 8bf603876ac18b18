"""Who gets classified, decided before any work is done, on the routes that classify or store text (/health,
/livez, /readyz, /metrics, the page and its files are never refused). A pure ASGI middleware: a refusal costs
no body read, no validation, no thread, and no log line of its own (one line sums them up).

1. The queue: at most MAX_IN_FLIGHT requests classify at once, the others wait for a slot in arrival order. A
   request is refused at once (503, Retry-After) when it could not expect a slot within MAX_QUEUE_WAIT: by
   Little's law, the requests waiting ahead of it times the mean time a request holds a slot, over the slots.
   The bound follows what requests really cost (a lone English one ~5 ms, one with the LLM seconds), so an
   ordinary load is queued and served while a flood is refused without waiting. A client that asks again on
   the same connection before the Retry-After it was given has passed, while the queue is still full, gets its
   refusal when that Retry-After runs out: a timer, not work. Clients that ignore Retry-After cannot turn
   refusals into the load that starves answers (200 of them retrying every 50 ms sent ~2,800 requests a
   second), and each still gets one real attempt per Retry-After, as a client that waits does.
2. The client's rate limit (ratelimit.py): 429 with Retry-After.
3. The body is read within BODY_TIMEOUT, holding no slot (408 otherwise): a client that sends its body slowly
   keeps only its own connection.
4. A slot: a request that still finds none after 1.5 × MAX_QUEUE_WAIT (the estimate was wrong) is refused."""
from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import OrderedDict

from service.api.degraded import note_degraded
from service.api.ratelimit import RateLimit
from service.settings import Settings

GUARDED = ("/classify", "/feedback")  # path prefixes whose requests classify or store text
log = logging.getLogger("moviegenre")

DEADLINE_FACTOR = 1.5   # a request admitted to wait is refused after this many times the bound
SLOT_PRIOR_S = 0.02     # a request's time in a slot before any was measured (4 English ones at once on 2 cores)
SLOT_SMOOTHING = 0.05   # weight of each new measurement in the mean (about the last 20 requests count)
REFUSALS_LOG_S = 10.0   # refusals are logged as one line per reason at most this often, with their count
RETRY_AFTER_S = 1       # what a 503 asks a client to wait
REMEMBERED_REFUSALS = 10_000  # connections whose last refusal is kept, the oldest forgotten first


class Queue:
    """`slots` requests at once; a newcomer waits only when it can expect a slot within `max_wait`."""

    def __init__(self, slots: int, max_wait: float):
        self.slots, self.max_wait = slots, max_wait
        self.in_flight = self.waiting = 0
        self.slot_s = SLOT_PRIOR_S  # the mean time a request holds a slot
        self._free = asyncio.Semaphore(slots)

    def expected_wait(self) -> float:
        if self.in_flight < self.slots and not self.waiting:
            return 0.0
        return (self.waiting + 1) * self.slot_s / self.slots

    def full(self) -> bool:
        return self.expected_wait() > self.max_wait

    async def enter(self) -> bool:
        """True once a slot is taken; False when none can be expected in time, or none came by the deadline."""
        if self.full():
            return False
        self.waiting += 1
        try:
            async with asyncio.timeout(DEADLINE_FACTOR * self.max_wait):
                await self._free.acquire()
        except TimeoutError:
            return False
        finally:
            self.waiting -= 1
        self.in_flight += 1
        return True

    def leave(self, held_s: float) -> None:
        self.in_flight -= 1
        self.slot_s += SLOT_SMOOTHING * (held_s - self.slot_s)
        self._free.release()


class _SlowBody(Exception):
    pass


class _ClientGone(Exception):
    pass


class Admission:
    def __init__(self, app, settings: Settings, metrics=None, rate_limit: RateLimit | None = None):
        self.app = app
        self.queue = Queue(settings.max_in_flight, settings.max_queue_wait_s)
        self.body_timeout = settings.body_timeout_s
        self.limit = rate_limit
        self.metrics = metrics
        self._refusals: dict[str, int] = {}
        self._refusals_logged = time.monotonic()
        self._refused_at: OrderedDict[tuple, float] = OrderedDict()  # connection → when it was last refused

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not scope["path"].startswith(GUARDED):
            return await self.app(scope, receive, send)
        if self.queue.full():
            return await self._overloaded(scope, send)
        if self.limit is not None:
            verdict = await self.limit.check(scope)
            if verdict.retry_after is not None:
                return await self._refuse(scope, send, 429, "rate_limited", verdict.retry_after,
                                          f"rate limit of {self.limit.rate} exceeded: try again in "
                                          f"{verdict.retry_after} s")
            if verdict.problem:
                note_degraded(scope.setdefault("state", {}), "rate_limit_store", verdict.problem)
        try:
            body = await self._body(receive)
        except _SlowBody:
            return await self._refuse(scope, send, 408, "slow_body", None,
                                      f"the request body did not arrive within {self.body_timeout:g} s", close=True)
        except _ClientGone:
            return None
        if not await self.queue.enter():
            return await self._overloaded(scope, send)
        started = time.monotonic()
        try:
            await self.app(scope, _replay(body, receive), send)
        finally:
            self.queue.leave(time.monotonic() - started)

    async def _body(self, receive) -> bytes:
        """The whole body, or _SlowBody when it takes longer than the deadline (the body limit outside this
        middleware stops one that grows too large)."""
        chunks = []
        try:
            async with asyncio.timeout(self.body_timeout):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        raise _ClientGone
                    chunks.append(message.get("body", b""))
                    if not message.get("more_body", False):
                        return b"".join(chunks)
        except TimeoutError:
            raise _SlowBody from None

    async def _overloaded(self, scope, send):
        """503. A connection refused less than RETRY_AFTER_S ago waits out the rest first, without restarting
        its clock (its next request after that is considered afresh)."""
        connection, now = scope.get("client"), time.monotonic()
        last = self._refused_at.get(connection) if connection else None
        if last is not None and now - last < RETRY_AFTER_S:
            await asyncio.sleep(last + RETRY_AFTER_S - now)
        elif connection:
            self._refused_at[connection] = now
            self._refused_at.move_to_end(connection)
            while len(self._refused_at) > REMEMBERED_REFUSALS:
                self._refused_at.popitem(last=False)
        await self._refuse(scope, send, 503, "overloaded", RETRY_AFTER_S,
                           "the service is at capacity: try again shortly")

    async def _refuse(self, scope, send, status: int, reason: str, retry_after: int | None, message: str,
                      close: bool = False) -> None:
        if self.metrics is not None:
            self.metrics.refused.labels(reason).inc()
        scope.setdefault("state", {})["refused"] = reason  # the request log leaves it to the summary line
        self._count_refusal(reason)
        body = json.dumps({"error": message}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        if retry_after is not None:
            headers.append((b"retry-after", str(retry_after).encode()))
        if close:
            headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _count_refusal(self, reason: str) -> None:
        """A flood of refusals makes one log line per reason every REFUSALS_LOG_S, not one per request."""
        self._refusals[reason] = self._refusals.get(reason, 0) + 1
        now = time.monotonic()
        if now - self._refusals_logged >= REFUSALS_LOG_S:
            counts = ", ".join(f"{n} {why}" for why, n in sorted(self._refusals.items()))
            log.warning("refused in the last %.0f s: %s (mean time in a slot %.1f ms)", now - self._refusals_logged,
                        counts, self.queue.slot_s * 1000)
            self._refusals.clear()
            self._refusals_logged = now


def _replay(body: bytes, receive):
    """The body already read, handed to the app as one message; then the client's own messages (a disconnect)."""
    sent = False

    async def replayed():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed
