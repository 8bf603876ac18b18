"""The route stage: each description goes the index part that reads its language (English through MiniLM, any
other language through multilingual-e5, which finds the English reference plots of similar stories)."""
from __future__ import annotations

from dataclasses import dataclass

from service.calibration import Fusion
from service.confidence import ConfidenceScale
from service.embedding import Embedder
from service.heads import BlendedScorer
from service.language import Detection
from service.settings import Settings
from service.store import ReferenceIndex
from service.vote import DEFAULT_THRESHOLD

MULTILINGUAL_MISSING = {
    "building": "multilingual retrieval is still being built: this {language} description was matched with the "
                "English model, which reads it poorly",
    "off": "multilingual retrieval is turned off: this {language} description was matched with the English model",
}


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
        threshold = settings.classification.threshold or (scorer.blend.threshold if scorer else DEFAULT_THRESHOLD)
        scale = index.manifest.get("parts", {}).get(name, {}).get("confidence")
        return cls(name, index, embedder, scorer, threshold, ConfidenceScale(**scale) if scale else None,
                   Fusion(settings.classification.fusion_weight, settings.classification.fusion_floor))


def route_all(detections: list[Detection], english: Route, multilingual: Route | None) -> dict[Route, list[int]]:
    """The positions of the texts each route takes."""
    routes: dict[Route, list[int]] = {}
    for i, detection in enumerate(detections):
        route = english if detection.english or multilingual is None else multilingual
        routes.setdefault(route, []).append(i)
    return routes
