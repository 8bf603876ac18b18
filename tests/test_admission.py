"""Admission under load and abuse: a queue bounded by expected wait, slow bodies that hold no slot, clients that
ignore Retry-After, rate limits per verified key, and dependency outages that answer instead of failing."""
from __future__ import annotations

import asyncio
import contextlib
import json
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
from service.api.keys import client_of
from service.api.ratelimit import BoundedMemoryStorage
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
        vote = client.post("/classify?llm=false", json=WIZARD).json()  # what the vote alone answers
    body = second.json()
    assert second.status_code == 200 and not first_done_then and body["backend"] == "vote"
    assert "the LLM is busy" in body["fallback_reason"] and body["llm_genres"] is None
    assert (body["genres"], body["scores"]) == (vote["genres"], vote["scores"]) and body["genres"]
    assert first.result().json()["backend"] == backend
    assert f'moviegenre_llm_requests_total{{backend="{backend}",outcome="busy"}} 1.0' in metrics
    assert told_busy.status_code == 200 and told_busy.json()["backend"] == "vote"
    assert "the LLM is busy" in told_busy.json()["fallback_reason"] and "503" in told_busy.json()["fallback_reason"]


def test_unauthorised_and_invalid_requests_take_no_slot_and_teach_the_queue_nothing(small_index_dir):
    classifier = make_classifier(small_index_dir, recognise_films=False, api_keys="shop:k3y", max_in_flight=1,
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
    client = make_client(small_index_dir, api_keys="shop:k1, app:k2", rate_limit="2/day")
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
        limiter, rate = SlidingWindowCounterRateLimiter(storage), parse("2/day")
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


def test_a_rate_limit_store_that_is_down_or_silent_is_replaced_by_this_process_count_with_a_note(small_index_dir):
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(50)
        # a refusal the client does not report within the request's wait (its first connection, on a loaded
        # machine) is told as a time-out: a silent server's never is told otherwise
        for uri, whys in ((f"redis://127.0.0.1:{_closed_port()}", ("ConnectionError", "timed out")),
                          (f"redis://127.0.0.1:{silent.getsockname()[1]}", ("timed out",))):
            client = make_client(small_index_dir, rate_limit="2/day", rate_limit_storage=uri)
            answers = [client.post("/classify", json=WIZARD) for _ in range(4)]  # twice the limit
            assert [a.status_code for a in answers] == [200, 200, 429, 429]  # counted here, not let through
            assert all(any("rate-limit store failed" in n and any(why in n for why in whys) and
                           "this process alone" in n for n in a.json()["notes"]) for a in answers[:2])
            metrics = client.get("/metrics").text
            assert 'moviegenre_degraded_requests_total{dependency="rate_limit_store"} 4.0' in metrics
            assert "moviegenre_rate_limit_store_available 0.0" in metrics


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


def trickled(url: str, path: str, headers: dict[str, str]) -> str:
    """The status line a server answers a POST with whose body arrives a byte at a time and is never whole (the
    last byte is never sent): the body cannot have been read whole when the answer comes."""
    host, port = url.removeprefix("http://").split(":")
    body = json.dumps({"description": "x" * 200}).encode()
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    connection = socket.create_connection((host, int(port)))
    connection.sendall(f"POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
                       f"Content-Length: {len(body)}\r\n{head}\r\n".encode())
    answered = threading.Event()

    def trickle() -> None:
        for byte in range(len(body) - 1):
            if answered.wait(0.02):  # the pace of the trickle, not a deadline
                return
            try:
                connection.sendall(body[byte:byte + 1])
            except OSError:  # the server answered and closed
                return

    sender = threading.Thread(target=trickle)
    sender.start()
    connection.settimeout(60)  # only a guard against a server that never answers (the failure this test is for)
    reply = b""
    try:
        while b"\r\n" not in reply:
            chunk = connection.recv(4096)
            if not chunk:
                break
            reply += chunk
    finally:
        answered.set()
        sender.join()
        connection.close()
    return reply.split(b"\r\n")[0].decode()


def test_every_client_that_trickles_its_body_is_answered_401_or_408_without_it_being_read_whole(small_index_dir):
    clients = {"no key": ("/classify", {}), "a wrong key": ("/classify", {"X-API-Key": "guess"}),
               "the key": ("/classify", {"X-API-Key": "team:key,1"}), "an editor's route": ("/feedback", {})}
    with served(small_index_dir, api_key="team:key,1", body_timeout=0.5) as url:
        answers = {client: trickled(url, path, headers) for client, (path, headers) in clients.items()}
        reading = gauge(url, "moviegenre_requests_reading_body")
    # without a key, at once (its body is never read); with one, or where the route decides, after BODY_TIMEOUT
    assert answers == {"no key": "HTTP/1.1 401 Unauthorized", "a wrong key": "HTTP/1.1 401 Unauthorized",
                       "the key": "HTTP/1.1 408 Request Timeout", "an editor's route": "HTTP/1.1 408 Request Timeout"}
    assert reading == 0


def test_an_api_key_is_taken_whole_and_named_keys_have_a_variable_of_their_own(small_index_dir):
    client = make_client(small_index_dir, api_key="team:key,1", api_keys="shop:k1,app:k2")
    presented = ("team:key,1", "key,1", "key", "team", "1", "k1", "k2", "shop:k1")
    statuses = {key: client.post("/classify", json=WIZARD, headers={"X-API-Key": key}).status_code
                for key in presented}
    bearer = client.post("/classify", json=WIZARD, headers={"Authorization": "Bearer team:key,1"})
    metrics = client.get("/metrics").text
    assert statuses == {"team:key,1": 200, "key,1": 401, "key": 401, "team": 401, "1": 401, "k1": 200, "k2": 200,
                        "shop:k1": 401}
    assert bearer.status_code == 200
    for consumer, answered in (("api:default", 2), ("api:shop", 1), ("api:app", 1)):
        assert f'consumer="{consumer}",method="POST",path="/classify",route="english",status="200"}} ' \
               f'{answered:.1f}' in metrics


def test_a_batch_of_n_descriptions_costs_n_of_its_consumer_allowance(small_index_dir):
    client = make_client(small_index_dir, api_keys="shop:k1", rate_limit="5/day")
    key = {"X-API-Key": "k1"}

    def batch(size: int):
        return client.post("/classify/batch", json={"descriptions": [WIZARD["description"]] * size}, headers=key)

    three, too_big, beyond = batch(3), batch(6), batch(2)  # 3 of 5; 6 never fits; 2 more than the one left
    single = client.post("/classify", json=WIZARD, headers=key)
    other = client.post("/classify/batch", json={"descriptions": [WIZARD["description"]] * 5})  # an address's own
    assert [r.status_code for r in (three, too_big, beyond, single, other)] == [200, 422, 429, 429, 401]
    assert "send at most 5 at a time" in too_big.json()["error"] and int(beyond.headers["retry-after"]) >= 1


@contextlib.contextmanager
def thread_pool_taken(app):
    """Every thread of the pool that runs FastAPI's plain `def` routes and dependencies (anyio's default limiter,
    on the server's event loop) taken, as a flood of anything blocking there would take it."""
    import anyio

    loop, borrowers = app.state.server_loop, []

    async def take():
        limiter = anyio.to_thread.current_default_thread_limiter()
        while limiter.available_tokens:
            borrowers.append(object())
            await limiter.acquire_on_behalf_of(borrowers[-1])
        return limiter

    limiter = asyncio.run_coroutine_threadsafe(take(), loop).result(30)

    async def give_back():
        for borrower in borrowers:
            limiter.release_on_behalf_of(borrower)

    try:
        yield limiter
    finally:
        asyncio.run_coroutine_threadsafe(give_back(), loop).result(30)


TITLES = ["Avatar", "Titanic", "Spectre", "Tangled", "Skyfall", "Frozen"]


def test_probes_answer_while_every_lookup_waits_on_tmdb_and_the_shared_thread_pool_is_taken(small_index_dir):
    from .fake_tmdb import API_KEY, FakeTmdbServer

    gate = threading.Event()
    with FakeTmdbServer(gate=gate) as tmdb:
        classifier = make_classifier(small_index_dir, recognise_films=False, tmdb_api_key=API_KEY,
                                     tmdb_base_url=tmdb.url, lookup_timeout=120, lookup_concurrency=2,
                                     lookup_queue=2)
        app = create_app(classifier.settings, classifier)
        with serve_in_thread(app) as url, ThreadPoolExecutor(len(TITLES)) as pool:
            lookups = [pool.submit(httpx.post, f"{url}/classify?mode=lookup", json={"description": title,
                                                                                   "kind": "title"}, timeout=120)
                       for title in TITLES]
            # two lookups wait on TMDb, two for a thread; the other two were refused
            wait_for(lambda: len(tmdb.requests) == 2 and gauge(url, "moviegenre_lookups_waiting") == 2
                     and sum(f.done() for f in lookups) == 2, "the lookups' threads and queue full")
            with thread_pool_taken(app) as limiter:
                taken = limiter.borrowed_tokens == limiter.total_tokens
                probes = {path: httpx.get(f"{url}{path}", timeout=60) for path in ("/livez", "/readyz", "/health",
                                                                                   "/metrics")}
            refused = [f for f in lookups if f.done()]
            gate.set()
            answered = [f.result(timeout=120) for f in lookups if f not in refused]
            refused = [f.result() for f in refused]
    app.state.runtime.retire()
    assert taken and {path: r.status_code for path, r in probes.items()} == dict.fromkeys(probes, 200)
    assert all(r.status_code == 503 and r.headers["retry-after"] == "1" and "lookups" in r.json()["error"]
               for r in refused) and len(refused) == 2
    assert 'moviegenre_refused_requests_total{reason="lookups_busy"} 2.0' in probes["/metrics"].text
    assert [r.status_code for r in answered] == [200] * 4 and all(r.json()["lookup"]["matched"] for r in answered)


def test_editors_and_admins_are_not_shed_with_classify_and_every_consumer_is_named(own_index_dir):
    classifier = make_classifier(own_index_dir, recognise_films=False, feedback_token="alice:t0k",
                                 admin_token="adm1n", max_in_flight=1, min_queue=0, max_queue_wait=0.001,
                                 multilingual_model="")
    held = HeldDrafts(classifier)
    app = create_app(classifier.settings, classifier)
    editor = {"X-API-Key": "t0k"}
    with serve_in_thread(app) as url, ThreadPoolExecutor(1) as pool:
        holder = pool.submit(httpx.post, f"{url}/classify", json=WIZARD, timeout=60)
        assert held.wait_started(1)  # the one CPU slot is taken: /classify is shed
        shed = httpx.post(f"{url}/classify", json=WIZARD, timeout=10)
        editors = [httpx.get(f"{url}/feedback", headers=editor, timeout=30),
                   httpx.get(f"{url}/feedback/queue", headers=editor, timeout=30),
                   httpx.post(f"{url}/feedback/reject", json={"older_than_hours": 0}, headers=editor, timeout=30),
                   httpx.delete(f"{url}/feedback/12345", headers=editor, timeout=30)]
        held.release()
        assert holder.result(timeout=60).status_code == 200
        reload = httpx.post(f"{url}/admin/reload", headers={"X-API-Key": "adm1n"}, timeout=120)
        metrics = httpx.get(f"{url}/metrics", timeout=10).text
    if app.state.runtime is not None:
        app.state.runtime.retire()
    assert shed.status_code == 503
    assert [r.status_code for r in editors] == [200, 200, 200, 404] and reload.status_code == 200
    assert 'consumer="editor:alice",method="GET",path="/feedback",route="",status="200"} 1.0' in metrics
    assert 'consumer="admin",method="POST",path="/admin/reload",route="",status="200"} 1.0' in metrics
