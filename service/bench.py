"""`make bench`: measured speed and load behaviour, printed as a table and written to bench/results.json.

It starts the service (neighbour-vote backend) on a free loopback port, loads it from this process, and
stops it. Every loop is bounded in count and time."""
from __future__ import annotations

import csv
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack, contextmanager
from itertools import cycle, islice
from pathlib import Path

import httpx
import numpy as np
from rich.console import Console
from rich.table import Table

from service.atomic import write_bytes
from service.corpus import load_corpus
from service.embedding import EmbeddingCache, load_embedder
from service.memory import resident_mb
from service.settings import Settings

LOAD_REQUESTS = 5000
LOAD_TIME_LIMIT_S = 600


def embed_throughput(settings: Settings, films: int = 2000, slices: int = 10) -> dict:
    """The index build's embedding path (cold cache) against the same ONNX model called directly, same
    texts, same process, for every model the service uses. They take turns slice by slice, each going first
    in every other slice, so a slow spell of this shared machine slows both alike (timed one after the
    other, the ratio of the same code ranged from 0.84 to 1.25 between runs)."""
    plots = [f.plot for f in load_corpus(settings.index.data).films[:films]]
    figures = {}
    for part, model in settings.index.part_models().items():
        texts = plots if part == "english" else plots[:films // 4]  # the multilingual model is ~4x slower
        embedder = load_embedder(settings.index.exported_models(), model, settings.index.embed_workers)
        embedder.embed(texts[:32])  # warm-up: first-call overhead is not throughput
        seconds = {"raw": 0.0, "build": 0.0}
        with tempfile.TemporaryDirectory() as tmp:
            cache = EmbeddingCache(Path(tmp), embedder.cache_name)  # cold: each slice's texts are new to it
            paths = {"raw": embedder.embed, "build": lambda chunk: cache.embed(embedder, chunk)}
            for i, chunk in enumerate(np.array_split(np.array(texts, dtype=object), slices)):
                for name in (("raw", "build") if i % 2 == 0 else ("build", "raw")):
                    started = time.perf_counter()
                    paths[name](list(chunk))
                    seconds[name] += time.perf_counter() - started
        raw, pipeline = len(texts) / seconds["raw"], len(texts) / seconds["build"]
        figures |= {f"{part}_raw_plots_per_s": round(raw, 1), f"{part}_build_plots_per_s": round(pipeline, 1),
                    f"{part}_build_ratio_vs_raw": round(pipeline / raw, 3)}
    return figures


def faiss_ms(settings: Settings, queries: int = 200) -> float:
    from service.store import load_index

    index = load_index(settings.index.dir, settings.index.embedding_model)
    vectors = index.vectors()[:queries]
    times = []
    for vector in vectors:
        started = time.perf_counter()
        index.search(vector[None, :], settings.classification.top_k)
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 3)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_service(settings: Settings, checkout: Path | None = None, **env_overrides: str):
    """`moviegenre serve` on a free port: this code, or the code of another `checkout` of the project."""
    port = _free_port()
    env = os.environ | {"LLM_BACKEND": "none", "MOVIEGENRE_HOST": "127.0.0.1", "MOVIEGENRE_PORT": str(port),
                        "MOVIEGENRE_INDEX_DIR": str(Path(settings.index.dir).resolve()),
                        "MOVIEGENRE_LOG_LEVEL": "warning", **env_overrides}
    if settings.corrections.url is not None:
        env["MOVIEGENRE_CORRECTIONS_URL"] = settings.corrections.url.get_secret_value()
    if checkout is not None:
        env["PYTHONPATH"] = str(checkout)
    process = subprocess.Popen([sys.executable, "-m", "service.cli", "serve"], env=env, cwd=checkout,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        else:
            raise RuntimeError("the service did not come up within 180 s")
        yield url, process.pid
    finally:
        process.terminate()
        process.wait(timeout=30)


def _descriptions(settings: Settings) -> list[str]:
    evaluation = settings.index.dev_eval() / "imdb_top_1000.csv"
    return [f.plot for f in load_corpus(evaluation).films]


def _foreign_descriptions(settings: Settings, words: int = 40) -> list[str]:
    """40-word German and French plots (the first 40 words of plots at least that long)."""
    folder = settings.index.dev_eval() / "multilingual"
    plots = [f.plot for path in sorted(folder.glob("*.csv")) for f in load_corpus(path).films]
    return [" ".join(p.split()[:words]) for p in plots if len(p.split()) >= words]


def _percentiles(latencies: list[float], prefix: str) -> dict:
    return {f"{prefix}_p{q}_ms": round(float(np.percentile(latencies, q)), 1) if latencies else None
            for q in (50, 95, 99)}


def _timed_posts(url: str, texts: list[str]) -> tuple[list[float], list[int]]:
    latencies, statuses = [], []
    with httpx.Client(base_url=url, timeout=30) as http:
        for text in texts:
            started = time.perf_counter()
            try:
                statuses.append(http.post("/classify", json={"description": text}).status_code)
            except httpx.HTTPError:
                statuses.append(0)
            latencies.append((time.perf_counter() - started) * 1000)
    return latencies, statuses


def _concurrent(url: str, texts: list[str], requests: int, concurrency: int) -> dict:
    """`concurrency` clients sending `requests` in all, each back to back: answered per second, refusals and
    errors, and the latency of the answered ones."""
    work = [texts[i % len(texts)] for i in range(requests)]
    shares = [work[i::concurrency] for i in range(concurrency)]
    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(lambda share: _timed_posts(url, share), shares))
    seconds = time.perf_counter() - started
    statuses = [s for _, share in results for s in share]
    answered = [ms for latencies, share in results for ms, s in zip(latencies, share) if s == 200]
    return {"per_s": round(statuses.count(200) / seconds, 1), "errors": sum(s not in (200, 503) for s in statuses),
            "shed": statuses.count(503), "server_errors": sum(s >= 500 and s != 503 for s in statuses),
            "failed_connections": statuses.count(0)} | _percentiles(answered, "answered")


