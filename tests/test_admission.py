"""Admission under load and abuse: a queue bounded by expected wait, slow bodies that hold no slot, clients that
ignore Retry-After, rate limits per verified key, and dependency outages that answer instead of failing."""
from __future__ import annotations

import asyncio
import contextlib
import socket
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from limits import parse
from prometheus_client.parser import text_string_to_metric_families
from limits.aio.strategies import SlidingWindowCounterRateLimiter

from service.api import admission as admission_module
from service.api.admission import Admission
from service.api.app import create_app
from service.api.errors import Overloaded
from service.api.ratelimit import BoundedMemoryStorage, client_of
from service.settings import Settings

from .conftest import HeldDrafts, make_classifier, make_client, serve_in_thread
from .fake_llm import FakeLLMServer

WIZARD = {"description": "A young wizard embarks on an adventure to defeat a dark sorcerer."}


@contextlib.contextmanager
def served(index_dir, **settings):
    """A real uvicorn server of the app over `index_dir` (real connections, real timing)."""
    classifier = make_classifier(index_dir, recognise_films=False, **settings)
    app = create_app(classifier.settings, classifier)
    try:
        with serve_in_thread(app) as url:
            yield url
    finally:
        app.state.runtime.retire()


def slow_body_request(url: str) -> socket.socket:
    """A connection that sends its headers and a tenth of its body, then nothing more."""
    host, port = url.removeprefix("http://").split(":")
    connection = socket.create_connection((host, int(port)))
    body = b'{"description": "' + b"x" * 80 + b'"}'
    connection.sendall(b"POST /classify HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
                       b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body[:10])
    return connection


def gauge(url: str, name: str) -> float:
    for family in text_string_to_metric_families(httpx.get(f"{url}/metrics", timeout=10).text):
        for sample in family.samples:
            if sample.name == name:
                return sample.value
    raise KeyError(name)


def wait_for(condition, what: str) -> None:
    for _ in range(600):
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


def test_clients_that_send_their_body_slowly_hold_no_slot(small_index_dir):
    with served(small_index_dir, max_in_flight=2, body_timeout=2.0) as url:
        slow = [slow_body_request(url) for _ in range(6)]  # three times the slots
        wait_for(lambda: gauge(url, "moviegenre_requests_reading_body") == 6, "the slow bodies being read")
        answers = [httpx.post(f"{url}/classify", json=WIZARD, timeout=10) for _ in range(5)]
        still_reading = gauge(url, "moviegenre_requests_reading_body")
        for connection in slow:
            connection.settimeout(10)
        replies = [connection.recv(4096).decode() for connection in slow]
    assert [a.status_code for a in answers] == [200] * 5 and still_reading == 6
    assert all(r.startswith("HTTP/1.1 408") and "did not arrive within 2 s" in r for r in replies)


class FakeClock:
    def __init__(self):
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 6))
        self.now += seconds


def admission_with(clock: FakeClock, **settings) -> Admission:
    return Admission(Settings(llm_backend="none", **settings), clock=clock, sleep=clock.sleep)


async def _taught(admission: Admission, clock: FakeClock, held_s: float) -> None:
    """Requests that each held their slot `held_s`, as the queue measures them."""
    for _ in range(200):
        async with admission.slot():
            clock.now += held_s


def test_the_queue_admits_what_it_can_serve_in_time_and_turns_the_rest_away():
    async def scenario():
        clock = FakeClock()
        admission = admission_with(clock, max_in_flight=2, min_queue=2, max_queue_wait=0.1)
        await _taught(admission, clock, 0.04)  # a slot frees every 20 ms
        release = asyncio.Event()

        async def request():
            async with admission.slot():
                await release.wait()

        tasks, turned_away = [], []
        for _ in range(2 + 6):  # the two slots, then newcomers one by one
            turned_away.append(admission.turns_away())
            tasks.append(asyncio.create_task(request()))
            await asyncio.sleep(0)
        release.set()
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        return turned_away, [isinstance(o, Overloaded) for o in outcomes]

    turned_away, refused = asyncio.run(scenario())
    # five may wait: the fifth expects 5 × 20 ms = 100 ms, the bound; the sixth would wait 120 ms
    assert turned_away == [False] * 7 + [True] and refused == [False] * 7 + [True]


