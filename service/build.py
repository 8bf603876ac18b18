"""`make build-index`: corpus → embeddings (cached) → FAISS index swapped in atomically."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from service.corpus import Corpus, load_corpus
from service.embedder import Embedder, EmbeddingCache
from service.store import write_index


@dataclass
class BuildReport:
    corpus: Corpus
    manifest: dict
    embedded: int
    seconds: float


def build_index(data_path: Path, index_dir: Path, embedder: Embedder, progress: bool = True) -> BuildReport:
    started = time.perf_counter()
    corpus = load_corpus(data_path)
    if not corpus.films:
        raise ValueError(f"no usable film in {data_path}: every row lacked a plot or a genre")
    plots = [film.plot for film in corpus.films]
    cache = EmbeddingCache(Path(index_dir) / "cache", embedder.model_name)
    vectors, embedded = cache.embed(embedder, plots, progress=progress)
    cache.save(keep=plots)
    manifest = write_index(index_dir, corpus.films, vectors, embedder.model_name, corpus.fingerprint(),
                           corpus.summary())
    return BuildReport(corpus, manifest, embedded, time.perf_counter() - started)