def _batch_per_s(url: str, texts: list[str], batches: int = 20, size: int = 32) -> float:
    started = time.perf_counter()
    with httpx.Client(base_url=url, timeout=60) as http:
        for i in range(batches):
            chunk = texts[i * size:(i + 1) * size]
            http.post("/classify/batch", json={"descriptions": chunk}).raise_for_status()
    return round(batches * size / (time.perf_counter() - started), 1)


# Near-misses of the lookup's title pattern: a trailing-year regex that backtracks took 1.5 s on one of these.
ADVERSARIAL_LOOKUPS = ["," * 10_000, " ,(" * 3_333, "1" * 10_000, "A " * 5_000]


def _classify_beside_adversarial_lookups(url: str, texts: list[str], in_flight: int = 8) -> dict:
    """Ordinary /classify latency while `in_flight` 10,000-character adversarial lookups keep arriving."""
    stop = time.monotonic() + 60

    def attack(i: int) -> int:
        sent = 0
        with httpx.Client(base_url=url, timeout=30) as http:
            while time.monotonic() < stop:
                text = ADVERSARIAL_LOOKUPS[(i + sent) % len(ADVERSARIAL_LOOKUPS)]
                http.post("/classify?mode=lookup", json={"description": text, "kind": "title"})
                sent += 1
        return sent

    with ThreadPoolExecutor(in_flight) as pool:
        attackers = [pool.submit(attack, i) for i in range(in_flight)]
        time.sleep(1.0)  # let the lookups pile up first
        latencies, statuses = _timed_posts(url, texts[:20])
        stop = time.monotonic()
        lookups = sum(a.result() for a in attackers)
    return {"classify_beside_8_adversarial_lookups_max_ms": round(max(latencies), 1),
            "adversarial_lookups_sent": lookups, "classify_beside_adversarial_errors": sum(s != 200 for s in statuses)}


