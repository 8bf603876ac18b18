"""What the end of a question does to the pool's servers: its slot always comes back, a time-out is the server's fault
only when the call had its whole LLM_TIMEOUT, and a server's mean answer time is learned from its answers, not from
its failures. In-process servers on the gate's own event loop: every ordering is set by the test, never by time."""
from __future__ import annotations

import asyncio

from service.genres import DEFAULT
from service.llm import pool as pool_module
from service.llm.base import LLMBackend, LLMError, busy
from service.llm.cache import AnswerCache
from service.llm.gate import LLMGate, Question
from service.llm.pool import LLMPool

GOOD = '{"genres": ["Drama"]}'
HANG = "hang"  # the server never answers


class InProcessServer(LLMBackend):
    """An LLM server answering `answer` (its text, HANG, or an LLMError it raises), whose model list says `serves`."""
    name, model = "openai", "qwen"

    def __init__(self, endpoint: str, answer: str | LLMError = GOOD, serves: str | None = "qwen"):
        self.endpoint, self.answer, self.serves = endpoint, answer, serves
        self.asked = 0

    async def complete(self, messages, schema) -> str:
        self.asked += 1
        if isinstance(self.answer, LLMError):
            raise self.answer
        if self.answer == HANG:
            await asyncio.Event().wait()
        return self.answer

    async def served_model(self) -> str | None:
        return self.serves


def question(n: int = 0) -> Question:
    return Question([{"role": "user", "content": f"film {n}"}], {}, DEFAULT)


def gate_of(*servers: InProcessServer, timeout_s: float = 20.0) -> LLMGate:
    return LLMGate(list(servers), AnswerCache(servers[0].identity(), 0), concurrency=1, timeout_s=timeout_s)


def test_a_slot_handed_to_a_waiter_in_the_loop_turn_its_wait_times_out_comes_back(monkeypatch):
    """The slot freed and given to the waiting question, and the question's time-out firing, in one turn of the event
    loop: the question ends "busy" and the slot is the server's again, not lost until a restart."""
    timeouts: list[asyncio.Timeout] = []
    real_timeout = asyncio.timeout

    def recorded(delay):
        timeouts.append(real_timeout(delay))
        return timeouts[-1]

    monkeypatch.setattr(pool_module.asyncio, "timeout", recorded)

    async def race() -> LLMError:
        pool = LLMPool([InProcessServer("http://only")], 1, 20.0, 15.0, 5.0)  # 1 slot, LLM_TIMEOUT 20 s
        first = await pool.take("a", None, 20.0, frozenset())
        waiting = asyncio.create_task(pool.take("b", 100.0, 20.0, frozenset()))
        while pool.turns.count == 0:
            await asyncio.sleep(0)
        timeouts[-1].reschedule(asyncio.get_running_loop().time())  # its time-out fires at the next turn...
        pool.release(first, None)  # ...and, in the same turn, the slot that freed is handed to it
        try:
            await waiting
        except LLMError as error:
            assert pool.servers[0].free() == 1 and pool.servers[0].in_flight == 0
            return error
        raise AssertionError("the question got the slot although its time was up")

    assert asyncio.run(race()).outcome == "busy"


def test_a_server_failing_at_once_keeps_the_answer_time_its_answers_showed():
    """Refused, "busy" (HTTP 429/503) or an HTTP error in a few milliseconds: not an answer time. Learned, such failures
    made a failing server the fastest, asked first for every question, and its "busy" estimate admit everything."""
    server = InProcessServer("http://only")
    gate = gate_of(server)
    try:
        gate.pool.servers[0].answer_s = 3.0  # as its answers measured it
        failures = [LLMError("refused", "unreachable"), busy("it answered HTTP 429"), LLMError("HTTP 500", "failed")]
        for n, failure in enumerate(failures * 3):
            server.answer = failure
            assert gate.ask_blocking([question(n)], budget_s=20.0)[0].outcome == failure.outcome
        assert gate.load()["servers"][0]["answer_s"] == 3.0
        server.answer = "not json"  # an answer, if an unusable one: the time it took is an answer's
        assert gate.ask_blocking([question(99)], budget_s=20.0)[0].outcome == "unusable"
        assert gate.load()["servers"][0]["answer_s"] < 3.0
    finally:
        gate.close()
