"""The classifier: the pipeline's stages (service/pipeline/) composed. `draft` is the CPU part — language →
route → embed → top-k neighbours → vote (blended with the trained heads) → recognition → corrections — and answers
as the vote would; `refine` (async) and `classify_many` (blocking) then consult the LLM, whose picks are fused
with the vote.

Each language goes the route that serves it (pipeline/routes.py): English through the English index part, any
other language through the multilingual part, which finds the English reference plots of similar stories.
"""
from __future__ import annotations

import time

from service.calibration import fusion_for
from service.corrections import Corrections
from service.embedding import Embedder
from service.heads import BlendedScorer
from service.language import Detection, LanguageDetector
from service.llm.gate import LOCAL, LLMGate
from service.memory import release_freed_heap
from service.genres import Vocabulary
from service.labels import LabelScorer, ZeroShotScale, nearest_in
from service.pipeline.answer import Classification
from service.pipeline.draft import drafted
from service.pipeline.llm import LLMStage
from service.pipeline.recognise import recognised
from service.pipeline.retrieve import retrieve
from service.pipeline.routes import MULTILINGUAL_MISSING, Route, route_all
from service.pipeline.vote import vote_and_heads
from service.recognition import Recogniser
from service.settings import Settings
from service.store import ReferenceIndex, index_identity

__all__ = ["Classification", "Classifier", "Route"]


class Classifier:
    def __init__(self, index: ReferenceIndex, embedder: Embedder, llm: LLMGate | None, settings: Settings,
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
        self.multilingual_status = "ready" if multilingual else (
            "building" if settings.index.multilingual_model else "off")
        self.llm_stage: LLMStage | None = None
        if llm is not None:
            serving = index_identity(index.manifest)
            for route in self.routes():
                route.fusion = fusion_for(settings.index.dir, llm.identity(), serving, route.name, route.fusion)
            self.llm_stage = LLMStage(llm, self.vocabulary, {r.name: r for r in self.routes()}, self.label_scorer,
                                      settings.classification.prompt_examples, settings.classification.max_genres)

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
        """The whole pipeline, blocking: the draft, then (unless `use_llm` is False) the LLM about all of them at
        once, each question waiting its turn in the LLM's queue (no budget: a file run or an evaluation wants the
        LLM's answer, not the fastest one)."""
        results = self.draft(texts, labels)
        if use_llm and self.llm_stage is not None:
            self.llm_stage.run_blocking(texts, results)
        return results

    async def refine(self, texts: list[str], results: list[Classification], budget_s: float,
                     consumer: str = LOCAL) -> None:
        """The LLM stage, awaited (the API, once its CPU slot is released): an answer the LLM cannot give within
        `budget_s` stays the vote's, with the reason. `consumer` (an API key's owner, a client address) takes its
        turn in the LLM's queue with the others (llm/turns.py)."""
        if self.llm_stage is not None:
            await self.llm_stage.run(texts, results, budget_s, consumer)

    def draft(self, texts: list[str], labels: list[str] | None = None) -> list[Classification]:
        """The answers as the vote gives them: embedded and scored together per route. With `labels`, each answer
        scores exactly those labels (labels.py) and `genres` lists those that pass."""
        detections = self.detector.detect_many(texts) if self.detector else [Detection(None, 0.0)] * len(texts)
        store_problem = self.corrections.problem if self.corrections is not None else None
        results: list[Classification | None] = [None] * len(texts)
        for route, positions in route_all(detections, self.english, self.multilingual).items():
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
            labels = self.label_scorer.distinct(labels)
            for text, result in zip(texts, results):
                result.label_scores, result.genres = self.label_scorer.answer(
                    text, result.scores, self._route(result).threshold, labels, None,
                    self.settings.classification.max_genres)
        return results

    def _score(self, route: Route, texts: list[str]) -> list[Classification]:
        started = time.perf_counter()
        found = retrieve(route, texts, self.settings.classification.top_k, self.settings.index.embed_workers,
                         self.corrections)
        all_scores = vote_and_heads(route, texts, found)
        recogniser = self.recogniser if self.settings.classification.recognise_films else None
        results = []
        for text, vector, neighbours, scores in zip(texts, found.vectors, found.neighbours, all_scores):
            recognition, scores = recognised(recogniser, route, text, neighbours, scores)
            results.append(drafted(route, vector, neighbours, scores, recognition,
                                   self.settings.classification.max_genres))
        retrieval_ms = round((time.perf_counter() - started) * 1000 / max(len(texts), 1), 2)
        for result in results:
            result.timings_ms["retrieval"] = retrieval_ms
        return results

    def _route(self, result: Classification) -> Route:
        return self.multilingual if result.route == "multilingual" else self.english

    def llm_reachable(self) -> bool | None:
        """None when no LLM is configured; else the last background probe's answer (see llm/probe.py)."""
        return self.llm.reachable() if self.llm is not None else None

    @property
    def llm_last_error(self) -> str | None:
        return self.llm_stage.last_error if self.llm_stage is not None else None

    def warm_up(self) -> None:
        """Load what is otherwise loaded by the first request (lingua's models, each model's first run), then
        give the memory loading freed back to the system."""
        if self.detector is not None:
            self.detector.warm_up()
        for route in self.routes():
            route.embedder.embed(["warm-up"])
        if self.settings.classification.recognise_films:
            self.recogniser.warm_up()  # the films' names and series places, a few seconds: not a request's to pay
        release_freed_heap()

    def close(self, llm: bool = True) -> None:
        """Close the corrections store and, unless a newer classifier took the gate over (`llm` False), stop the
        LLM's event loop and close its client's connections."""
        if self.corrections is not None:
            self.corrections.close()
        if self.llm is not None and llm:
            self.llm.close()