def probes_beside_lookups(settings: Settings, lookups: int = 80, checkout: Path | None = None) -> dict:
    """`lookups` title lookups sent at once to a service whose TMDb accepts connections and never answers (each
    lookup waits its LOOKUP_TIMEOUT on it), /livez and /readyz asked one after the other every 100 ms until every
    lookup is answered: the slowest probe answers, and how the lookups were answered (200 once their deadline
    passed, or 503 from the lookups' own lane). `checkout`: another checkout's code on the same index."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(lookups)
        tmdb = f"http://127.0.0.1:{silent.getsockname()[1]}"
        with running_service(settings, checkout, TMDB_API_KEY="bench", TMDB_BASE_URL=tmdb) as (url, _), \
                ThreadPoolExecutor(lookups) as pool, httpx.Client(base_url=url, timeout=120) as http:
            sent = [pool.submit(httpx.post, f"{url}/classify?mode=lookup", timeout=120,
                                json={"description": f"The Unanswered Film {i}", "kind": "title"})
                    for i in range(lookups)]
            probes: dict[str, list[float]] = {"/livez": [], "/readyz": []}
            while not all(f.done() for f in sent):
                for path, times in probes.items():
                    started = time.perf_counter()
                    http.get(path).raise_for_status()
                    times.append((time.perf_counter() - started) * 1000)
                time.sleep(0.1)
            statuses = [f.result().status_code for f in sent]
    return {"probes_beside_lookups": lookups, "probes_asked": sum(len(t) for t in probes.values()),
            "livez_max_ms": round(max(probes["/livez"]), 1), "readyz_max_ms": round(max(probes["/readyz"]), 1),
            "lookups_answered_200": statuses.count(200), "lookups_refused_503": statuses.count(503),
            "lookups_other": len(statuses) - statuses.count(200) - statuses.count(503)}


def overload(url: str, texts: list[str], clients: int = 200, seconds: float = 10.0,
             backoff_s: float = 0.05) -> dict:
    """`clients` concurrent clients, each sending /classify requests back to back for `seconds`, pausing
    `backoff_s` after a 503 (50 ms: sooner than its Retry-After asks). One asyncio process with aiohttp: 200
    client threads, or httpx's async pool, took the cores the service needs (with httpx the client, not the
    service, set the latency: 2.8 s p50 where wrk measured 116 ms). The share refused with 503, the p99 of the
    requests accepted, 5xx other than 503, connection errors."""
    import asyncio

    import aiohttp

    async def client(i: int, session, stop: float, out: list) -> None:
        sent = 0
        while time.monotonic() < stop:
            started = time.perf_counter()
            try:
                async with session.post(f"{url}/classify", json={"description": texts[(i + sent) % len(texts)]}) as r:
                    await r.read()
                    status = -503 if r.status == 503 and "Retry-After" not in r.headers else r.status
            except (aiohttp.ClientError, asyncio.TimeoutError):
                status = 0
            out.append((status, (time.perf_counter() - started) * 1000))
            sent += 1
            if status == 503:
                await asyncio.sleep(backoff_s)

    async def run() -> list:
        out: list = []
        connector = aiohttp.TCPConnector(limit=clients)
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:
            stop = time.monotonic() + seconds
            await asyncio.gather(*(client(i, session, stop, out) for i in range(clients)))
        return out

    results = asyncio.run(run())
    accepted = [ms for status, ms in results if status == 200]
    refused = [ms for status, ms in results if status == 503]
    return {"overload_clients": clients, "overload_requests": len(results),
            "overload_accepted_per_s": round(len(accepted) / seconds, 1),
            "overload_503_share": round(len(refused) / max(len(results), 1), 3),
            "overload_accepted_p50_ms": round(float(np.percentile(accepted, 50)), 1) if accepted else None,
            "overload_accepted_p99_ms": round(float(np.percentile(accepted, 99)), 1) if accepted else None,
            "overload_503_p99_ms": round(float(np.percentile(refused, 99)), 1) if refused else None,
            "overload_other_5xx": sum(1 for status, _ in results if status >= 500 and status != 503),
            "overload_503_without_retry_after": sum(1 for status, _ in results if status == -503),
            "overload_other_errors": sum(1 for status, _ in results if status not in (200, 503, 0, -503)),
            "overload_connection_errors": sum(1 for status, _ in results if status == 0)}


class StandInLLM:
    """An OpenAI-compatible server on loopback that answers valid genres after `answer_s`, `parallel` at a time
    (the others wait for one of its slots, as llama.cpp's --parallel or Ollama's OLLAMA_NUM_PARALLEL make them):
    the shape of a 7B model on a busy GPU, for the LLM rows. `answers` holds when each answer was sent; `kill()`
    stops it as a killed server would: the answers in progress and every connection dropped, new ones refused."""

    def __init__(self, answer_s: float = 3.0, parallel: int = 4):
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        slots, answer = threading.Semaphore(parallel), json.dumps({"genres": ["Drama", "Crime"]})
        self.answers: list[float] = []
        self.killed = killed = threading.Event()
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):  # the model list /health's probe and the pool's model check ask for
                if not killed.is_set():
                    self._send({"object": "list", "data": [{"id": "stand-in", "object": "model"}]})

            def do_POST(self):
                self.rfile.read(int(self.headers.get("content-length", 0)))
                with slots:
                    if killed.wait(answer_s):
                        self.close_connection = True  # dropped without an answer
                        return
                self._send({"id": "c", "object": "chat.completion", "created": 0, "model": "stand-in",
                            "choices": [{"index": 0, "finish_reason": "stop",
                                         "message": {"role": "assistant", "content": answer}}]})
                stand_in.answers.append(time.monotonic())

            def _send(self, data: dict) -> None:
                payload = json.dumps(data).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.answer_s, self.parallel = answer_s, parallel
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def kill(self) -> None:
        self.killed.set()
        self.server.shutdown()
        self.server.server_close()

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def _closed_loop(url: str, texts: list[str], query: str, stop: float, start: int) -> list[tuple]:
    """One client asking again and again until `stop`: (status, ms, answer, finished in time) each. Each text is
    made unique, so no answer comes from the LLM's cache."""
    out = []
    with httpx.Client(base_url=url, timeout=60) as http:
        while time.monotonic() < stop:
            n = start + len(out)
            started = time.perf_counter()
            try:
                response = http.post(f"/classify{query}", json={"description": f"{texts[n % len(texts)]} ({n})"})
                status, body = response.status_code, response.json() if response.status_code == 200 else {}
            except httpx.HTTPError:
                status, body = 0, {}
            out.append((status, (time.perf_counter() - started) * 1000, body, time.monotonic() <= stop))
    return out


