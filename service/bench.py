"""`make bench`: measured speed, printed as a table and written to bench/results.json."""
from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from service.corpus import load_corpus
from service.embedder import Embedder, EmbeddingCache
from service.settings import Settings


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


def run(settings: Settings, out: Path) -> dict:
    results = embed_throughput(settings)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    table = Table(title="Benchmarks")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for key, value in results.items():
        table.add_row(key, str(value))
    Console().print(table)
    return results
