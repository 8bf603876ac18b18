"""Who gets classified, and when. CPU is the service's one scarce thing: at most MAX_IN_FLIGHT requests classify
at once (the slots), the others wait their turn in arrival order (service/queueing.py). Only the CPU work holds a
slot — embedding, search, vote, recognition — never the wait on an LLM or a lookup server, which is I/O. Lookups
wait on IMDb and TMDb on a lane of their own (LOOKUP_CONCURRENCY threads, LOOKUP_QUEUE waiting; beyond, 503).

The middleware, before any work is done (the probes, the page, the editors' and admin routes are never shed):
1. Who asks (keys.py): a request to /classify without an API key it needs is answered 401 at once, its body
   unread, holding nothing and never queued, after its address's rate limit (guessing keys spends an allowance).
2. Overload, for /classify: a request is refused at once (503, Retry-After) when it could not expect a slot in
   time (see `Admission.turns_away`). A client that asks again on the same connection before the Retry-After it
   was given has passed, while the queue is still full, gets its refusal when that Retry-After runs out: a timer,
   not work. Clients that ignore Retry-After cannot turn refusals into the load that starves answers.
3. The consumer's rate limit (ratelimit.py), for /classify and /feedback: 429 with Retry-After.
4. Every request's body is read within BODY_TIMEOUT, holding no slot (408 otherwise).
Then the route validates the request (422s hold nothing) and takes a slot for its CPU work (`Admission.slot`),
which may still refuse a request that found none in time (the estimate was wrong)."""
from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from starlette.responses import JSONResponse

from service.api.degraded import note_degraded
from service.api.errors import LookupsBusy, Overloaded, error_response, unauthorised
from service.api.keys import caller_of, may_classify
from service.api.lanes import Lane
from service.memory import release_freed_heap
from service.settings import Settings

if TYPE_CHECKING:  # the `limits` library (~11 MB) is imported only where a rate limit is set (app.py)
    from service.api.ratelimit import RateLimit

CLASSIFY, FEEDBACK = "/classify", "/feedback"  # the routes that classify, and the editors' (never shed)
log = logging.getLogger("moviegenre")

DEADLINE_FACTOR = 1.5   # a request admitted beyond MIN_QUEUE is refused after this many times the wait it expected
QUEUED_PATIENCE_S = 5.0  # one of the MIN_QUEUE always queued is refused only after this long (a stuck slot)
SLOT_PRIOR_S = 0.02     # a request's time in a slot before any was measured (4 English ones at once on 2 cores)
LOOKUP_PRIOR_S = 0.5    # a lookup's time on its thread before any was measured
PROBE_THREADS = 2       # /health's threads
REFUSALS_LOG_S = 10.0   # refusals are logged as one line per reason at most this often, with their count
RETRY_AFTER_S = 1       # what a 503 asks a client to wait
REMEMBERED_REFUSALS = 10_000  # connections whose last refusal is kept, the oldest forgotten first
# How often the heap that requests freed is handed back to the system, when requests were served since and none is in
# flight (glibc keeps freed memory in each thread's arena: a flood or a few long inputs left a served process tens of
# MB larger for good)
TRIM_EVERY_S = 10.0


def under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