def llm_beside_plain(settings: Settings, llm_clients: int = 8, plain_clients: int = 4, seconds: float = 15.0,
                     answer_s: float = 3.0, parallel: int = 4) -> dict:
    """`llm_clients` asking /classify the default way (the LLM consulted) beside `plain_clients` asking
    ?llm=false, for `seconds`, closed loop (no think time), against a stand-in LLM of `answer_s` a question with
    `parallel` slots (the service's LLM_CONCURRENCY sized to them). Twice: with the default budget (LLM_TIMEOUT),
    where every default client waits its turn, and with a budget of 5 s, where the queue is longer than the budget
    allows and the others are answered by the vote at once, "busy"."""
    figures = {}
    for name, budget_s in (("llm", settings.llm.timeout_s), ("llm_tight", 5.0)):
        figures[f"{name}_row"] = (f"{llm_clients} default + {plain_clients} llm=false clients, {seconds:g} s, "
                                  f"stand-in LLM {answer_s:g} s with {parallel} slots, budget {budget_s:g} s")
        figures |= {f"{name}_{k}": v for k, v in _llm_row(settings, llm_clients, plain_clients, seconds, answer_s,
                                                            parallel, budget_s).items()}
    return figures


def _llm_row(settings: Settings, llm_clients: int, plain_clients: int, seconds: float, answer_s: float,
             parallel: int, budget_s: float) -> dict:
    texts = _descriptions(settings)
    with StandInLLM(answer_s, parallel) as llm_url, running_service(
            settings, LLM_BACKEND="openai", OPENAI_BASE_URL=llm_url, OPENAI_MODEL="stand-in",
            LLM_CONCURRENCY=str(parallel), LLM_TIMEOUT=str(budget_s)) as (url, _):
        _timed_posts(url, texts[:10])  # warm-up (no LLM: these are cached nowhere)
        stop = time.monotonic() + seconds
        with ThreadPoolExecutor(llm_clients + plain_clients) as pool:
            default = [pool.submit(_closed_loop, url, texts, "", stop, 100_000 * (i + 1)) for i in range(llm_clients)]
            plain = [pool.submit(_closed_loop, url, texts, "?llm=false", stop, 100_000 * (i + 20))
                     for i in range(plain_clients)]
            default, plain = [r for f in default for r in f.result()], [r for f in plain for r in f.result()]
    vote = [(ms, body) for status, ms, body, _ in default if status == 200 and body.get("backend") == "vote"]
    answered = [(ms, in_time) for status, ms, body, in_time in default
                if status == 200 and body.get("backend") == "openai"]
    busy = [ms for ms, body in vote if "busy" in (body.get("fallback_reason") or "")]
    recognised = sum(bool(body.get("recognised")) for _, body in vote)
    return {"plain_requests": len(plain), "plain_refused": sum(r[0] != 200 for r in plain),
            **_percentiles([r[1] for r in plain if r[0] == 200], "plain"),
            "default_requests": len(default), "default_not_200": sum(r[0] != 200 for r in default),
            "answered": len(answered), "answered_per_s": round(sum(t for _, t in answered) / seconds, 2),
            "stand_in_capacity_per_s": round(parallel / answer_s, 2),
            **_percentiles([ms for ms, _ in answered], "answered"),
            "busy_vote": len(busy), **_percentiles(busy, "busy_vote"),
            "recognised_not_asked": recognised, "other_fallbacks": len(vote) - len(busy) - recognised}


