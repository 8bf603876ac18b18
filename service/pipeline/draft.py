"""The answer as the vote gives it: the genres over the route's threshold, or a recognised film's own labels, and
how well the text matched the reference (confidence.py)."""
from __future__ import annotations

import numpy as np

from service.pipeline.answer import Classification
from service.pipeline.routes import Route
from service.recognition import Recognition, lean_on
from service.store import Neighbour
from service.vote import decide

CORRECTED = "an editor's correction of this film answers"


def drafted(route: Route, vector: np.ndarray, neighbours: list[Neighbour], scores: dict[str, float],
            recognition: Recognition | None, max_genres: int) -> Classification:
    if recognition is None:
        genres = decide(scores, route.threshold, max_genres)
    else:
        scores = lean_on(scores, recognition.genres)
        genres = list(recognition.genres)[:max_genres]
    result = Classification(genres, scores, "vote", neighbours, scores, genres, route=route.name,
                            recognised=recognition)
    if recognition is not None and recognition.source == "correction":
        result.confidence, result.confidence_reason = "high", CORRECTED
    elif route.confidence is not None and neighbours:
        result.confidence, result.confidence_reason = route.confidence.assess(vector, neighbours[0].similarity)
    return result