class Admission:
    """The lanes requests run on (the CPU slots, the lookups', /health's), the policy that turns newcomers away,
    the rate limit, and the refusals' bookkeeping; shared by the middleware and the routes (app.state.admission)."""

    def __init__(self, settings: Settings, metrics=None, rate_limit: RateLimit | None = None,
                 clock=time.monotonic, sleep=asyncio.sleep):
        operations = settings.operations
        self.settings = settings
        self.clock, self.sleep = clock, sleep  # what slots are timed by and refusals are held with
        self.cpu = Lane(operations.max_in_flight, SLOT_PRIOR_S, "classify", Overloaded, clock)
        self.queue = self.cpu.queue
        self.lookups = Lane(operations.lookup_concurrency, LOOKUP_PRIOR_S, "lookup", LookupsBusy, clock)
        self.probes = Lane(PROBE_THREADS, 0.0, "probe")  # /health's own (routes/service.py)
        self.min_queue = operations.min_queue
        self.max_wait = operations.max_queue_wait_s
        self.rate_limit = rate_limit
        self.metrics = metrics
        self._refusals: dict[str, int] = {}
        self._refusals_logged = time.monotonic()
        self._refused_at: OrderedDict[tuple, float] = OrderedDict()  # connection → when it was last refused
        self.reading = 0  # requests whose body is being read (a slow one holds only its own connection)

    def turns_away(self) -> bool:
        """A fixed number of clients asking again and again (MIN_QUEUE waiting, beyond the slots) is always
        queued: their wait is bounded by their number. Beyond them, a newcomer is turned away when, by Little's law,
        it could not expect a slot within MAX_QUEUE_WAIT: an open-ended flood is shed, not queued."""
        return self.queue.waiting >= self.min_queue and self.queue.expected_wait() > self.max_wait

    @asynccontextmanager
    async def slot(self):
        """Held for a request's CPU work. Raises Overloaded when the request is turned away, or no slot came in
        time: for one of the MIN_QUEUE always queued, QUEUED_PATIENCE_S (their wait is bounded by their number,
        whatever the estimate says); for one admitted beyond them, DEADLINE_FACTOR × the wait it could expect (at
        least MAX_QUEUE_WAIT)."""
        if self.turns_away():
            raise Overloaded
        patience = QUEUED_PATIENCE_S if self.queue.waiting < self.min_queue else \
            DEADLINE_FACTOR * max(self.max_wait, self.queue.expected_wait())
        async with self.cpu.held(patience):
            yield

    async def run(self, work, *args):
        """`work(*args)` under a slot, on one of the slots' threads: a request's CPU work."""
        async with self.slot():
            return await self.cpu.call(work, *args)

    async def lookup(self, work, *args):
        """`work(*args)`, a lookup that waits on IMDb and TMDb, on the lookups' own threads. Raises LookupsBusy at
        once when LOOKUP_QUEUE lookups wait already, or when none of the threads came free within the time the
        lookups ahead of it take when each keeps to its LOOKUP_TIMEOUT."""
        operations, queue = self.settings.operations, self.lookups.queue
        if not queue.has_free_slot() and queue.waiting >= operations.lookup_queue:
            raise LookupsBusy
        patience = self.settings.lookup.timeout_s * (1 + operations.lookup_queue / operations.lookup_concurrency)
        return await self.lookups.run(patience, work, *args)

    async def hand_back_memory(self) -> None:
        """Runs as long as the app: every TRIM_EVERY_S, when requests were served since and none is in flight, the
        heap they freed goes back to the system (malloc_trim, some milliseconds, on a worker thread)."""
        trimmed_after = 0
        while True:
            await asyncio.sleep(TRIM_EVERY_S)
            if self.cpu.served != trimmed_after and self.queue.in_flight == 0:
                trimmed_after = self.cpu.served
                await asyncio.to_thread(release_freed_heap)

    def close(self) -> None:
        """Let the lanes' threads go (made again if the app serves again: a lifespan may be entered twice)."""
        for lane in (self.cpu, self.lookups, self.probes):
            lane.close()

    async def rate_limited(self, scope, cost: int = 1) -> JSONResponse | None:
        """The 429 of a request beyond its consumer's allowance (a request costs `cost` of it); None to go on. A
        rate-limit store that failed leaves a note on the request."""
        limit = self.rate_limit
        if limit is None:
            return None
        verdict = await limit.check(scope, cost)
        if verdict.problem:
            note_degraded(scope.setdefault("state", {}), "rate_limit_store", verdict.problem)
        if verdict.retry_after is None:
            return None
        return self.refusal(scope, 429, "rate_limited", f"rate limit of {limit.rate} exceeded: try again "
                            f"in {verdict.retry_after} s", retry_after=verdict.retry_after)

    async def overloaded(self, scope, refused: Overloaded | None = None) -> JSONResponse:
        """The 503 (of the CPU slots, or of the lookups' lane). A connection refused less than RETRY_AFTER_S ago
        waits out the rest first, without restarting its clock (its next request after that is considered
        afresh)."""
        connection, now = scope.get("client"), self.clock()
        last = self._refused_at.get(connection) if connection else None
        if last is not None and now - last < RETRY_AFTER_S:
            await self.sleep(last + RETRY_AFTER_S - now)
        elif connection:
            self._refused_at[connection] = now
            self._refused_at.move_to_end(connection)
            while len(self._refused_at) > REMEMBERED_REFUSALS:
                self._refused_at.popitem(last=False)
        refused = refused or Overloaded()
        return self.refusal(scope, 503, refused.reason, refused.message, retry_after=RETRY_AFTER_S)

    def refusal(self, scope, status: int, reason: str, message: str, retry_after: int | None = None,
                close: bool = False) -> JSONResponse:
        """A refusal counted in the metrics and in the periodic summary line, not logged one by one."""
        if self.metrics is not None:
            self.metrics.refused.labels(reason).inc()
        scope.setdefault("state", {})["refused"] = reason  # the request log leaves it to the summary line
        self._count(reason)
        return error_response(status, message, retry_after=retry_after, close=close)

    def _count(self, reason: str) -> None:
        """A flood of refusals makes one log line per reason every REFUSALS_LOG_S, not one per request."""
        self._refusals[reason] = self._refusals.get(reason, 0) + 1
        now = time.monotonic()
        if now - self._refusals_logged >= REFUSALS_LOG_S:
            counts = ", ".join(f"{n} {why}" for why, n in sorted(self._refusals.items()))
            log.warning("refused in the last %.0f s: %s (mean time in a slot %.1f ms)", now - self._refusals_logged,
                        counts, self.queue.slot_s * 1000)
            self._refusals.clear()
            self._refusals_logged = now