def llm_pool_figures(settings: Settings, clients: int = 8, seconds: float = 15.0, answer_s: float = 3.0,
                     parallel: int = 2) -> dict:
    """`clients` asking /classify the default way for `seconds` (after as long a warm-up), closed loop, against
    stand-in OpenAI-compatible servers of `answer_s` an answer with `parallel` slots each (LLM_CONCURRENCY sized to
    them): one server alone, two as a pool (OPENAI_BASE_URL comma-separated), and two with the first killed halfway
    through the run."""
    figures = {}
    for name, servers, kill in (("llm_one_server", 1, False), ("llm_pool", 2, False), ("llm_pool_killed", 2, True)):
        figures[f"{name}_row"] = (f"{clients} default clients, {seconds:g} s, {servers} stand-in LLM server(s) of "
                                  f"{answer_s:g} s with {parallel} slots each" + (", the first killed at half time"
                                                                                  if kill else ""))
        figures |= {f"{name}_{k}": v for k, v in
                    _pool_row(settings, servers, kill, clients, seconds, answer_s, parallel).items()}
    figures["llm_pool_answered_vs_one_server"] = round(
        figures["llm_pool_answered_per_s"] / max(figures["llm_one_server_answered_per_s"], 1e-9), 2)
    return figures


def _pool_row(settings: Settings, servers: int, kill: bool, clients: int, seconds: float, answer_s: float,
              parallel: int) -> dict:
    import threading

    texts = _descriptions(settings)
    with ExitStack() as stack:
        stand_ins = [StandInLLM(answer_s, parallel) for _ in range(servers)]
        urls = [stack.enter_context(stand_in) for stand_in in stand_ins]
        url, _ = stack.enter_context(running_service(
            settings, LLM_BACKEND="openai", OPENAI_BASE_URL=",".join(urls), OPENAI_MODEL="stand-in",
            LLM_CONCURRENCY=str(parallel)))
        # warm-up as long as the run: the servers' answer times are measured (until then an answer is expected to
        # take LLM_TIMEOUT, and a question that finds no free slot is answered "busy" at once)
        warm_up = time.monotonic() + seconds
        with ThreadPoolExecutor(clients) as pool:
            list(pool.map(lambda i: _closed_loop(url, texts, "", warm_up, 10_000_000 * (i + 1)), range(clients)))
        started = time.monotonic()
        stop, killed_at = started + seconds, started + seconds / 2
        if kill:
            stack.enter_context(_cancelling(threading.Timer(seconds / 2, stand_ins[0].kill)))
        with ThreadPoolExecutor(clients) as pool:
            results = [r for f in [pool.submit(_closed_loop, url, texts, "", stop, 100_000 * (i + 1))
                                   for i in range(clients)] for r in f.result()]
    answered = [ms for status, ms, body, in_time in results if status == 200 and body.get("backend") == "openai"]
    reasons = Counter(_reason(body) for status, _, body, _ in results
                      if status == 200 and body.get("backend") == "vote")
    figures = {"requests": len(results), "not_200": sum(r[0] != 200 for r in results),
               "answered": len(answered), "answered_per_s": round(
                   sum(1 for s, _, b, t in results if s == 200 and b.get("backend") == "openai" and t) / seconds, 2),
               **_percentiles(answered, "answered"), "vote": dict(reasons),
               "answers_by_server": [len(s.answers) for s in stand_ins]}
    if kill:
        live = stand_ins[1].answers
        figures |= {"live_server_answers_after_kill": sum(killed_at < t <= stop for t in live),
                    "live_server_capacity_after_kill": int(seconds / 2 / answer_s * parallel)}
    return figures


@contextmanager
def _cancelling(timer):
    timer.start()
    try:
        yield timer
    finally:
        timer.cancel()


def _reason(body: dict) -> str:
    """What a vote answer fell back for, in a word: recognised (the LLM not asked), busy, or the failure's kind."""
    if body.get("recognised"):
        return "recognised"
    fallback = body.get("fallback_reason") or ""
    return next((kind for kind in ("busy", "set aside", "unreachable", "did not answer", "HTTP") if kind in fallback),
                "other")


def metrics_cost_us(settings: Settings, requests: int = 20_000) -> float:
    """What recording one /classify costs the metrics, in process (µs): the counter, the histogram and the labels
    of a request as the request log hands them over."""
    from types import SimpleNamespace

    from service.api.metrics import Metrics

    metrics = Metrics(SimpleNamespace(runtime=None, settings=settings))
    route = SimpleNamespace(path="/classify")
    scope = {"method": "POST", "route": route, "headers": [(b"x-api-key", b"k3y")], "client": ("127.0.0.1", 50000)}
    state = {"backend": "vote", "route": "english", "llm_outcomes": []}
    started = time.perf_counter()
    for _ in range(requests):  # each request with a state of its own, as the service's (its consumer found once)
        metrics.observe(scope | {"state": dict(state)}, 200, 0.01)
    return round((time.perf_counter() - started) * 1e6 / requests, 2)


def _rss_mb(pid: int) -> float:
    return round(resident_mb(pid), 1)