def test_a_fixed_number_of_clients_is_queued_however_slow_a_request_is():
    async def scenario():
        clock = FakeClock()
        admission = admission_with(clock, max_in_flight=4, min_queue=24, max_queue_wait=0.1)
        await _taught(admission, clock, 0.5)  # a slow spell: 0.5 s a request
        release = asyncio.Event()

        async def request():
            async with admission.slot():
                await release.wait()

        tasks, turned_away = [], []
        for _ in range(4 + 25):
            turned_away.append(admission.turns_away())
            tasks.append(asyncio.create_task(request()))
            await asyncio.sleep(0)
        release.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        return turned_away

    turned_away = asyncio.run(scenario())
    assert turned_away == [False] * (4 + 24) + [True]  # 16 clients (12 waiting) never refused; a flood is


def test_a_client_ignoring_retry_after_gets_its_refusal_when_it_runs_out():
    async def scenario():
        clock = FakeClock()
        admission = admission_with(clock)
        impatient, other = {"client": ("10.0.0.1", 4000)}, {"client": ("10.0.0.2", 4000)}
        first = await admission.overloaded(impatient)
        clock.now += 0.3
        again = await admission.overloaded(impatient)  # 0.3 s later, on the same connection
        elsewhere = await admission.overloaded(other)
        clock.now += 0.1
        afresh = await admission.overloaded(impatient)  # its Retry-After ran out: considered afresh
        return clock.slept, [r.status_code for r in (first, again, elsewhere, afresh)], first.headers["retry-after"]

    slept, statuses, retry_after = asyncio.run(scenario())
    assert statuses == [503] * 4 and retry_after == "1"
    assert slept == [0.7]  # only the early retry waited, and only until its Retry-After ran out


def test_a_slow_llm_holds_no_slot_while_plain_requests_are_answered(small_index_dir):
    gate = threading.Event()
    with FakeLLMServer('{"genres": ["Fantasy"]}', gate=gate) as llm, \
            served(small_index_dir, llm_backend="openai", openai_base_url=f"{llm.url}/v1", max_in_flight=1,
                   min_queue=0, max_queue_wait=0.001, llm_timeout=60) as url, ThreadPoolExecutor(3) as pool:
        waiting = []
        for i in range(3):  # one after the other: the one CPU slot would refuse them together
            waiting.append(pool.submit(httpx.post, f"{url}/classify",
                                       json={"description": f"{WIZARD['description']} {i}"}, timeout=60))
            wait_for(lambda: len(llm.chat_requests()) == i + 1, "the request waiting on the LLM")
        held_slots = gauge(url, "moviegenre_slots_in_flight")
        plain = [httpx.post(f"{url}/classify?llm=false", json=WIZARD, timeout=10) for _ in range(10)]
        gate.set()
        refined = [w.result(timeout=60) for w in waiting]
    assert held_slots == 0 and [p.status_code for p in plain] == [200] * 10
    assert all(r.status_code == 200 and r.json()["backend"] == "openai" for r in refined)


@pytest.mark.parametrize("backend", ["ollama", "openai"])
def test_a_busy_llm_answers_with_the_vote_at_once_and_says_why(small_index_dir, backend):
    gate = threading.Event()
    servers = {"ollama": lambda url: {"ollama_host": url},
               "openai": lambda url: {"openai_base_url": f"{url}/v1"}}
    with FakeLLMServer('{"genres": ["Fantasy"]}', gate=gate) as llm, FakeLLMServer("http503") as full, \
            ThreadPoolExecutor(1) as pool:
        # one slot, a budget of 3 s and answers expected to take 2 s: a second question cannot wait its turn
        client = make_client(small_index_dir, llm_backend=backend, llm_concurrency=1, llm_timeout=3,
                             **servers[backend](llm.url))
        first = pool.submit(client.post, "/classify", json={"description": "A knight rides to a dragon's lair."})
        wait_for(lambda: len(llm.chat_requests()) == 1, "the first question in flight")
        second = client.post("/classify", json=WIZARD)
        first_done_then = first.done()
        gate.set()
        # a server that is itself busy (Ollama's full queue answers 503) is no broken one either
        told_busy = make_client(small_index_dir, llm_backend=backend, **servers[backend](full.url)).post(
            "/classify", json=WIZARD)
        metrics = client.get("/metrics").text
    body = second.json()
    assert second.status_code == 200 and not first_done_then and body["backend"] == "vote"
    assert "the LLM is busy" in body["fallback_reason"] and body["genres"] == body["genres"]
    assert first.result().json()["backend"] == backend
    assert f'moviegenre_llm_requests_total{{backend="{backend}",outcome="busy"}} 1.0' in metrics
    assert told_busy.status_code == 200 and told_busy.json()["backend"] == "vote"
    assert "the LLM is busy" in told_busy.json()["fallback_reason"] and "503" in told_busy.json()["fallback_reason"]


