"""The pipeline: language → embed → top-k neighbours → vote (blended with the trained heads) → few-shot
prompt → LLM → fused genres.

Each language goes the route that serves it (language.py): English through the English index part, any
other language through the multilingual part, which finds the English reference plots of similar stories.

Any LLM failure (unreachable, slower than its deadline, unusable answer) is an expected event: the
answer then comes from the vote and says why.
"""
from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field

import numpy as np

from service.calibration import Fusion, fusion_for
from service.confidence import ConfidenceScale
from service.corrections import Corrections
from service.embedding import Embedder
from service.fusion import fuse
from service.heads import BlendedScorer
from service.language import Detection, LanguageDetector
from service.llm import CachedBackend, LLMError
from service.llm.base import timed_out
from service.llm.probe import ReachabilityProbe
from service.memory import release_freed_heap
from service.genres import Vocabulary
from service.labels import LabelScore, LabelScorer, ZeroShotScale, nearest_in
from service.prompt import build_messages, response_schema
from service.recognition import Recogniser, Recognition, lean_on, recognise_correction
from service.settings import Settings
from service.store import Neighbour, ReferenceIndex, index_identity
from service.vote import DEFAULT_THRESHOLD, TEMPERATURES, decide, vote


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
    language: str | None = None       # ISO 639-1 when detected with confidence
    route: str = "english"            # the index part that answered
    notes: list[str] = field(default_factory=list)
    confidence: str | None = None     # high / medium / low: how well the text matched the reference
    confidence_reason: str | None = None
    recognised: Recognition | None = None  # the reference film the description was taken to describe
    llm_outcome: str | None = None    # when the LLM was asked: "answered", or LLMError's outcome
    label_scores: list[LabelScore] | None = None  # the request's own labels, each scored (labels.py)
    degraded: list[str] = field(default_factory=list)  # what failed outside the process and was done without


@dataclass(eq=False)  # routes are told apart by identity
class Route:
    """One index part and what scores against it: the embedder of its space, its heads and threshold."""
    name: str
    index: ReferenceIndex
    embedder: Embedder
    scorer: BlendedScorer | None
    threshold: float
    confidence: ConfidenceScale | None
    fusion: Fusion  # the LLM's say on this route: calibrated for the configured model, or the defaults

    @classmethod
    def of(cls, name: str, index: ReferenceIndex, embedder: Embedder, scorer: BlendedScorer | None,
           settings: Settings) -> Route:
        threshold = settings.vote_threshold or (scorer.blend.threshold if scorer else DEFAULT_THRESHOLD)
        scale = index.manifest.get("parts", {}).get(name, {}).get("confidence")
        return cls(name, index, embedder, scorer, threshold, ConfidenceScale(**scale) if scale else None,
                   Fusion(settings.fusion_weight, settings.fusion_floor))


SEARCH_SPLIT_MIN = 8  # queries per thread below which splitting a search costs more than it saves
# threads for the parts of split searches, shared by every classifier of the process (a retired one may
# still finish requests in flight); made when first needed
_SEARCHERS = ThreadPoolExecutor(max_workers=os.cpu_count() or 2, thread_name_prefix="search")

MULTILINGUAL_MISSING = {
    "building": "multilingual retrieval is still being built: this {language} description was matched with the "
                "English model, which reads it poorly",
    "off": "multilingual retrieval is turned off: this {language} description was matched with the English model",
}


NO_SAY = ("the LLM was not asked: {model} was calibrated to no say on the {route} route (it did not beat the "
          "vote there; see make calibrate-llm)")