def service_figures(settings: Settings) -> dict:
    texts, foreign = _descriptions(settings), _foreign_descriptions(settings)
    figures = {}
    # metrics off, then on (the served default), the same requests one after the other
    for label, on in (("metrics_off", "false"), ("metrics_on", "true")):
        with running_service(settings, MOVIEGENRE_METRICS=on) as (url, _):
            _timed_posts(url, texts[:30])
            figures[f"{label}_classify_p50_ms"] = _percentiles(_timed_posts(url, texts[30:530])[0], "x")["x_p50_ms"]
    if settings.index.multilingual_model:  # the same English requests with the multilingual part turned off
        with running_service(settings, MOVIEGENRE_MULTILINGUAL_MODEL="") as (url, pid):
            _timed_posts(url, texts[:30])
            figures |= _percentiles(_timed_posts(url, texts[30:530])[0], "english_only_classify")
            figures["english_only_rss_mb"] = _rss_mb(pid)
    with running_service(settings) as (url, pid):
        _timed_posts(url, texts[:30])  # warm-up
        figures |= _percentiles(_timed_posts(url, texts[30:530])[0], "classify")
        if settings.index.multilingual_model:
            _timed_posts(url, foreign[:10])
            latencies, statuses = _timed_posts(url, foreign[10:310])
            figures |= _percentiles(latencies, "foreign_40_words_classify") | {
                "foreign_errors": sum(s != 200 for s in statuses)}
        figures["classify_per_s_c4"] = _concurrent(url, texts, 1000, 4)["per_s"]
        load = _concurrent(url, texts, LOAD_REQUESTS, 16)
        figures |= {"classify_per_s_c16": load["per_s"], "load_requests": LOAD_REQUESTS,
                    "load_errors": load["errors"], "load_503": load["shed"],
                    "load_5xx_other_than_503": load["server_errors"],
                    "load_answered_p50_ms": load["answered_p50_ms"], "load_answered_p99_ms": load["answered_p99_ms"]}
        figures["batch_per_s"] = _batch_per_s(url, texts)
        figures["rss_mb"] = _rss_mb(pid)
        figures |= _classify_beside_adversarial_lookups(url, texts)
        figures |= overload(url, texts)
        figures["overload_answered_share_of_c16"] = round(figures["overload_accepted_per_s"] / load["per_s"], 3)
        figures["overload_rss_mb"] = _rss_mb(pid)
    return figures


CORRECTIONS = 1000


@contextmanager
def index_with_corrections(settings: Settings, count: int, url: str | None = None):
    """The served index seen through a folder of links, beside a corrections store of `count` corrections (the
    SQLite file in that folder, or the PostgreSQL database at `url`): the descriptions of dev-eval/n_movies.csv
    (another source than the reference) with their IMDb labels."""
    from service.corrections import CorrectionStore, store_path
    from service.evaluation.recognition import descriptions

    films = descriptions(settings.index.dev_eval() / "n_movies.csv")[:count]
    with tempfile.TemporaryDirectory() as folder:
        linked = Path(folder) / "index"
        linked.mkdir()
        for entry in Path(settings.index.dir).iterdir():
            if not entry.name.startswith("corrections.sqlite"):
                (linked / entry.name).symlink_to(entry.resolve())
        store = CorrectionStore(url or store_path(linked))
        for film in films:
            store.add(film.plot, film.plot, list(film.genres), film.title, film.year, "bench")
        store.close()
        yield settings.replace(index_dir=linked, corrections_url=url), len(films)


def _p50s_in_turn(urls: list[str], texts: list[str], requests: int = 500, warm_up: int = 30) -> list[float]:
    """English /classify p50 of services side by side, asked in turn (the same requests, the first of each pair
    alternating), so the machine's noise falls on all of them alike."""
    clients = [httpx.Client(base_url=url, timeout=30) for url in urls]
    latencies: list[list[float]] = [[] for _ in urls]
    for i, text in enumerate(texts[:warm_up + requests]):
        order = list(zip(clients, latencies))
        for client, kept in order if i % 2 else order[::-1]:
            started = time.perf_counter()
            client.post("/classify", json={"description": text}).raise_for_status()
            if i >= warm_up:
                kept.append((time.perf_counter() - started) * 1000)
    for client in clients:
        client.close()
    return [round(float(np.percentile(values, 50)), 2) for values in latencies]