class _SlowBody(Exception):
    pass


class _ClientGone(Exception):
    pass


class AdmissionMiddleware:
    """A pure ASGI middleware: a refusal costs no body read, no validation, no thread, and no log line of its own."""

    def __init__(self, app, admission: Admission, streamed: frozenset[tuple[str, str]] = frozenset()):
        """`streamed`: the (method, path) of uploads, which the route streams to disk as they come (a file of
        hundreds of MB is never held in memory): each of their pieces must come within BODY_TIMEOUT."""
        self.app = app
        self.admission = admission
        self.body_timeout = admission.settings.operations.body_timeout_s
        self.streamed = streamed

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        refusal = await self._refusal(scope)
        if refusal is not None:
            return await refusal(scope, receive, send)
        if (scope["method"], scope["path"]) in self.streamed:
            return await self.app(scope, _paced(receive, self.body_timeout, scope), send)
        try:
            body = await self._body(receive)
        except _SlowBody:
            return await self.admission.refusal(scope, 408, "slow_body", f"the request body did not arrive within "
                                                f"{self.body_timeout:g} s", close=True)(scope, receive, send)
        except _ClientGone:
            return None
        await self.app(scope, _replay(body, receive), send)

    async def _refusal(self, scope) -> JSONResponse | None:
        """What answers a request before its body is read: a 401 for /classify without the key it needs (after its
        address's rate limit), a 503 when /classify is overloaded, a 429 beyond a consumer's allowance."""
        admission, path = self.admission, scope["path"]
        if under(path, CLASSIFY):
            if not may_classify(caller_of(scope, admission.settings), admission.settings):
                limited = await admission.rate_limited(scope)
                return _unauthorised() if limited is None else limited
            if admission.turns_away():
                return await admission.overloaded(scope)
        if under(path, CLASSIFY) or under(path, FEEDBACK):
            return await admission.rate_limited(scope)
        return None

    async def _body(self, receive) -> bytes:
        """The whole body, or _SlowBody when it takes longer than the deadline (the body limit outside this
        middleware stops one that grows too large)."""
        chunks = []
        self.admission.reading += 1
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
        finally:
            self.admission.reading -= 1


def _unauthorised() -> JSONResponse:
    """The 401 of a request to /classify without a valid API key, answered before its body is read (so the
    connection is closed after it)."""
    exc = unauthorised("API key")
    return error_response(exc.status_code, exc.detail, headers=exc.headers, close=True)


def _paced(receive, timeout_s: float, scope):
    """The client's messages, each within `timeout_s`: a body that stops coming reads as the client gone, and the
    request's state says it was too slow (`slow_body`), for the route to answer 408."""
    async def paced():
        try:
            async with asyncio.timeout(timeout_s):
                return await receive()
        except TimeoutError:
            scope.setdefault("state", {})["slow_body"] = timeout_s
            return {"type": "http.disconnect"}

    return paced


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
