"""What the end of a question does to the pool's servers: its slot always comes back, a time-out is the server's fault
only when the call had its whole LLM_TIMEOUT, and a server's mean answer time is learned from its answers, not from
its failures. In-process servers on the gate's own event loop: every ordering is set by the test, never by time."""
from __future__ import annotations

import asyncio
import threading
import time

from service.genres import DEFAULT
from service.llm import pool as pool_module
from service.llm.base import LLMBackend, LLMError, busy
from service.llm.cache import AnswerCache
from service.llm.gate import LLMGate, Question
from service.llm.pool import LLMPool

GOOD = '{"genres": ["Drama"]}'
HANG = "hang"  # the server never answers


class InProcessServer(LLMBackend):
    """An LLM server answering `answer` (its text, HANG, or an LLMError it raises), whose model list says `serves`
    (an exception: the list does not answer)."""
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
        if isinstance(self.serves, Exception):  # its model list does not answer
            raise self.serves
        return self.serves


class HeldServer(InProcessServer):
    """A server whose answers wait until `released` is set (from the test's thread)."""

    def __init__(self, endpoint: str, released: threading.Event, serves: str | None = "qwen"):
        super().__init__(endpoint, serves=serves)
        self.released = released

    async def complete(self, messages, schema) -> str:
        self.asked += 1
        await asyncio.to_thread(self.released.wait, 30)
        return self.answer


def question(n: int = 0) -> Question:
    return Question([{"role": "user", "content": f"film {n}"}], {}, DEFAULT)


def gate_of(*servers: InProcessServer, timeout_s: float = 20.0) -> LLMGate:
    return LLMGate(list(servers), AnswerCache(servers[0].identity(), 64), concurrency=1, timeout_s=timeout_s)


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


def test_a_call_cut_short_by_its_requests_budget_does_not_set_its_server_aside():
    """A question with half a second of its budget left (LLM_TIMEOUT 1000 s) starts on a server expected to answer
    in time, which does not: it ends timed out, and the server stays in the pool, its mean answer time not lowered."""
    slow, other = InProcessServer("http://slow", HANG), InProcessServer("http://other")
    gate = gate_of(slow, other, timeout_s=1000.0)
    try:
        gate.pool.servers[0].answer_s, gate.pool.servers[1].answer_s = 0.1, 5.0  # as measured: only `slow` fits
        [answer] = gate.ask_blocking([question()], budget_s=0.5)
        first, second = gate.load()["servers"]
    finally:
        gate.close()
    assert answer.outcome == "timed_out" and slow.asked == 1 and other.asked == 0
    assert not first["set_aside"] and first["calls"] == {"timed_out": 1} and first["answer_s"] >= 0.1
    assert not second["set_aside"]


def test_a_call_that_had_the_whole_llm_timeout_and_timed_out_sets_its_server_aside():
    hung, other = InProcessServer("http://hung", HANG), InProcessServer("http://other")
    gate = gate_of(hung, other, timeout_s=0.5)
    try:
        gate.pool.servers[0].answer_s = 0.1  # asked first
        assert gate.ask_blocking([question()], budget_s=None) == [["Drama"]]
        first, second = gate.load()["servers"]
    finally:
        gate.close()
    assert hung.asked == other.asked == 1
    assert first["set_aside"] and "did not answer within 0.5 s" in first["why"] and not second["set_aside"]


def test_a_question_is_not_started_on_a_server_it_cannot_expect_an_answer_from_in_the_time_left():
    """A server fails a question late in its budget: the question is not retried on a server whose mean answer time
    (with a tenth to spare) is longer than the time left, where it could only time out. It is "busy", saying why."""
    failing = InProcessServer("http://failing", LLMError("the OpenAI-compatible server is unreachable", "unreachable"))
    slow = InProcessServer("http://slow")
    gate = gate_of(failing, slow, timeout_s=20.0)
    try:
        gate.pool.servers[0].answer_s, gate.pool.servers[1].answer_s = 0.1, 3.0
        [answer] = gate.ask_blocking([question()], budget_s=3.0)  # what is left of a request's 20 s, say
        first, second = gate.load()["servers"]
    finally:
        gate.close()
    assert isinstance(answer, LLMError) and answer.outcome == "busy"
    assert "unreachable (http://failing); then the LLM is busy" in str(answer)
    assert "answer in about 3.0 s at best" in str(answer)  # why: the server not asked yet is too slow
    assert failing.asked == 1 and slow.asked == 0 and first["set_aside"] and not second["set_aside"]


def test_a_waiting_question_no_server_fits_any_more_is_told_so_when_a_slot_frees_not_at_its_deadline():
    """A question waits for the one slot; by the time it frees, the server's answer time (as its answers taught it)
    is longer than what the question has left: it is answered "busy" then, saying why, not kept until its budget
    ends with "no slot came free"."""
    released = threading.Event()
    server = HeldServer("http://slow", released)
    gate = gate_of(server, timeout_s=20.0)
    answers: dict[str, list] = {}
    try:
        gate.pool.servers[0].answer_s = 0.1
        first = threading.Thread(target=lambda: answers.update(first=gate.ask_blocking([question(1)])))
        first.start()
        second = threading.Thread(target=lambda: answers.update(second=gate.ask_blocking([question(2)], budget_s=15)))
        for _ in range(3000):  # until the first call is under way, then until the second waits (upper bounds)
            if server.asked == 1 and not second.is_alive():
                second.start()
            if gate.load()["waiting"] == 1:
                break
            time.sleep(0.01)
        gate.pool.servers[0].answer_s = 600.0  # as slow answers would have taught it
        released.set()
        first.join(30)
        second.join(30)
    finally:
        released.set()
        gate.close()
    [late] = answers["second"]
    assert answers["first"] == [["Drama"]] and server.asked == 1
    assert isinstance(late, LLMError) and late.outcome == "busy" and "at best" in str(late)