def corrections_figures(settings: Settings) -> dict:
    """English /classify p50 with no correction, with 1,000 stored in the SQLite file, and with 1,000 stored in
    PostgreSQL (a throwaway server on this machine, the service reading it through a Unix socket)."""
    from service.throwaway_postgres import ThrowawayPostgres

    with ThrowawayPostgres() as postgres, ExitStack() as stack:
        stores = {"none": (0, None), "sqlite": (CORRECTIONS, None),
                  "postgresql": (CORRECTIONS, postgres.new_database())}
        urls, stored = {}, {}
        for name, (count, url) in stores.items():
            served, stored[name] = stack.enter_context(index_with_corrections(settings, count, url))
            urls[name] = stack.enter_context(running_service(served))[0]
        p50 = dict(zip(urls, _p50s_in_turn(list(urls.values()), _descriptions(settings))))
        served = {name: httpx.get(f"{url}/health").json()["feedback"]["corrections"] for name, url in urls.items()}
    return {"corrections_stored": stored["sqlite"], "corrections_served": served["sqlite"],
            "corrections_served_postgresql": served["postgresql"],
            "classify_p50_ms_no_corrections": p50["none"], "classify_p50_ms_with_corrections": p50["sqlite"],
            "classify_p50_ms_with_corrections_postgresql": p50["postgresql"],
            "corrections_p50_change": round(p50["sqlite"] / p50["none"] - 1, 3),
            "corrections_p50_change_postgresql": round(p50["postgresql"] / p50["none"] - 1, 3)}


