"""Per-client rate limits (MOVIEGENRE_RATE_LIMIT, e.g. "60/minute"), counted by the `limits` library's sliding
window counter: in this process by default, or in a store several replicas share (redis://host:6379).

A client is the owner of a valid key (keys.py: each API key's consumer has its own allowance), else its address: a
key made up per request is no key, and shares its address's allowance. IPv6 addresses count by their /64, the
block one subscriber gets.

In this process at most MAX_CLIENTS clients are counted at once, the oldest windows forgotten first. limits' own
memory storage keeps every client until a sweep over all of them, which it starts again after every hit: a
flood of addresses would grow it without bound and make every request pay for the sweep.

A request costs one of its client's allowance; a batch of N descriptions costs N (the route charges the rest once
it knows N).

A shared store that fails (Redis down, slow, refusing) never fails the request: for STORE_RETRY_S the store is left
alone and this process counts in its own memory meanwhile (so across N replicas a client gets at most N times its
allowance while the store is away, rather than no limit at all); each such request carries a note saying so, and the
`available` flag the metrics show is 0 until the store answers again. Then the shared counts take over by
themselves."""
from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import OrderedDict
from dataclasses import dataclass, replace
from urllib.parse import urlsplit, urlunsplit

from limits import parse
from limits.aio.storage import MemoryStorage
from limits.storage import storage_from_string
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from service.api.keys import client_of
from service.settings import ConfigurationError, Settings

log = logging.getLogger("moviegenre")

MAX_CLIENTS = 100_000   # ~150 bytes a window counter, two counters a client: ~30 MB at most
STORE_TIMEOUT_S = 0.25  # one request's wait for a shared store, at most
STORE_RETRY_S = 5.0     # after a failure, requests go uncounted this long before the store is tried again


@dataclass(frozen=True)
class Verdict:
    retry_after: int | None = None  # seconds until the client may ask again; None: go on
    problem: str | None = None      # why the request was not counted, when the store failed


class BoundedMemoryStorage(MemoryStorage):
    """limits' in-process storage with at most `max_keys` window counters: a counter expires when it is next read,
    and a new one beyond the bound forgets the oldest (by when it was made)."""

    def __init__(self, max_keys: int = 2 * MAX_CLIENTS):
        super().__init__()
        self.max_keys = max_keys
        self.counters: OrderedDict[str, list[float]] = OrderedDict()  # key → [count, expires at]

    def _live(self, key: str) -> list[float] | None:
        counter = self.counters.get(key)
        if counter is not None and counter[1] <= time.time():
            del self.counters[key]
            return None
        return counter

    async def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        counter = self._live(key)
        if counter is None:
            while len(self.counters) >= self.max_keys:
                self.counters.popitem(last=False)
            counter = self.counters[key] = [0, time.time() + expiry]
        counter[0] += amount
        return int(counter[0])

    async def decr(self, key: str, amount: int = 1) -> int:
        counter = self._live(key)
        if counter is None:
            return 0
        counter[0] = max(counter[0] - amount, 0)
        return int(counter[0])

    async def get(self, key: str) -> int:
        counter = self._live(key)
        return int(counter[0]) if counter else 0

    async def get_expiry(self, key: str) -> float:
        counter = self._live(key)
        return counter[1] if counter else time.time()

    async def clear(self, key: str) -> None:
        self.counters.pop(key, None)

    async def reset(self) -> int:
        count = len(self.counters)
        self.counters.clear()
        return count


class RateLimit:
    """`rate` ("60/minute") per client, counted in `settings.operations.rate_limit_storage`."""

    def __init__(self, rate: str, settings: Settings, clock=time.monotonic):
        self.settings, self.clock = settings, clock
        self.rate = parse(rate)
        uri = settings.operations.rate_limit_storage
        self.limiter = SlidingWindowCounterRateLimiter(_storage(uri))
        # while a shared store is away: this process's own counts
        self.fallback = None if _in_memory(uri) else SlidingWindowCounterRateLimiter(BoundedMemoryStorage())
        self.available = True  # whether the store answered the last time it was asked
        self._store_down_until = 0.0
        self._problem: str | None = None

    async def check(self, scope, cost: int = 1) -> Verdict:
        """Counts the request, at `cost`, against its client's allowance."""
        who = client_of(scope, self.settings)
        if self.fallback is None:  # this process's memory
            return await self._count(self.limiter, who, cost)
        if self.clock() >= self._store_down_until:
            try:
                async with asyncio.timeout(STORE_TIMEOUT_S):
                    verdict = await self._count(self.limiter, who, cost)
                self.available = True
                return verdict
            except Exception as exc:  # noqa: BLE001 - whatever the store's client raises, the request is answered
                self._store_failed(exc)
        return replace(await self._count(self.fallback, who, cost), problem=self._problem)

    async def _count(self, limiter, who: str, cost: int) -> Verdict:
        if await limiter.hit(self.rate, who, cost=cost):
            return Verdict()
        stats = await limiter.get_window_stats(self.rate, who)
        return Verdict(retry_after=max(1, math.ceil(stats.reset_time - time.time())))

    def _store_failed(self, exc: Exception) -> None:
        reason = "timed out" if isinstance(exc, TimeoutError) else f"{type(exc).__name__}: {exc}"[:200]
        self._problem = (f"the rate-limit store failed ({reason}): requests are counted by this process alone for "
                         f"{STORE_RETRY_S:g} s")
        self._store_down_until = self.clock() + STORE_RETRY_S
        self.available = False
        log.warning(self._problem)


def _in_memory(uri: str) -> bool:
    return uri.removeprefix("async+").startswith("memory://")


def _storage(uri: str):
    if _in_memory(uri):
        return BoundedMemoryStorage()
    try:
        return storage_from_string(uri if uri.startswith("async+") else f"async+{uri}")
    except Exception as exc:  # noqa: BLE001 - limits raises ConfigurationError for a missing driver, ValueError, …
        shown = _without_password(uri)
        why = str(exc).replace(uri, shown).replace(uri.removeprefix("async+"), shown)
        raise ConfigurationError(f"MOVIEGENRE_RATE_LIMIT_STORAGE={shown!r} cannot be used: {why} (for redis:// "
                                 "install the redis extra: pip install 'moviegenre[redis]')") from None


def _without_password(uri: str) -> str:
    """The storage URL as a message may show it: its password (redis://:secret@host) replaced by ***."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    user = f"{parts.username}:" if parts.username else ":"
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{user}***@{host}"))
