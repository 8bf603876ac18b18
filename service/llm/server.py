"""One LLM server of the pool as the gate uses it: its slots (LLM_CONCURRENCY), the calls in flight on it and when
each started, the mean time it takes to answer, its circuit breaker, and what its model list says it serves."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from service.llm.base import LLMBackend
from service.llm.breaker import Breaker

# An answer takes LLM_TIMEOUT until one was measured (nobody waits on a guess), then the measured mean, each new
# answer weighing 0.3 (answers are few and slow: the mean must follow the server within a few of them).
SMOOTHING = 0.3
ANSWERS = ("answered", "unusable")  # the outcomes in which the server answered: what the mean is learned from


@dataclass(eq=False)
class Call:
    """A slot of `server` taken at `started`, for a call bounded by `bound_s` (LLM_TIMEOUT, or less: what its
    request's budget had left); `whole`: whether it had the whole LLM_TIMEOUT (llm/expectation.py)."""
    server: Server
    started: float
    bound_s: float
    whole: bool = True


@dataclass(eq=False)
class Server:
    backend: LLMBackend
    slots: int
    answer_s: float  # the mean time an answer took, measured (the prior until one was)
    breaker: Breaker
    calls: set[Call] = field(default_factory=set)  # in flight
    model: str | None = None        # what its model list said it serves (base.py served_model), once read
    reachable: bool | None = None   # whether its model list answered, the last time it was read
    outcomes: Counter = field(default_factory=Counter)  # calls by outcome ("answered", "unreachable", ...)

    @property
    def address(self) -> str:
        """The server's address without any credentials it holds (it is shown in /health and /metrics)."""
        parts = urlsplit(self.backend.endpoint)
        return urlunsplit(parts._replace(netloc=parts.hostname + (f":{parts.port}" if parts.port else ""))) \
            if parts.hostname else self.backend.endpoint

    @property
    def in_flight(self) -> int:
        return len(self.calls)

    def free(self) -> int:
        return self.slots - len(self.calls)

    def start(self, now: float, bound_s: float, whole: bool) -> Call:
        call = Call(self, now, bound_s, whole)
        self.calls.add(call)
        return call

    def finish(self, call: Call, now: float, outcome: str) -> None:
        self.calls.discard(call)
        self.outcomes[outcome] += 1
        took = now - call.started
        # A refusal, an HTTP error or "busy" in a few milliseconds says nothing of how long an answer takes (learned,
        # they made a failing server look fastest); a time-out says an answer takes at least that long: it may raise
        # the mean, never lower it (a call cut short by its request's budget ended before the answer was due).
        if outcome in ANSWERS or (outcome == "timed_out" and took > self.answer_s):
            self.answer_s += SMOOTHING * (took - self.answer_s)

    def free_in(self, now: float) -> list[float]:
        """For each slot, when it can be expected free: at once, or when the call on it has taken the mean time."""
        busy = [max(0.0, self.answer_s - (now - call.started)) for call in self.calls]
        return busy + [0.0] * self.free()

    def load(self) -> dict:
        return {"address": self.address, "in_flight": self.in_flight, "slots": self.slots,
                "answer_s": round(self.answer_s, 3), "set_aside": not self.breaker.closed, "why": self.breaker.why,
                "retry_in_s": _rounded(self.breaker.retry_in()), "model": self.model, "reachable": self.reachable,
                "calls": dict(self.outcomes)}


def _rounded(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 1)
