"""The neighbour vote: each retrieved film votes for its genres, weighted by its similarity."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from service.store import Neighbour


DEFAULT_THRESHOLD = 0.3  # the vote's own threshold, where no tuned blend says otherwise


def vote(neighbours: Sequence[Neighbour]) -> dict[str, float]:
    """Per genre, the similarity-weighted share of neighbours labelled with it (0..1), highest first."""
    weights = [max(n.similarity, 0.0) for n in neighbours]
    total = sum(weights) or 1.0
    scores: dict[str, float] = {}
    for neighbour, weight in zip(neighbours, weights):
        for genre in neighbour.film.genres:
            scores[genre] = scores.get(genre, 0.0) + weight / total
    return dict(sorted(scores.items(), key=lambda item: -item[1]))


def decide(scores: dict[str, float], threshold: float, max_genres: int) -> list[str]:
    """Genres scoring at least the threshold, most confident first; never empty while any genre scored."""
    ranked = sorted(scores, key=lambda g: -scores[g])
    chosen = [g for g in ranked if scores[g] >= threshold][:max_genres]
    return chosen or ranked[:1]


def as_matrix(score_rows: Sequence[dict[str, float]], labels: Sequence[str]) -> np.ndarray:
    """Per-label scores as a (rows × labels) matrix, the shape the trained heads produce."""
    return np.array([[row.get(g, 0.0) for g in labels] for row in score_rows]).reshape(-1, len(labels))