def test_unauthorised_and_invalid_requests_take_no_slot_and_teach_the_queue_nothing(small_index_dir):
    classifier = make_classifier(small_index_dir, recognise_films=False, api_key="shop:k3y", max_in_flight=1,
                                 min_queue=0, max_queue_wait=0.001)
    held = HeldDrafts(classifier)
    app = create_app(classifier.settings, classifier)
    with serve_in_thread(app) as url, ThreadPoolExecutor(1) as pool:
        key = {"X-API-Key": "k3y"}
        holder = pool.submit(httpx.post, f"{url}/classify", json=WIZARD, headers=key, timeout=60)
        assert held.wait_started(1)  # the one slot is taken
        before = gauge(url, "moviegenre_slot_seconds")
        unauthorised = [httpx.post(f"{url}/classify", json=WIZARD, headers=h, timeout=10)
                        for h in ({}, {"X-API-Key": "guess"})]
        overloaded = httpx.post(f"{url}/classify", json=WIZARD, headers=key, timeout=10)
        held.release()
        assert holder.result(timeout=60).status_code == 200
        after_holder = gauge(url, "moviegenre_slot_seconds")
        invalid = [httpx.post(f"{url}/classify", json=body, headers=h, timeout=10)
                   for body in ({"description": ""}, {"text": "x"}) for h in ({}, key)] * 10
        after = gauge(url, "moviegenre_slot_seconds")
    app.state.runtime.retire()
    assert [u.status_code for u in unauthorised] == [401, 401] and overloaded.status_code == 503
    assert [r.status_code for r in invalid] == [401, 422] * 20
    assert before != after_holder == after  # the classified request taught the queue; 401s and 422s did not


def test_corrections_are_checked_and_stored_without_a_cpu_slot_and_a_stored_one_is_served(own_index_dir,
                                                                                          monkeypatch):
    # the one CPU slot stays busy longer than a queued request's patience: a correction still gets its 422 at once,
    # and one that was stored its 201 (never "503, nothing stored"), and it is served
    monkeypatch.setattr(admission_module, "QUEUED_PATIENCE_S", 0.5)
    classifier = make_classifier(own_index_dir, recognise_films=False, feedback_token="alice:t0k", max_in_flight=1,
                                 min_queue=1, multilingual_model="")
    held = HeldDrafts(classifier)
    app = create_app(classifier.settings, classifier)
    story = {"text": "A lighthouse keeper teaches a stray octopus to play chess.", "genres": ["Western"]}
    editor = {"X-API-Key": "t0k"}
    with serve_in_thread(app) as url, ThreadPoolExecutor(1) as pool:
        holder = pool.submit(httpx.post, f"{url}/classify", json=WIZARD, timeout=60)
        assert held.wait_started(1)
        invalid = httpx.post(f"{url}/feedback", json=story | {"genres": ["Space Opera"]}, headers=editor, timeout=10)
        stored = httpx.post(f"{url}/feedback", json=story, headers=editor, timeout=30)
        held.release()
        assert holder.result(timeout=60).status_code == 200
        answer = httpx.post(f"{url}/classify", json={"description": story["text"]}, timeout=30).json()
    app.state.runtime.retire()
    assert invalid.status_code == 422 and "Space Opera" in invalid.json()["error"]
    assert stored.status_code == 201 and stored.json()["status"] == "served"
    assert answer["genres"] == ["Western"]


def test_each_api_key_has_its_own_allowance_and_its_own_label(small_index_dir):
    client = make_client(small_index_dir, api_key="shop:k1, app:k2", rate_limit="2/minute")
    shop = [client.post("/classify", json=WIZARD, headers={"X-API-Key": "k1"}).status_code for _ in range(3)]
    app = [client.post("/classify", json=WIZARD, headers={"Authorization": "Bearer k2"}).status_code
           for _ in range(2)]
    metrics = client.get("/metrics").text
    assert shop == [200, 200, 429] and app == [200, 200]
    assert 'consumer="api:shop",method="POST",path="/classify",route="english",status="200"} 2.0' in metrics
    assert 'consumer="api:app",method="POST",path="/classify",route="english",status="200"} 2.0' in metrics


