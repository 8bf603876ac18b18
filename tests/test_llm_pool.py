"""The LLM as a pool of servers (OPENAI_BASE_URL / OLLAMA_HOST, comma-separated), each with its own slots, a failing
one set aside and probed back, one serving another model kept out; consumers taking turns in its queue."""
from __future__ import annotations

import json
import logging
import threading
import time

import pytest
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.genres import DEFAULT
from service.llm import make_gate
from service.llm.gate import Question
from service.llm.turns import Turns
from service.settings import ConfigurationError, Settings

from .conftest import make_classifier, make_client
from .fake_llm import GOOD, FakeLLMServer
from .local_server import closed_port_url

WIZARD = "A young wizard embarks on an adventure to defeat a dark sorcerer."
DETECTIVES = "Two weary detectives chase a killer who leaves riddles at every crime scene in a rainy city."
DRAMA = json.dumps({"genres": ["Drama"]})


def pool_client(index_dir, urls: list[str], backend: str = "openai", **settings):
    if backend == "ollama":
        return make_client(index_dir, llm_backend="ollama", ollama_host=",".join(urls), **settings)
    return make_client(index_dir, llm_backend="openai", openai_base_url=",".join(f"{url}/v1" for url in urls),
                       openai_model="qwen2-7b-instruct", **settings)


def servers_of(client) -> list[dict]:
    return client.get("/health").json()["llm"]["load"]["servers"]


@pytest.mark.parametrize("backend", ["openai", "ollama"])
def test_both_servers_of_a_pool_answer_questions_at_once(small_index_dir, backend):
    with FakeLLMServer() as first, FakeLLMServer() as second:
        client = pool_client(small_index_dir, [first.url, second.url], backend, llm_concurrency=1)
        results = client.post("/classify/batch", json={"descriptions": [WIZARD, DETECTIVES]}).json()["results"]
        servers = servers_of(client)
    # one slot each: the second question went to the second server instead of waiting for the first's
    assert [r["backend"] for r in results] == [backend, backend]
    assert len(first.chat_requests()) == len(second.chat_requests()) == 1
    assert [s["set_aside"] for s in servers] == [False, False] and all(s["slots"] == 1 for s in servers)
    assert [s["calls"] for s in servers] == [{"answered": 1}, {"answered": 1}]


def test_a_server_that_refuses_connections_is_set_aside_and_the_other_answers_everything(small_index_dir):
    with FakeLLMServer() as live:
        client = pool_client(small_index_dir, [closed_port_url(), live.url])
        bodies = [client.post("/classify", json={"description": f"{WIZARD} ({i})"}).json() for i in range(3)]
        dead, alive = servers_of(client)
    assert all(b["backend"] == "openai" and b["fallback_reason"] is None for b in bodies)
    assert len(live.chat_requests()) == 3
    assert dead["set_aside"] and "did not answer" in dead["why"] and dead["reachable"] is False
    assert not alive["set_aside"] and alive["model"] == "qwen"


def test_a_question_a_server_fails_is_answered_by_another_and_the_failing_one_set_aside(small_index_dir, caplog):
    with FakeLLMServer("http500") as failing, FakeLLMServer(DRAMA) as other:
        client = pool_client(small_index_dir, [failing.url, other.url], llm_concurrency=1)
        with caplog.at_level(logging.WARNING, logger="moviegenre"):
            body = client.post("/classify", json={"description": WIZARD}).json()
            again = client.post("/classify", json={"description": DETECTIVES}).json()
        first, second = servers_of(client)
    assert body["backend"] == "openai" and body["llm_genres"] == ["Drama"] and body["fallback_reason"] is None
    assert again["llm_genres"] == ["Drama"]
    assert len(failing.chat_requests()) == 1  # tried once, then set aside: the next question went to the other
    assert first["set_aside"] and "HTTP 500" in first["why"] and first["calls"] == {"failed": 1}
    assert second["calls"] == {"answered": 2}
    assert any("set aside" in r.getMessage() and "HTTP 500" in r.getMessage() for r in caplog.records)


def test_a_server_saying_it_is_busy_passes_the_question_on_without_being_set_aside(small_index_dir):
    with FakeLLMServer("http503") as busy, FakeLLMServer(DRAMA) as other:
        client = pool_client(small_index_dir, [busy.url, other.url], llm_concurrency=1)
        body = client.post("/classify", json={"description": WIZARD}).json()
        first, _ = servers_of(client)
    assert body["llm_genres"] == ["Drama"] and len(busy.chat_requests()) == 1
    assert not first["set_aside"] and first["calls"] == {"busy": 1}


