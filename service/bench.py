"""`make bench`: measured speed and load behaviour, printed as a table and written to bench/results.json.

It starts the service (neighbour-vote backend) on a free loopback port, loads it from this process, and
stops it. Every loop is bounded in count and time."""
from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
from rich.console import Console
from rich.table import Table

from service.corpus import load_corpus
from service.embedder import Embedder, EmbeddingCache
from service.settings import Settings

LOAD_REQUESTS = 5000
LOAD_TIME_LIMIT_S = 600


def embed_throughput(settings: Settings, films: int = 2000) -> dict:
    """The index build's embedding path (cold cache) against raw SentenceTransformer.encode,
    same texts, same batch size, same process."""
    plots = [f.plot for f in load_corpus(settings.data_path).films[:films]]
    embedder = Embedder(settings.embedding_model, settings.embed_batch_size)
    embedder.embed(plots[:64])  # warm-up: model load and first-call overhead are not throughput
    started = time.perf_counter()
    embedder.model.encode(plots, batch_size=settings.embed_batch_size, normalize_embeddings=True)
    raw = len(plots) / (time.perf_counter() - started)
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        EmbeddingCache(Path(tmp), embedder.model_name).embed(embedder, plots)
        pipeline = len(plots) / (time.perf_counter() - started)
    return {"embed_texts": len(plots), "raw_plots_per_s": round(raw, 1), "build_plots_per_s": round(pipeline, 1),
            "embed_ratio_vs_raw": round(pipeline / raw, 3)}


def faiss_ms(settings: Settings, queries: int = 200) -> float:
    from service.store import load_index

    index = load_index(settings.index_dir, settings.embedding_model)
    vectors = index.vectors()[:queries]
    times = []
    for vector in vectors:
        started = time.perf_counter()
        index.search(vector[None, :], settings.top_k)
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 3)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_service(settings: Settings):
    port = _free_port()
    env = os.environ | {"LLM_BACKEND": "none", "MOVIEGENRE_HOST": "127.0.0.1", "MOVIEGENRE_PORT": str(port),
                        "MOVIEGENRE_INDEX_DIR": str(settings.index_dir), "MOVIEGENRE_LOG_LEVEL": "warning"}
    process = subprocess.Popen([sys.executable, "-m", "service.cli", "serve"], env=env,
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
    evaluation = settings.data_path.parent / "dev-eval" / "imdb_top_1000.csv"
    return [f.plot for f in load_corpus(evaluation).films]


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
    work = [texts[i % len(texts)] for i in range(requests)]
    shares = [work[i::concurrency] for i in range(concurrency)]
    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(lambda share: _timed_posts(url, share), shares))
    seconds = time.perf_counter() - started
    statuses = [s for _, share in results for s in share]
    return {"per_s": round(requests / seconds, 1), "errors": sum(s != 200 for s in statuses),
            "server_errors": sum(s >= 500 for s in statuses), "failed_connections": statuses.count(0)}


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


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def service_figures(settings: Settings) -> dict:
    texts = _descriptions(settings)
    with running_service(settings) as (url, pid):
        _timed_posts(url, texts[:30])  # warm-up
        latencies, _ = _timed_posts(url, texts[30:530])
        figures = {"classify_p50_ms": round(float(np.percentile(latencies, 50)), 1),
                   "classify_p95_ms": round(float(np.percentile(latencies, 95)), 1),
                   "classify_p99_ms": round(float(np.percentile(latencies, 99)), 1)}
        figures["classify_per_s_c4"] = _concurrent(url, texts, 1000, 4)["per_s"]
        load = _concurrent(url, texts, LOAD_REQUESTS, 16)
        figures |= {"classify_per_s_c16": load["per_s"], "load_requests": LOAD_REQUESTS,
                    "load_errors": load["errors"], "load_5xx": load["server_errors"]}
        figures["batch_per_s"] = _batch_per_s(url, texts)
        figures["rss_mb"] = _rss_mb(pid)
        figures |= _classify_beside_adversarial_lookups(url, texts)
    return figures


def run(settings: Settings, out: Path) -> dict:
    results = service_figures(settings) | embed_throughput(settings) | {"faiss_ms": faiss_ms(settings)}
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    table = Table(title="Benchmarks (2 cores, loopback, neighbour-vote backend)")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for key, value in results.items():
        table.add_row(key, str(value))
    Console().print(table)
    return results