def _cpu_s(pid: int) -> float:
    """CPU seconds a process has used (user + system, all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_ms_each(pid: int, work: Callable[[], object], count: int) -> float:
    """The CPU ms process `pid` spent on each of the `count` things `work()` asked it."""
    started = _cpu_s(pid)
    work()
    return (_cpu_s(pid) - started) * 1000 / count


def _cost_in_turn(services: dict[str, tuple[str, int]], texts: list[str], rounds: int = 6,
                  requests: int = 320) -> dict:
    """Per service, the CPU it spends on one English /classify and on one description of /classify/batch (ms,
    median of `rounds`), and /classify/batch descriptions per second; the services take turns, the first of each
    round alternating. CPU time barely moves with what else the machine does, where latency moves by a third."""
    runs: dict[str, dict[str, list[float]]] = {name: {"single": [], "batch": [], "batch_per_s": []}
                                               for name in services}
    order = list(services.items())
    for round_ in range(rounds):
        for name, (url, pid) in order if round_ % 2 else order[::-1]:
            runs[name]["single"].append(cpu_ms_each(pid, lambda: _timed_posts(url, texts[:requests]), requests))
            rates = []
            runs[name]["batch"].append(cpu_ms_each(
                pid, lambda: rates.append(_batch_per_s(url, texts, batches=requests // 32)), requests // 32 * 32))
            runs[name]["batch_per_s"] += rates
    names = {"single": "cpu_ms_per_single", "batch": "cpu_ms_per_batch", "batch_per_s": "batch_per_s"}
    return {f"{names[measure]}_{name}": round(statistics.median(values), 2 if measure != "batch_per_s" else 1)
            for name, measures in runs.items() for measure, values in measures.items()}


def against_figures(settings: Settings, checkout: Path) -> dict:
    """Another checkout of the project (an earlier commit, say) and this code, served side by side on the same
    index: English /classify p50 asked in turn, and the CPU each spends per request, single and in batches."""
    texts = _descriptions(settings)
    with running_service(settings, checkout) as (other, other_pid), running_service(settings) as (this, this_pid):
        p50 = _p50s_in_turn([other, this], texts)
        cost = _cost_in_turn({"other": (other, other_pid), "this": (this, this_pid)}, texts)
    return {"against": str(checkout), "classify_p50_ms_other": p50[0], "classify_p50_ms_this": p50[1],
            "p50_change": round(p50[1] / p50[0] - 1, 3)} | cost


def write_catalogue(path: Path, plots: list[str], rows: int) -> Path:
    """A catalogue CSV of `rows` rows (id, plot): the plots repeated."""
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "plot"])
        writer.writerows((i, plot) for i, plot in enumerate(islice(cycle(plots), rows)))
    return path


JOB_ROWS = 20_000


def jobs_figures(settings: Settings, rows: int = JOB_ROWS) -> dict:
    """English /classify, one client, alone (250 requests before the job and 250 after it, so the machine's noise of
    the whole run falls on both) and while a catalogue of `rows` rows uploaded to POST /jobs is classified beside it
    (the same requests asked in turn until the job is done): p50 / p99 of each, the job's rows per second, and
    whether its output is the one `classify-file` writes of the same file."""
    texts = _descriptions(settings)
    with tempfile.TemporaryDirectory() as tmp:
        source = write_catalogue(Path(tmp) / "catalogue.csv", texts, rows)
        with running_service(settings, MOVIEGENRE_JOBS_DIR=tmp) as (url, _):
            _timed_posts(url, texts[:30])  # warm-up
            alone = _timed_posts(url, texts[30:280])[0]
            with httpx.Client(base_url=url, timeout=120) as http:
                started = time.perf_counter()
                job = http.post("/jobs", params={"name": source.name}, content=source.read_bytes()).json()
                beside, done = [], job
                while done["state"] not in ("done", "failed"):
                    beside += _timed_posts(url, texts[30:80])[0]
                    done = http.get(f"/jobs/{job['id']}").json()
                seconds = time.perf_counter() - started
                output = http.get(f"/jobs/{job['id']}/output").content
            alone += _timed_posts(url, texts[280:530])[0]
        env = os.environ | {"MOVIEGENRE_INDEX_DIR": str(settings.index.dir), "LLM_BACKEND": "none"}
        subprocess.run([sys.executable, "-m", "service.cli", "classify-file", str(source), "-o",
                        str(Path(tmp) / "out.csv"), "--quiet"], env=env, check=True, capture_output=True)
        identical = output == (Path(tmp) / "out.csv").read_bytes()
    p99 = _percentiles(alone, "a")["a_p99_ms"], _percentiles(beside, "b")["b_p99_ms"]
    return _percentiles(alone, "jobs_classify_alone") | _percentiles(beside, "jobs_classify_beside_job") | {
        "jobs_classify_beside_job_requests": len(beside), "jobs_p99_ratio": round(p99[1] / p99[0], 2),
        "jobs_rows": rows, "jobs_state": done["state"], "jobs_seconds": round(seconds, 1),
        "jobs_rows_per_s": round(rows / seconds, 1), "jobs_output_identical_to_classify_file": identical}


# the parts `make bench` runs that `moviegenre bench --only NAME` runs alone, each written to bench/NAME.json
def llm_figures(settings: Settings) -> dict:
    return llm_beside_plain(settings) | llm_pool_figures(settings)


PARTS = {"corrections": corrections_figures, "llm": llm_figures, "probes": probes_beside_lookups,
         "service": service_figures, "jobs": jobs_figures}


def run(settings: Settings, out: Path, only: str | None = None, against: Path | None = None) -> dict:
    if only or against:
        name, results = ("against", against_figures(settings, against)) if against else (only, PARTS[only](settings))
        out.mkdir(parents=True, exist_ok=True)
        write_bytes(out / f"{name}.json", json.dumps(results, indent=2).encode("utf-8"))
        Console().print(json.dumps(results, indent=2))
        return results
    out.mkdir(parents=True, exist_ok=True)
    results: dict = {}
    for part in (service_figures, llm_figures, embed_throughput, lambda s: {"faiss_ms": faiss_ms(s)},
                 corrections_figures, probes_beside_lookups, jobs_figures,
                 lambda s: {"metrics_cost_us_per_request": metrics_cost_us(s)}):
        results |= part(settings)  # written as each part ends: a part that fails loses only its own rows
        write_bytes(out / "results.json", json.dumps(results, indent=2).encode("utf-8"))
    table = Table(title="Benchmarks (2 cores, loopback, neighbour-vote backend)")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for key, value in results.items():
        table.add_row(key, str(value))
    Console().print(table)
    return results


def fresh_clone_first_answer(project: Path, limit_s: float = 900) -> dict:
    """Clone the committed project into a temporary folder with ../shared beside it, run `make run` there
    on a free port, and time it until /classify first answers 200 (install and index build included)."""
    import shutil
    import signal

    work = Path(tempfile.mkdtemp(prefix="moviegenre-fresh-"))
    try:
        subprocess.run(["git", "clone", "-q", str(project), str(work / "main")], check=True)
        (work / "shared").symlink_to((project.parent / "shared").resolve())
        port = _free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MOVIEGENRE_", "VIRTUAL_ENV"))}
        env |= {"MOVIEGENRE_PORT": str(port), "LLM_BACKEND": "none"}
        log = (work / "run.log").open("w")
        started = time.monotonic()
        process = subprocess.Popen(["make", "run"], cwd=work / "main", env=env, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        answered, status = None, None
        while time.monotonic() - started < limit_s and process.poll() is None:
            try:
                status = httpx.post(f"http://127.0.0.1:{port}/classify", timeout=5,
                                    json={"description": "A young wizard embarks on an adventure."}).status_code
                if status == 200:
                    answered = round(time.monotonic() - started, 1)
                    break
            except httpx.HTTPError:
                pass
            time.sleep(1)
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)
        return {"fresh_clone_first_answer_s": answered, "limit_s": limit_s, "last_status": status,
                "log_tail": (work / "run.log").read_text(errors="replace")[-1500:] if answered is None else ""}
    finally:
        shutil.rmtree(work, ignore_errors=True)