def test_when_every_server_is_set_aside_the_vote_answers_and_says_why(small_index_dir):
    client = pool_client(small_index_dir, [closed_port_url(), closed_port_url()])
    response = client.post("/classify", json={"description": WIZARD})
    health = client.get("/health").json()
    body = response.json()
    assert response.status_code == 200 and body["backend"] == "vote"
    assert "every LLM server is set aside" in body["fallback_reason"]
    assert all(s["set_aside"] for s in health["llm"]["load"]["servers"]) and health["llm"]["reachable"] is False


@pytest.mark.parametrize("backend", ["openai", "ollama"])
def test_a_server_serving_another_model_under_the_name_is_kept_out_and_reported(small_index_dir, backend, caplog):
    with FakeLLMServer(model="qwen2-7b") as first, FakeLLMServer(DRAMA, model="llama3-8b") as other:
        with caplog.at_level(logging.INFO, logger="moviegenre"):
            client = pool_client(small_index_dir, [first.url, other.url], backend, llm_concurrency=1)
            bodies = [client.post("/classify", json={"description": f"{WIZARD} ({i})"}).json() for i in range(3)]
            reference, mixed = servers_of(client)
    assert all(b["llm_genres"] == ["Fantasy", "Adventure"] for b in bodies) and other.chat_requests() == []
    assert not reference["set_aside"] and "qwen2-7b" in reference["model"]
    assert mixed["set_aside"] and "another model" in mixed["why"] and "llama3-8b" in mixed["why"]
    assert any("another model" in r.getMessage() for r in caplog.records)


def test_a_single_server_is_never_set_aside_its_next_question_is_its_probe(small_index_dir):
    with FakeLLMServer("http500") as server:
        client = make_client(small_index_dir, llm_backend="openai", openai_base_url=f"{server.url}/v1")
        failed = client.post("/classify", json={"description": WIZARD}).json()
        server.answer = GOOD
        answered = client.post("/classify", json={"description": DETECTIVES}).json()
        [only] = servers_of(client)
    assert "HTTP 500" in failed["fallback_reason"] and answered["backend"] == "openai"
    assert not only["set_aside"] and "(" not in failed["fallback_reason"]  # one server: messages as they were


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_set_aside_server_is_probed_back_after_its_cool_down_and_set_aside_longer_if_it_fails_again():
    clock = FakeClock()
    question = [Question([{"role": "user", "content": "a film"}], {}, DEFAULT)]
    with FakeLLMServer("http500") as flaky, FakeLLMServer(DRAMA) as steady:
        settings = Settings(llm_backend="openai", openai_base_url=f"{flaky.url}/v1,{steady.url}/v1",
                            llm_concurrency=1, llm_cooldown=30, llm_cache_size=1)
        gate = make_gate(settings)
        gate.pool.servers[0].breaker.clock = gate.pool.servers[1].breaker.clock = clock
        try:
            assert gate.ask_blocking(question) == [["Drama"]]
            flaky_state = gate.load()["servers"][0]
            assert flaky_state["set_aside"] and flaky_state["retry_in_s"] == 30
            flaky.answer = GOOD  # it recovers, but its cool-down has not passed: a probe leaves it aside
            gate.check()
            assert gate.load()["servers"][0]["set_aside"]
            clock.now = 30  # cool-down over: the probe (its model list) brings it back
            gate.check()
            assert not gate.load()["servers"][0]["set_aside"]
            flaky.answer = "http500"  # failing again before any answer: set aside twice as long
            gate.pool.servers[1].answer_s = 99.0  # so the next question goes to the flaky one first
            assert gate.ask_blocking([Question([{"role": "user", "content": "another"}], {}, DEFAULT)]) == [["Drama"]]
            assert gate.load()["servers"][0]["retry_in_s"] == 60
        finally:
            gate.close()
    assert len(flaky.chat_requests()) == 2


def test_consumers_take_turns_in_the_queue():
    class Waiter:
        def __init__(self, consumer, n):
            self.consumer, self.n = consumer, n

    turns: Turns = Turns()
    for i in range(5):
        turns.push(Waiter("batch", i))
    assert turns.ahead_of("other") == 1 and turns.ahead_of("batch") == 5
    turns.push(Waiter("other", 0))
    served = [(w.consumer, w.n) for w in iter(lambda: turns.take(lambda w: True), None)]
    assert served == [("batch", 0), ("other", 0), ("batch", 1), ("batch", 2), ("batch", 3), ("batch", 4)]
    assert turns.count == 0


