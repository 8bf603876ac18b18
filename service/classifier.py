"""The pipeline: embed → top-k neighbours → vote → few-shot prompt → LLM → fused genres.

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
from service.llm import LLMBackend, LLMError, parse_genres
from service.prompt import RESPONSE_SCHEMA, build_messages
from service.settings import Settings
from service.store import Neighbour, ReferenceIndex
from service.vote import decide, vote


@dataclass
class Classification:
    genres: list[str]
    scores: dict[str, float]
    backend: str                      # "vote" or the LLM backend's name
    neighbours: list[Neighbour]
    vote_scores: dict[str, float]
    llm_genres: list[str] | None = None
    fallback_reason: str | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)


class Classifier:
    def __init__(self, index: ReferenceIndex, embedder: Embedder, llm: LLMBackend | None, settings: Settings):
        self.index = index
        self.embedder = embedder
        self.llm = llm
        self.settings = settings
        # LLM calls run here so a hung server cannot hold a request past its deadline.
        self._llm_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="llm")
        self.llm_last_error: str | None = None  # None since the last usable answer: /health reads it

    @staticmethod
    def vote_decision(result: Classification, settings: Settings) -> list[str]:
        """What the vote alone would have answered."""
        return decide(result.vote_scores, settings.vote_threshold, settings.max_genres)

    def classify(self, text: str) -> Classification:
        return self.classify_many([text])[0]

    def classify_many(self, texts: list[str]) -> list[Classification]:
        started = time.perf_counter()
        vectors = self.embedder.embed(texts)
        all_neighbours = self.index.search(vectors, self.settings.top_k)
        retrieval_ms = (time.perf_counter() - started) * 1000 / max(len(texts), 1)
        return [self._decide(text, neighbours, retrieval_ms) for text, neighbours in zip(texts, all_neighbours)]

    def _decide(self, text: str, neighbours: list[Neighbour], retrieval_ms: float) -> Classification:
        s = self.settings
        vote_scores = vote(neighbours)
        result = Classification([], vote_scores, "vote", neighbours, vote_scores, timings_ms={"retrieval": round(retrieval_ms, 2)})
        result.genres = self.vote_decision(result, s)
        if self.llm is None:
            return result
        started = time.perf_counter()
        try:
            llm_genres = self._ask_llm(text, neighbours[: s.prompt_examples])
        except LLMError as exc:
            result.fallback_reason = self.llm_last_error = str(exc)
            return result
        finally:
            result.timings_ms["llm"] = round((time.perf_counter() - started) * 1000, 2)
        self.llm_last_error = None
        fused = fuse(vote_scores, llm_genres, s.fusion_weight, s.fusion_floor)
        result.genres = decide(fused, s.vote_threshold, s.max_genres)
        result.scores, result.llm_genres, result.backend = fused, llm_genres, self.llm.name
        return result

    def llm_reachable(self, wait_s: float = 2.0) -> bool | None:
        """None when no LLM is configured; False when it does not answer within `wait_s`."""
        if self.llm is None:
            return None
        try:
            return self._llm_pool.submit(self.llm.reachable).result(timeout=wait_s)
        except FutureTimeout:
            return False

    def _ask_llm(self, text: str, examples: list[Neighbour]) -> list[str]:
        future = self._llm_pool.submit(self.llm.complete, build_messages(text, examples), RESPONSE_SCHEMA)
        try:
            return parse_genres(future.result(timeout=self.settings.llm_timeout_s))
        except FutureTimeout as exc:
            future.cancel()
            raise LLMError(f"the LLM did not answer within {self.settings.llm_timeout_s:g} s") from exc
