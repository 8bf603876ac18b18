"""`make eval`: every method on the same held-out films, reference films of the same titles excluded."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich.progress import track

from service.classifier import Classifier
from service.corpus import Film, load_corpus
from service.embedder import Embedder, EmbeddingCache
from service.evaluation import methods
from service.evaluation.metrics import score
from service.evaluation.split import matching_positions, validation_split
from service.heads import BlendedScorer, train_scorer
from service.llm import make_backend
from service.settings import Settings
from service.store import ReferenceIndex, load_index


@dataclass
class Setup:
    """The reference without the evaluation films, split for tuning, and the evaluation films."""
    settings: Settings
    embedder: Embedder
    reference: ReferenceIndex
    excluded: int
    held_out: list[Film]
    train: ReferenceIndex
    validation: list[Film]
    validation_vectors: np.ndarray
    _scorer: BlendedScorer | None = None

    def scorer(self) -> BlendedScorer | None:
        """The served heads and blend, trained exactly as `make build-index` does, on the reference
        without the evaluation films."""
        if self._scorer is None:
            self._scorer = train_scorer(self.reference.films, self.reference.vectors(), self.settings.top_k,
                                        self.settings.max_genres)
        return self._scorer


def prepare(settings: Settings, eval_path: Path) -> Setup:
    embedder = Embedder(settings.embedding_model, settings.embed_batch_size)
    index = load_index(settings.index_dir, embedder.model_name, embedder.dim)
    held_out = load_corpus(eval_path).films
    drop = matching_positions(index.films, held_out)
    reference = index.without(drop)
    _, val_pos = validation_split(len(reference))
    train = reference.without(set(val_pos))
    vectors = reference.vectors()
    return Setup(settings, embedder, reference, len(drop), held_out, train,
                 [reference.films[i] for i in val_pos], vectors[val_pos])


def _gold(films: list[Film]) -> list[tuple[str, ...]]:
    return [f.genres for f in films]


def _timed(fn):
    started = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - started


def evaluate_served_with_llm(setup: Setup, films: list[Film], progress: bool = True) -> dict:
    """The served pipeline with its LLM: the vote alone, the LLM alone and their fusion, from the same calls."""
    classifier = Classifier(setup.reference, setup.embedder, make_backend(setup.settings), setup.settings,
                            setup.scorer())
    results, seconds = [], []
    for film in track(films, description="served + LLM", disable=not progress):
        result, took = _timed(lambda: classifier.classify(film.plot))
        results.append(result)
        seconds.append(took)
    vote_only = [r.vote_genres for r in results]
    llm_only = [r.llm_genres or [] for r in results]
    gold = _gold(films)
    return {
        "vote": score(gold, vote_only),
        "llm_only": score(gold, llm_only) | {"llm_failures": sum(r.llm_genres is None for r in results)},
        "served_llm": score(gold, [r.genres for r in results]) | {
            "latency_ms": 1000 * float(np.mean(seconds)), "latency_p95_ms": 1000 * float(np.percentile(seconds, 95))},
    }


def _embed(setup: Setup, texts: list[str]) -> np.ndarray:
    cache = EmbeddingCache(setup.settings.index_dir / "cache", setup.embedder.model_name)
    vectors, embedded = cache.embed(setup.embedder, texts)
    if embedded:
        cache.save(keep=[f.plot for f in setup.reference.films] + texts)
    return vectors


def evaluate_classic(setup: Setup, name: str) -> dict:
    """Fit on the training split, tune the threshold on validation, refit on the whole reference."""
    train_films = setup.train.films
    model = methods.fit_classic(name, [f.plot for f in train_films], _gold(train_films))
    val_scores = methods.classic_scores(model, [f.plot for f in setup.validation])
    threshold = methods.tune_threshold(val_scores, _gold(setup.validation))
    model = methods.fit_classic(name, [f.plot for f in setup.reference.films], _gold(setup.reference.films))
    scores, seconds = _timed(lambda: methods.classic_scores(model, [f.plot for f in setup.held_out]))
    return _scored(setup, methods.predict(scores, threshold), seconds) | {"threshold": threshold}


def evaluate_knn(setup: Setup, eval_vectors: np.ndarray) -> dict:
    k = setup.settings.top_k
    val_scores = methods.knn_scores(setup.train, setup.validation_vectors, k)
    threshold = methods.tune_threshold(val_scores, _gold(setup.validation))
    scores, seconds = _timed(lambda: methods.knn_scores(setup.reference, eval_vectors, k))
    return _scored(setup, methods.predict(scores, threshold), seconds) | {"threshold": threshold, "k": k}


def evaluate_served(setup: Setup) -> dict:
    """Exactly what /classify answers with no LLM, over the reference without the evaluation films."""
    classifier = Classifier(setup.reference, setup.embedder, None, setup.settings, setup.scorer())
    plots = [f.plot for f in setup.held_out]
    results, seconds = _timed(lambda: [r for i in range(0, len(plots), 64)
                                       for r in classifier.classify_many(plots[i:i + 64])])
    return _scored(setup, [r.genres for r in results], seconds)


def _scored(setup: Setup, predicted: list[list[str]], seconds: float) -> dict:
    return score(_gold(setup.held_out), predicted) | {"latency_ms": 1000 * seconds / max(len(predicted), 1)}


def run(settings: Settings, eval_path: Path, llm_limit: int | None = None, progress: bool = True) -> dict:
    """All methods on the evaluation file; with an LLM configured, also the LLM path on `llm_limit` films."""
    import random

    steps = ["prepare", *methods.CLASSIC, "knn", "served"] + (["llm"] if settings.llm_backend != "none" else [])
    results: dict = {"data": str(eval_path), "methods": {}}
    for step in track(steps, description="evaluating", disable=not progress):
        if step == "prepare":
            setup = prepare(settings.model_copy(update={"llm_backend": "none"}), eval_path)
            results |= {"films": len(setup.held_out), "excluded": setup.excluded}
        elif step in methods.CLASSIC:
            results["methods"][step] = evaluate_classic(setup, step)
        elif step == "knn":
            results["methods"]["knn"] = evaluate_knn(setup, _embed(setup, [f.plot for f in setup.held_out]))
        elif step == "served":
            results["served"] = evaluate_served(setup)
        else:
            setup.settings = settings
            films = setup.held_out
            if llm_limit and llm_limit < len(films):
                films = random.Random(0).sample(films, llm_limit)
            results["llm"] = evaluate_served_with_llm(setup, films, progress=False)
    return results
