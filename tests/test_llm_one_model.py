"""A pool's one model: a server without the model is set aside, never taken for the pool's model; an upgrade on every
server is followed, the answers cached of the previous model dropped. In-process servers, a fake clock for the
cool-downs."""
from __future__ import annotations

import asyncio
import logging
import threading
import time

from service.llm.cache import AnswerCache
from service.llm.gate import LLMGate
from service.llm.ollama import OllamaBackend
from service.llm.one_model import NOT_HERE

from .fake_llm import FakeLLMServer
from .test_llm_pool_accounting import HeldServer, InProcessServer, question

COOLDOWN_S = 15.0


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def gate_of(*servers: InProcessServer, clock: FakeClock) -> LLMGate:
    return LLMGate(list(servers), AnswerCache(servers[0].identity(), 64), concurrency=1, timeout_s=20.0,
                   cooldown_s=COOLDOWN_S, clock=clock)


def test_ollamas_model_list_without_the_model_says_none():
    with FakeLLMServer() as server:  # its /api/tags lists qwen2:7b only
        async def served(model: str) -> str | None:
            backend = OllamaBackend(server.url, model, 5.0)
            try:
                return await backend.served_model()
            finally:
                await backend.close()
        assert asyncio.run(served("llama3:8b")) is None
        assert asyncio.run(served("qwen2:7b")) == "qwen2:7b@sha256:qwen"


def test_a_first_server_without_the_model_is_set_aside_and_the_pool_serves_the_others():
    empty, other = InProcessServer("http://empty", serves=None), InProcessServer("http://other", serves="qwen@d1")
    gate = gate_of(empty, other, clock=FakeClock())
    try:
        assert gate.check()
        answers = gate.ask_blocking([question(n) for n in range(2)])
        load = gate.load()
    finally:
        gate.close()
    first, second = load["servers"]
    assert answers == [["Drama"], ["Drama"]] and empty.asked == 0 and other.asked == 2
    assert load["model"] == "qwen@d1" and first["set_aside"] and first["why"] == NOT_HERE
    assert not second["set_aside"]


def test_once_the_model_is_pulled_on_servers_that_had_none_the_pool_serves_it():
    clock = FakeClock()
    first, second = InProcessServer("http://a", serves=None), InProcessServer("http://b", serves=None)
    gate = gate_of(first, second, clock=clock)
    try:
        gate.check()
        assert [s["why"] for s in gate.load()["servers"]] == [NOT_HERE, NOT_HERE] and gate.load()["model"] is None
        first.serves = second.serves = "qwen@d1"  # `ollama pull` on both
        clock.now += COOLDOWN_S
        gate.check()
        answers = gate.ask_blocking([question()])
        load = gate.load()
    finally:
        gate.close()
    assert answers == [["Drama"]] and load["model"] == "qwen@d1"
    assert not any(s["set_aside"] for s in load["servers"])


def test_an_upgrade_on_every_server_is_adopted_and_the_previous_models_answers_dropped(caplog):
    clock = FakeClock()
    first, second = InProcessServer("http://a", serves="qwen@d1"), InProcessServer("http://b", serves="qwen@d1")
    gate = gate_of(first, second, clock=clock)
    try:
        gate.check()
        assert gate.ask_blocking([question()]) == [["Drama"]] and gate.stats()["size"] == 1
        first.serves = "qwen@d2"  # upgraded first: kept out, the other still answers
        gate.check()
        midway = gate.load()
        second.serves = "qwen@d2"  # then the other: every reachable server agrees
        with caplog.at_level(logging.WARNING, logger="moviegenre"):
            gate.check()
        asked_before = first.asked + second.asked
        again = gate.ask_blocking([question()])  # not answered from the previous model's cache
        load, stats = gate.load(), gate.stats()
    finally:
        gate.close()
    assert midway["model"] == "qwen@d1" and midway["servers"][0]["set_aside"]
    assert "another model" in midway["servers"][0]["why"] and not midway["servers"][1]["set_aside"]
    assert again == [["Drama"]] and first.asked + second.asked == asked_before + 1 and stats["size"] == 1
    assert load["model"] == "qwen@d2" and not any(s["set_aside"] for s in load["servers"])
    assert "'qwen@d2'" in load["model_change"] and "1 answers cached of 'qwen@d1' were dropped" in load["model_change"]
    assert any("every reachable server" in r.getMessage() for r in caplog.records)


def test_a_server_of_another_model_is_not_adopted_while_the_pools_own_server_is_out_of_reach():
    """The pool's own server's model list stops answering a moment (a restart) while a server of another model is
    read: that is no upgrade. The pool keeps its model, and its server serves again once it answers."""
    clock = FakeClock()
    own, other = InProcessServer("http://a", serves="qwen@d1"), InProcessServer("http://b", serves="llama3@e1")
    gate = gate_of(own, other, clock=clock)
    try:
        gate.check()
        own.serves = ConnectionError("restarting")
        gate.check()
        during = gate.load()
        own.serves = "qwen@d1"
        clock.now += COOLDOWN_S * 4  # past any cool-down the outage set
        gate.check()
        answers = gate.ask_blocking([question()])
        after = gate.load()
    finally:
        gate.close()
    assert during["model"] == "qwen@d1" and during["servers"][1]["set_aside"] and during["model_change"] is None
    assert after["model"] == "qwen@d1" and not after["servers"][0]["set_aside"] and after["servers"][1]["set_aside"]
    assert answers == [["Drama"]] and own.asked == 1 and other.asked == 0


def test_an_answer_of_the_previous_model_finishing_after_an_upgrade_is_not_cached():
    """A call to the old model is under way when every server turns out upgraded: its answer is the caller's, but not
    kept for the new model's questions."""
    clock = FakeClock()
    released = threading.Event()

    first, second = HeldServer("http://a", released, "qwen@d1"), HeldServer("http://b", released, "qwen@d1")
    gate = gate_of(first, second, clock=clock)
    answers: list = []
    try:
        gate.check()
        asking = threading.Thread(target=lambda: answers.extend(gate.ask_blocking([question()])))
        asking.start()
        for _ in range(3000):  # until the call is under way (an upper bound, not a margin)
            if first.asked + second.asked:
                break
            time.sleep(0.01)
        first.serves = second.serves = "qwen@d2"
        gate.check()
        released.set()
        asking.join(30)
        load, stats = gate.load(), gate.stats()
    finally:
        released.set()
        gate.close()
    assert answers == [["Drama"]] and load["model"] == "qwen@d2" and stats["size"] == 0


def test_servers_that_disagree_on_a_new_model_are_kept_out_saying_why():
    clock = FakeClock()
    first, second = InProcessServer("http://a", serves="qwen@d1"), InProcessServer("http://b", serves="qwen@d1")
    gate = gate_of(first, second, clock=clock)
    try:
        gate.check()
        first.serves, second.serves = "qwen@d2", "llama3@e1"
        gate.check()
        [answer] = gate.ask_blocking([question()], budget_s=5.0)
        load = gate.load()
    finally:
        gate.close()
    assert load["model"] == "qwen@d1" and load["model_change"] is None
    assert all(s["set_aside"] and "another model" in s["why"] for s in load["servers"])
    assert answer.outcome == "unreachable" and "every LLM server is set aside" in str(answer)
