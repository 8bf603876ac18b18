"""The answer every stage of the pipeline reads and adds to."""
from __future__ import annotations

from dataclasses import dataclass, field

from service.labels import LabelScore
from service.recognition import Recognition
from service.store import Neighbour


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

    @property
    def labels(self) -> list[str] | None:
        """The request's own labels, when it brought some (each once, as first spelled)."""
        return [s.label for s in self.label_scores] if self.label_scores is not None else None