class Classifier:
    def __init__(self, index: ReferenceIndex, embedder: Embedder, llm: CachedBackend | None, settings: Settings,
                 scorer: BlendedScorer | None = None, multilingual: Route | None = None,
                 detector: LanguageDetector | None = None, corrections: Corrections | None = None):
        self.english = Route.of("english", index, embedder, scorer, settings)
        self.multilingual = multilingual
        self.vocabulary: Vocabulary = index.vocabulary
        # zero-shot labels are read by the multilingual model where there is one: labels in any language
        zero_shot = multilingual or self.english
        scale = ZeroShotScale.of_part(index.manifest.get("parts", {}).get(zero_shot.name, {}))
        self.label_scorer = LabelScorer(zero_shot.embedder, self.vocabulary, scale, nearest_in(zero_shot.index))
        self.detector = detector
        self.recogniser = Recogniser(index.films)  # known films (recognition.py); their names counted on first use
        self.corrections = corrections  # editors' corrections since the build, searched beside the index
        self.llm = llm
        self.settings = settings
        # why non-English text cannot take the multilingual route, when it cannot
        self.multilingual_status = "ready" if multilingual else ("building" if settings.multilingual_model else "off")
        # LLM calls run here so a hung server cannot hold a request past its deadline.
        self._llm_pool = ThreadPoolExecutor(max_workers=settings.llm_concurrency, thread_name_prefix="llm")
        self._probe = ReachabilityProbe(llm.reachable) if llm is not None else None
        self.llm_last_error: str | None = None  # None since the last usable answer: /health reads it
        if llm is not None:
            serving = index_identity(index.manifest)
            for route in self.routes():
                route.fusion = fusion_for(settings.index_dir, llm.identity(), serving, route.name, route.fusion)

    # the English route's parts, which lookups, evaluation and /health read
    @property
    def index(self) -> ReferenceIndex:
        return self.english.index

    @property
    def embedder(self) -> Embedder:
        return self.english.embedder

    @property
    def scorer(self) -> BlendedScorer | None:
        return self.english.scorer

    @property
    def threshold(self) -> float:
        return self.english.threshold

    def routes(self) -> list[Route]:
        return [self.english] + ([self.multilingual] if self.multilingual else [])

    def embedders(self) -> dict[str, Embedder]:
        return {route.name: route.embedder for route in self.routes()}

    def classify(self, text: str, use_llm: bool = True, labels: list[str] | None = None) -> Classification:
        return self.classify_many([text], use_llm, labels)[0]

    def classify_many(self, texts: list[str], use_llm: bool = True,
                      labels: list[str] | None = None) -> list[Classification]:
        """Embedded and scored together per route; the LLM (unless `use_llm` is False) is asked about all of
        them at once, under one deadline. With `labels`, the answer scores exactly those labels (labels.py)
        and `genres` lists those that pass."""
        detections = self.detector.detect_many(texts) if self.detector else [Detection(None, 0.0)] * len(texts)
        store_problem = self.corrections.refresh() if self.corrections is not None else None
        results: list[Classification | None] = [None] * len(texts)
        for route, positions in self._routes(detections).items():
            for i, result in zip(positions, self._score(route, [texts[i] for i in positions])):
                result.language = detections[i].language
                if route is self.english and not detections[i].english:
                    result.notes.append(MULTILINGUAL_MISSING[self.multilingual_status].format(
                        language=detections[i].language))
                if store_problem:
                    result.notes.append(store_problem)
                    result.degraded.append("corrections_store")
                results[i] = result
        if labels:
            self._score_labels(texts, results, self.label_scorer.distinct(labels), use_llm)
        elif self.llm is not None and use_llm:
            self._consult_llm(texts, results)
        return results

    def _score_labels(self, texts: list[str], results: list[Classification], labels: list[str], use_llm: bool) -> None:
        """The request's labels: the index's as scored, the others by the LLM (asked with the request's labels
        as its schema) or, without one or when it failed, by the embedding."""
        unknown = self.label_scorer.unknown(labels)
        if self.llm is not None and use_llm:
            self._consult_llm(texts, results, Vocabulary(tuple(labels)) if unknown else None)
        for text, result in zip(texts, results):
            result.label_scores = self.label_scorer.score(text, result.scores, self._route(result).threshold, labels,
                                                          result.llm_genres)
            passing = sorted((s for s in result.label_scores if s.passes), key=lambda s: -s.score)
            result.genres = [s.label for s in passing][:self.settings.max_genres]

    def _routes(self, detections: list[Detection]) -> dict[Route, list[int]]:
        routes: dict[Route, list[int]] = {}
        for i, detection in enumerate(detections):
            route = self.english if detection.english or self.multilingual is None else self.multilingual
            routes.setdefault(route, []).append(i)
        return routes

    def _score(self, route: Route, texts: list[str]) -> list[Classification]:
        started = time.perf_counter()
        # a description is compared with plots, text of its own kind: e5 wants the same prefix on both sides
        # of such a symmetric comparison (measured on the dev sets: German 0.617 → 0.643, French 0.392 →
        # 0.401 micro-F1 with "passage: " rather than "query: ")
        vectors = route.embedder.embed(texts, role="passage")
        all_neighbours = self._search(route.index, vectors)
        if self.corrections is not None:
            all_neighbours = self.corrections.beside(route.name, vectors, all_neighbours, self.settings.top_k)
        all_scores = [vote(neighbours, TEMPERATURES.get(route.name)) for neighbours in all_neighbours]
        if route.scorer is not None:
            all_scores = route.scorer.blend_scores(texts, vectors, all_scores)
        retrieval_ms = round((time.perf_counter() - started) * 1000 / max(len(texts), 1), 2)
        results = []
        for text, vector, neighbours, scores in zip(texts, vectors, all_neighbours, all_scores):
            recognised = self._recognised(route, text, neighbours) if self.settings.recognise_films else None
            recognised = recognised or recognise_correction(neighbours)
            if recognised is None:
                genres = decide(scores, route.threshold, self.settings.max_genres)
            else:
                scores = lean_on(scores, recognised.film)
                genres = list(recognised.film.genres)[:self.settings.max_genres]
            result = Classification(genres, scores, "vote", neighbours, scores, genres, route=route.name,
                                    timings_ms={"retrieval": retrieval_ms}, recognised=recognised)
            if recognised is not None and recognised.source == "correction":
                result.confidence, result.confidence_reason = "high", "an editor's correction of this film answers"
            elif route.confidence is not None and neighbours:
                result.confidence, result.confidence_reason = route.confidence.assess(vector, neighbours[0].similarity)
            results.append(result)
        return results

    def _recognised(self, route: Route, text: str, neighbours: list[Neighbour]) -> Recognition | None:
        """The reference film the description tells of, the evidence weighed by the route's model (recognition.py)."""
        return self.recogniser.recognise(text, neighbours, route.name)

    def _consult_llm(self, texts: list[str], results: list[Classification], question: Vocabulary | None = None) -> None:
        """Ask the LLM to choose among the index's labels, or among a request's own (`question`: its schema is
        those labels). Its picks that are labels of the index are fused with the vote."""
        started = time.perf_counter()
        deadline = time.monotonic() + self.settings.llm_timeout_s
        examples = self.settings.prompt_examples
        zero_shot = question is not None
        question = question or self.vocabulary
        schema = response_schema(question.names)
        # a recognised film is answered with its own labels, and a route where this model was calibrated to
        # weight 0 answers with the vote whatever it says: no need to ask, unless for labels the index lacks
        asked = []
        for text, result in zip(texts, results):
            if not zero_shot and result.recognised is not None:
                continue
            if not zero_shot and self._route(result).fusion.weight == 0:
                result.fallback_reason = NO_SAY.format(model=self.llm.describe(), route=result.route)
            else:
                asked.append((text, result))
        futures = [self._llm_pool.submit(self.llm.genres, build_messages(text, r.neighbours[:examples],
                                                                         question.names), schema, question)
                   for text, r in asked]
        for future, (_, result) in zip(futures, asked):
            try:
                llm_genres = self._answer(future, deadline)
            except LLMError as exc:
                result.fallback_reason = self.llm_last_error = str(exc)
                result.llm_outcome = exc.outcome
                continue
            finally:
                result.timings_ms["llm"] = round((time.perf_counter() - started) * 1000, 2)
            self.llm_last_error = None
            result.llm_genres, result.backend, result.llm_outcome = llm_genres, self.llm.name, "answered"
            route = self._route(result)
            if result.recognised is None and route.fusion.weight > 0:
                picks = [self.vocabulary.canonical(g) for g in llm_genres] if zero_shot else llm_genres
                result.scores = fuse(result.vote_scores, [g for g in picks if g], route.fusion.weight,
                                     route.fusion.floor)
                result.genres = decide(result.scores, route.threshold, self.settings.max_genres)

    def _search(self, index: ReferenceIndex, vectors) -> list[list[Neighbour]]:
        """A batch's queries split across the cores (FAISS releases the GIL while it searches): 32 queries take
        6 ms instead of 12 on 2 cores. One query runs alone."""
        parts = min(self.settings.embed_workers, len(vectors) // SEARCH_SPLIT_MIN)
        if parts < 2:
            return index.search(vectors, self.settings.top_k)
        chunks = np.array_split(vectors, parts)
        return [row for found in _SEARCHERS.map(lambda c: index.search(c, self.settings.top_k), chunks)
                for row in found]

    def _route(self, result: Classification) -> Route:
        return self.multilingual if result.route == "multilingual" else self.english

    def _answer(self, future, deadline: float) -> list[str]:
        try:
            return future.result(timeout=max(0.0, deadline - time.monotonic()))
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

    def warm_up(self) -> None:
        """Load what is otherwise loaded by the first request (lingua's models, each model's first run), then
        give the memory loading freed back to the system."""
        if self.detector is not None:
            self.detector.warm_up()
        for route in self.routes():
            route.embedder.embed(["warm-up"])
        if self.settings.recognise_films:
            self.recogniser.warm_up()  # the films' names and series places, a few seconds: not a request's to pay
        release_freed_heap()

    def close(self) -> None:
        """Stop the LLM calls' threads and close the LLM client's connections."""
        self._llm_pool.shutdown(wait=False, cancel_futures=True)
        if self.corrections is not None:
            self.corrections.close()
        if self.llm is not None:
            self.llm.close()
