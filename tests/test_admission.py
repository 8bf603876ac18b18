"""Admission under load and abuse: a queue bounded by expected wait, slow bodies that hold no slot, clients that
ignore Retry-After, rate limits per verified key, and dependency outages that answer instead of failing."""
from __future__ import annotations

import asyncio
import contextlib
import socket
import sqlite3
import threading
import time

import httpx
from limits import parse
from limits.aio.strategies import SlidingWindowCounterRateLimiter

from service.api.admission import DEADLINE_FACTOR, Queue
from service.api.app import create_app
from service.api.ratelimit import BoundedMemoryStorage, client_of
from service.settings import Settings

from .conftest import make_classifier, make_client, serve_in_thread
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


def test_clients_that_send_their_body_slowly_hold_no_slot(small_index_dir):
    with served(small_index_dir, max_in_flight=2, body_timeout_s=2.0) as url:
        slow = [slow_body_request(url) for _ in range(6)]  # three times the slots
        time.sleep(0.3)  # their headers are in: under the old admission they held both slots now
        answers = [httpx.post(f"{url}/classify", json=WIZARD, timeout=10) for _ in range(5)]
        for connection in slow:
            connection.settimeout(10)
        replies = [connection.recv(4096).decode() for connection in slow]
    assert [a.status_code for a in answers] == [200] * 5
    assert all(r.startswith("HTTP/1.1 408") and "did not arrive within 2 s" in r for r in replies)


def test_the_queue_admits_what_it_can_serve_in_time_and_refuses_the_rest_at_once():
    async def scenario():
        queue = Queue(slots=2, max_wait=0.1)
        queue.slot_s = 0.04  # measured: a request holds a slot 40 ms, so a slot frees every 20 ms
        assert await queue.enter() and await queue.enter()  # the two slots
        waiters = [asyncio.create_task(queue.enter()) for _ in range(4)]
        await asyncio.sleep(0)
        assert queue.waiting == 4 and abs(queue.expected_wait() - 0.1) < 1e-9  # the fifth: 5 × 20 ms, in time
        fifth = asyncio.create_task(queue.enter())
        await asyncio.sleep(0)
        assert queue.waiting == 5 and queue.full()
        started = time.monotonic()
        assert not await queue.enter()  # the sixth would wait 120 ms: refused at once
        refused_in = time.monotonic() - started
        queue.leave(0.04)  # a slot frees: the first in line takes it
        assert await waiters[0] and queue.in_flight == 2
        late = await asyncio.gather(*waiters[1:], fifth)  # nobody frees a slot again: refused by the deadline
        return refused_in, late, time.monotonic() - started

    refused_in, late, waited = asyncio.run(scenario())
    assert refused_in < 0.05 and late == [False] * 4 and waited >= DEADLINE_FACTOR * 0.1


def test_slot_time_follows_what_requests_cost():
    async def scenario():
        queue = Queue(slots=4, max_wait=0.1)
        assert not queue.full()
        for _ in range(100):
            assert await queue.enter()
            queue.leave(2.0)  # requests that wait on a slow LLM hold their slot 2 s
        held = [await queue.enter() for _ in range(4)]
        return held, queue.slot_s, queue.expected_wait(), queue.full()

    held, slot_s, expected, full = asyncio.run(scenario())
    assert held == [True] * 4 and slot_s > 1.5
    assert expected > 0.3 and full  # the next in line would wait ~0.5 s: refused at once rather than queued


def test_a_client_ignoring_retry_after_gets_its_refusal_when_it_runs_out(small_index_dir):
    gate = threading.Event()
    with FakeLLMServer('{"genres": ["Fantasy"]}', gate=gate) as llm, \
            served(small_index_dir, llm_backend="openai", openai_base_url=f"{llm.url}/v1", max_in_flight=1,
                   max_queue_wait_s=0.01) as url:
        holder = threading.Thread(target=httpx.post, args=(f"{url}/classify",), kwargs={"json": WIZARD, "timeout": 30})
        holder.start()
        assert llm.chat_started.wait(10)  # the one slot is held by a request waiting on the LLM
        with httpx.Client(base_url=url, timeout=10) as impatient:
            times, answers = [], []
            for _ in range(3):  # asks again at once, on the same connection
                started = time.monotonic()
                answers.append(impatient.post("/classify", json=WIZARD))
                times.append(time.monotonic() - started)
        other = time.monotonic()
        fresh = httpx.post(f"{url}/classify", json=WIZARD, timeout=10)
        other = time.monotonic() - other
        gate.set()
        holder.join(30)
    assert [a.status_code for a in answers] == [503] * 3 and fresh.status_code == 503
    assert all(a.headers["retry-after"] == "1" for a in answers)
    # the first refusal at once; the next ones when the Retry-After it ignored has run out
    assert times[0] < 0.5 and times[1] > 0.8 and other < 0.5


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
    client = make_client(own_index_dir, feedback_token="alice:t0ken", corrections_poll_s=0.01)
    editor = {"X-API-Key": "t0ken"}
    assert client.post("/feedback", headers=editor, json={"text": WIZARD["description"],
                                                          "genres": ["Horror"]}).status_code == 201
    store = client.app.state.runtime.classifier.corrections.store
    disk = store._db = FailingDisk(store._db)
    time.sleep(0.02)  # the next request reads the store again
    answer = client.post("/classify", json=WIZARD)
    stored = client.post("/feedback", headers=editor, json={"text": "Another film", "genres": ["Drama"]})
    listed = client.get("/feedback", headers=editor)
    disk.failing = False
    time.sleep(0.02)
    recovered = client.post("/classify", json=WIZARD)
    assert answer.status_code == 200 and answer.json()["genres"] == ["Horror"]  # the correction read before
    assert any("corrections store failed" in n and "disk I/O error" in n for n in answer.json()["notes"])
    assert stored.status_code == 503 and "nothing was stored" in stored.json()["error"] and listed.status_code == 503
    assert recovered.status_code == 200 and not any("store" in n for n in recovered.json()["notes"])
    assert 'moviegenre_degraded_requests_total{dependency="corrections_store"} 1.0' in client.get("/metrics").text