def test_one_bare_api_key_still_works(small_index_dir):
    client = make_client(small_index_dir, api_key="s3cret")
    assert client.post("/classify", json=WIZARD, headers={"X-API-Key": "s3cret"}).status_code == 200
    assert client.post("/classify", json=WIZARD).status_code == 401
    assert 'consumer="api:default"' in client.get("/metrics").text


def test_the_rate_limit_forgets_the_oldest_clients_beyond_its_bound():
    async def scenario():
        storage = BoundedMemoryStorage(max_keys=100)
        limiter, rate = SlidingWindowCounterRateLimiter(storage), parse("2/minute")
        assert await limiter.hit(rate, "first") and await limiter.hit(rate, "first")
        assert not await limiter.hit(rate, "first")
        for i in range(1000):  # a flood of addresses
            await limiter.hit(rate, f"address-{i}")
        return len(storage.counters), await limiter.hit(rate, "first")

    counters, first_again = asyncio.run(scenario())
    assert counters <= 100 and first_again  # bounded; the oldest client was forgotten, not the newest


def test_ipv6_clients_count_by_their_64_block_and_ipv4_by_address():
    settings = Settings(llm_backend="none")

    def who(host):
        return client_of({"type": "http", "headers": [], "client": (host, 40000)}, settings)

    assert who("2001:db8:1:2::1") == who("2001:db8:1:2:ffff::9") != who("2001:db8:1:3::1")
    assert who("10.0.0.1") != who("10.0.0.2") and who("::ffff:10.0.0.1") == who("10.0.0.1")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_rate_limit_store_that_is_down_or_silent_answers_with_a_note(small_index_dir):
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(50)
        for uri, why in ((f"redis://127.0.0.1:{_closed_port()}", "ConnectionError"),
                         (f"redis://127.0.0.1:{silent.getsockname()[1]}", "timed out")):
            client = make_client(small_index_dir, rate_limit="2/minute", rate_limit_storage=uri)
            answers = [client.post("/classify", json=WIZARD) for _ in range(4)]  # twice the limit
            assert [a.status_code for a in answers] == [200] * 4
            assert all(any("rate-limit store failed" in n and why in n for n in a.json()["notes"]) for a in answers)
            counted = 'moviegenre_degraded_requests_total{dependency="rate_limit_store"} 4.0'
            assert counted in client.get("/metrics").text


class FailingDisk:
    """A SQLite connection whose disk fails while `failing` is set (every other call goes to the real one)."""

    def __init__(self, real: sqlite3.Connection):
        self.real, self.failing = real, True

    def execute(self, *args, **kwargs):
        if self.failing:
            raise sqlite3.OperationalError("disk I/O error")
        return self.real.execute(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.real, name)


def test_a_corrections_store_failing_mid_service_answers_classify_and_refuses_feedback(own_index_dir):
    client = make_client(own_index_dir, feedback_token="alice:t0ken", corrections_poll=0)
    editor = {"X-API-Key": "t0ken"}
    assert client.post("/feedback", headers=editor, json={"text": WIZARD["description"],
                                                          "genres": ["Horror"]}).status_code == 201
    corrections = client.app.state.runtime.classifier.corrections
    disk = corrections.store._db._connection = FailingDisk(corrections.store._db._connection)
    corrections.refresh()  # the poll reads the store again
    answer = client.post("/classify", json=WIZARD)
    stored = client.post("/feedback", headers=editor, json={"text": "Another film", "genres": ["Drama"]})
    listed = client.get("/feedback", headers=editor)
    disk.failing = False
    corrections.refresh()
    recovered = client.post("/classify", json=WIZARD)
    assert answer.status_code == 200 and answer.json()["genres"] == ["Horror"]  # the correction read before
    assert any("corrections store failed" in n and "disk I/O error" in n for n in answer.json()["notes"])
    assert stored.status_code == 503 and "nothing was stored" in stored.json()["error"] and listed.status_code == 503
    assert recovered.status_code == 200 and not any("store" in n for n in recovered.json()["notes"])
    assert 'moviegenre_degraded_requests_total{dependency="corrections_store"} 1.0' in client.get("/metrics").text
