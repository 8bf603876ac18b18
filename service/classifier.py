"""The pipeline: embed → top-k neighbours → vote (blended with the trained heads) → few-shot prompt →
LLM → fused genres.

Any LLM failure (unreachable, slower than its deadline, unusable answer) is an expected event: the
answer then comes from the vote and says why.
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field

from service.embedder import Embedder
from service.fusion import fuse
from service.heads import BlendedScorer
from service.llm import LLMBackend, LLMError, parse_genres
from service.llm.base import timed_out
from service.llm.probe import ReachabilityProbe
from service.prompt import RESPONSE_SCHEMA, build_messages
from service.settings import Settings
from service.store import Neighbour, ReferenceIndex
from service.vote import DEFAULT_THRESHOLD, decide, vote


@dataclass
class Classification:
    genres: list[str]
    scores: dict[str, float]          # what the answer rests on, highest first
    backend: str                      # "vote" or the LLM backend's name
    neighbours: list[Neighbour]
    vote_scores: dict[str, float]     # before the LLM: the neighbour vote, blended with the heads if any
    vote_genres: list[str]            # what the answer would be without the LLM
    llm_genres: list[str] | None = None
    fallback_reason: str | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)


class Classifier:
    def __init__(self, index: ReferenceIndex, embedder: Embedder, llm: LLMBackend | None, settings: Settings,
                 scorer: BlendedScorer | None = None):
        self.index = index
        self.embedder = embedder
        self.llm = llm
        self.settings = settings
        self.scorer = scorer
        self.threshold = settings.vote_threshold or (scorer.blend.threshold if scorer else DEFAULT_THRESHOLD)
        # LLM calls run here so a hung server cannot hold a request past its deadline.
        self._llm_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="llm")
        self._probe = ReachabilityProbe(llm.reachable) if llm is not None else None
        self.llm_last_error: str | None = None  # None since the last usable answer: /health reads it

    def classify(self, text: str) -> Classification:
        return self.classify_many([text])[0]

    def classify_many(self, texts: list[str]) -> list[Classification]:
        """Embedded and scored together; the LLM is asked about all of them at once, under one deadline."""
        started = time.perf_counter()
        vectors = self.embedder.embed(texts)
        all_neighbours = self.index.search(vectors, self.settings.top_k)
        all_scores = [vote(neighbours) for neighbours in all_neighbours]
        if self.scorer is not None:
            all_scores = self.scorer.blend_scores(texts, vectors, all_scores)
        retrieval_ms = round((time.perf_counter() - started) * 1000 / max(len(texts), 1), 2)
        results = []
        for neighbours, scores in zip(all_neighbours, all_scores):
            genres = decide(scores, self.threshold, self.settings.max_genres)
            results.append(Classification(genres, scores, "vote", neighbours, scores, genres,
                                          timings_ms={"retrieval": retrieval_ms}))
        if self.llm is not None:
            self._consult_llm(texts, results)
        return results

    def _consult_llm(self, texts: list[str], results: list[Classification]) -> None:
        started = time.perf_counter()
        deadline = time.monotonic() + self.settings.llm_timeout_s
        examples = self.settings.prompt_examples
        futures = [self._llm_pool.submit(self.llm.complete, build_messages(text, r.neighbours[:examples]),
                                         RESPONSE_SCHEMA) for text, r in zip(texts, results)]
        for future, result in zip(futures, results):
            try:
                llm_genres = self._answer(future, deadline)
            except LLMError as exc:
                result.fallback_reason = self.llm_last_error = str(exc)
                continue
            finally:
                result.timings_ms["llm"] = round((time.perf_counter() - started) * 1000, 2)
            self.llm_last_error = None
            result.scores = fuse(result.vote_scores, llm_genres, self.settings.fusion_weight,
                                 self.settings.fusion_floor)
            result.genres = decide(result.scores, self.threshold, self.settings.max_genres)
            result.llm_genres, result.backend = llm_genres, self.llm.name

    def _answer(self, future, deadline: float) -> list[str]:
        try:
            return parse_genres(future.result(timeout=max(0.0, deadline - time.monotonic())))
        except FutureTimeout as exc:
            future.cancel()
            raise timed_out(self.settings.llm_timeout_s) from exc
        except LLMError:
            raise
        except Exception as exc:  # noqa: BLE001 - whatever an outside server makes a client raise is a fallback
            raise LLMError(f"the LLM answer could not be read: {type(exc).__name__}") from exc

    def llm_reachable(self) -> bool | None:
        """None when no LLM is configured; else the last background probe's answer (see llm/probe.py)."""
        return self._probe.reachable() if self._probe is not None else None

    def close(self) -> None:
        """Stop the LLM calls' threads and close the LLM client's connections."""
        self._llm_pool.shutdown(wait=False, cancel_futures=True)
        if self.llm is not None:
            self.llm.close()
