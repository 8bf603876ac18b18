"""The LLM stage: which drafted answers the LLM is asked about, the few-shot question each makes, and what its
answer does to them (fuse.py). The asking goes through the gate (llm/gate.py): awaited by the API once the
request's CPU slot is released, or waited for by a thread (file runs, evaluation, the CLI).

Any LLM failure (busy, unreachable, slower than its budget, an unusable answer) is an expected event: the answer
stays the vote's and says why."""
from __future__ import annotations

import time
from dataclasses import dataclass

from service.genres import Vocabulary
from service.labels import LabelScorer
from service.llm import LLMError
from service.llm.gate import LOCAL, Answer, LLMGate, Question
from service.pipeline.answer import Classification
from service.pipeline.fuse import fuse_picks
from service.pipeline.routes import Route
from service.prompt import build_messages, response_schema

NO_SAY = ("the LLM was not asked: {model} was calibrated to no say on the {route} route (it did not beat the "
          "vote there; see make calibrate-llm)")


@dataclass
class Consultation:
    """What one request asks the LLM: the drafts it asks about (in order) and the question each makes."""
    asked: list[tuple[str, Classification]]
    questions: list[Question]
    zero_shot: bool  # the request's own labels, some unknown to the index, are the question's vocabulary


class LLMStage:
    def __init__(self, gate: LLMGate, vocabulary: Vocabulary, routes: dict[str, Route], labels: LabelScorer,
                 prompt_examples: int, max_genres: int):
        self.gate = gate
        self.vocabulary = vocabulary
        self.routes = routes
        self.labels = labels
        self.prompt_examples = prompt_examples
        self.max_genres = max_genres
        self.last_error: str | None = None  # None since the last usable answer: /health reads it

    async def run(self, texts: list[str], results: list[Classification], budget_s: float | None,
                  consumer: str = LOCAL) -> None:
        """`consumer`: whom the questions are asked for (a named API key, a client address): consumers take turns
        in the LLM's queue (llm/turns.py)."""
        consultation = self.consultation(texts, results)
        started = time.perf_counter()
        answers = await self.gate.ask(consultation.questions, budget_s, consumer) if consultation.questions else []
        self.apply(consultation, answers, started)

    def run_blocking(self, texts: list[str], results: list[Classification], budget_s: float | None = None) -> None:
        consultation = self.consultation(texts, results)
        started = time.perf_counter()
        answers = self.gate.ask_blocking(consultation.questions, budget_s) if consultation.questions else []
        self.apply(consultation, answers, started)

    def consultation(self, texts: list[str], results: list[Classification]) -> Consultation:
        """The LLM chooses among the index's labels, or among a request's own when the index lacks some of them
        (its schema is then those labels). A recognised film is answered with its own labels, and a route where
        this model was calibrated to no say answers with the vote whatever it says: neither is asked about,
        unless for labels the index lacks."""
        labels = results[0].labels if results else None
        zero_shot = bool(labels and self.labels.unknown(labels))
        vocabulary = Vocabulary(tuple(labels)) if zero_shot else self.vocabulary
        asked = []
        for text, result in zip(texts, results):
            if not zero_shot and result.recognised is not None:
                continue
            if not zero_shot and self.routes[result.route].fusion.weight == 0:
                result.fallback_reason = NO_SAY.format(model=self.gate.describe(), route=result.route)
                continue
            asked.append((text, result))
        schema = response_schema(vocabulary.names)
        questions = [Question(build_messages(text, result.neighbours[:self.prompt_examples], vocabulary.names),
                              schema, vocabulary) for text, result in asked]
        return Consultation(asked, questions, zero_shot)

    def apply(self, consultation: Consultation, answers: list[Answer], started: float) -> None:
        waited_ms = round((time.perf_counter() - started) * 1000, 2)
        for (text, result), answer in zip(consultation.asked, answers):
            result.timings_ms["llm"] = waited_ms
            if isinstance(answer, LLMError):
                result.fallback_reason, result.llm_outcome = str(answer), answer.outcome
                if answer.outcome != "busy":  # a busy server is no broken one
                    self.last_error = str(answer)
                continue
            self.last_error = None
            result.llm_genres, result.backend, result.llm_outcome = answer, self.gate.name, "answered"
            picks = [self.vocabulary.canonical(g) for g in answer] if consultation.zero_shot else answer
            fuse_picks(result, [g for g in picks if g], self.routes[result.route], self.max_genres)
            if result.labels is not None:
                result.label_scores, result.genres = self.labels.answer(
                    text, result.scores, self.routes[result.route].threshold, result.labels, answer, self.max_genres)
