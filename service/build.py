"""`make build-index`: corpus → embeddings (cached) → FAISS index swapped in atomically."""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

from service.corpus import Corpus, load_corpus
from service.embedder import Embedder, EmbeddingCache
from service.heads import SCORER_FILE, BlendedScorer, train_scorer
from service.settings import Settings
from service.store import write_index


@dataclass
class BuildReport:
    corpus: Corpus
    manifest: dict
    embedded: int
    seconds: float


def build_index(data_path: Path, index_dir: Path, embedder: Embedder, settings: Settings | None = None,
                progress: bool = True) -> BuildReport:
    settings = settings or Settings()
    started = time.perf_counter()
    corpus = load_corpus(data_path)
    if not corpus.films:
        raise ValueError(f"no usable film in {data_path}: every row lacked a plot or a genre")
    plots = [film.plot for film in corpus.films]
    cache = EmbeddingCache(Path(index_dir) / "cache", embedder.model_name)
    vectors, embedded = cache.embed(embedder, plots, progress=progress)
    cache.save(keep=plots)
    fingerprint = corpus.fingerprint()
    scorer = _scorer(Path(index_dir) / "cache", corpus, vectors, fingerprint, embedder.model_name, settings)
    manifest = write_index(index_dir, corpus.films, vectors, embedder.model_name, fingerprint, corpus.summary(),
                           artifacts={SCORER_FILE: scorer.save} if scorer else {},
                           extra={"blend": asdict(scorer.blend) if scorer else None})
    return BuildReport(corpus, manifest, embedded, time.perf_counter() - started)


def _scorer(cache_dir: Path, corpus: Corpus, vectors, fingerprint: str, model: str,
            settings: Settings) -> BlendedScorer | None:
    """Trained heads and tuned blend, cached by corpus, model and the knobs tuning depends on."""
    key = f"{fingerprint[:16]}-{model}-k{settings.top_k}-g{settings.max_genres}"
    path = cache_dir / f"scorer-{key}.joblib"
    if path.exists():
        try:
            return BlendedScorer.load(path)
        except Exception:  # noqa: BLE001 - a damaged cache entry only costs a retraining
            path.unlink(missing_ok=True)
    scorer = train_scorer(corpus.films, vectors, settings.top_k, settings.max_genres)
    if scorer is not None:
        for old in cache_dir.glob("scorer-*.joblib"):
            old.unlink()
        scorer.save(path)
    return scorer