def _client_from_header(app):
    """The app with each request's client address taken from an X-Test-Client header: two consumers, one client."""
    async def wrapped(scope, receive, send):
        if scope["type"] == "http":
            address = dict(scope["headers"]).get(b"x-test-client")
            scope = scope | {"client": (address.decode(), 50000)} if address else scope
        await app(scope, receive, send)
    return wrapped


def test_a_second_consumer_is_answered_by_the_llm_while_a_big_batch_of_another_waits(small_index_dir):
    permits = threading.Semaphore(0)  # each LLM answer waits for one

    def answer(messages):
        assert permits.acquire(timeout=120)
        return GOOD

    with FakeLLMServer(answer) as server:
        classifier = make_classifier(small_index_dir, llm_backend="openai", openai_base_url=f"{server.url}/v1",
                                     llm_concurrency=1, llm_timeout=120)
        app = create_app(classifier.settings, classifier)
        gate = classifier.llm
        batch = [f"{DETECTIVES} Case {i}." for i in range(24)]
        with TestClient(_client_from_header(app)) as http:
            permits.release(12)  # quick answers first: the queue is measured as short enough for a batch to wait
            for i in range(12):
                assert http.post("/classify", json={"description": f"{WIZARD} ({i})"}).json()["backend"] == "openai"
            done: dict = {}

            def post(name, path, body, address):
                done[name] = http.post(path, json=body, headers={"X-Test-Client": address}).json()
                done[f"{name}_left_waiting"] = gate.load()["waiting"]  # the LLM's queue as this answer came

            first = threading.Thread(target=post, args=("a", "/classify/batch", {"descriptions": batch}, "10.0.0.1"))
            second = threading.Thread(target=post, args=("b", "/classify", {"description": WIZARD + " Again."},
                                                         "10.0.0.2"))
            try:
                first.start()
                _until(lambda: gate.load()["waiting"] == 23)  # one of the batch in flight, the rest waiting
                second.start()
                _until(lambda: gate.load()["waiting"] == 24)
                permits.release(3)  # the batch's first two and the other consumer's question: its turn came second
                second.join(60)
                answered_before_the_batch = not second.is_alive()
            finally:
                permits.release(100)
                first.join(120)
                second.join(60)
    assert answered_before_the_batch and done["b"]["backend"] == "openai" and done["b"]["fallback_reason"] is None
    assert done["b_left_waiting"] == 21  # the big batch still waited while the other consumer was answered
    assert [r["backend"] for r in done["a"]["results"]] == ["openai"] * 24


def _until(condition, limit_s: float = 60.0) -> None:
    """Wait for a state of the service (not for time to pass): fails if it never comes."""
    deadline = time.monotonic() + limit_s
    while not condition():
        assert time.monotonic() < deadline, "the state never came"
        time.sleep(0.01)


def test_several_servers_are_read_comma_separated_and_the_pool_is_named_by_its_first():
    settings = Settings(llm_backend="ollama", ollama_host=" http://a:11434/ , http://b:11434,")
    assert settings.llm.servers() == ["http://a:11434", "http://b:11434"]
    assert settings.llm.identity() == {"backend": "ollama", "model": "qwen2:7b", "base_url": "http://a:11434"}
    with pytest.raises(ConfigurationError, match="names no server"):
        Settings(llm_backend="openai", openai_base_url=" , ")


def test_metrics_show_each_server_of_the_pool(small_index_dir):
    with FakeLLMServer() as first, FakeLLMServer() as second:
        client = pool_client(small_index_dir, [first.url, second.url], llm_concurrency=1)
        client.post("/classify/batch", json={"descriptions": [WIZARD, DETECTIVES]})
        text = client.get("/metrics").text
    for server in (first, second):
        address = f"{server.url}/v1"
        assert f'moviegenre_llm_in_flight{{backend="openai",server="{address}"}} 0.0' in text
        assert f'moviegenre_llm_server_set_aside{{backend="openai",server="{address}"}} 0.0' in text
        assert (f'moviegenre_llm_server_calls_total{{backend="openai",outcome="answered",server="{address}"}} 1.0'
                in text)
    assert 'moviegenre_llm_waiting{backend="openai"} 0.0' in text
