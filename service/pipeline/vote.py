"""The vote stage: the neighbours vote for their genres (vote.py), blended with the route's trained heads
(heads.py) where it has them."""
from __future__ import annotations

from service.pipeline.retrieve import Retrieved
from service.pipeline.routes import Route
from service.vote import TEMPERATURES, vote


def vote_and_heads(route: Route, texts: list[str], retrieved: Retrieved) -> list[dict[str, float]]:
    scores = [vote(neighbours, TEMPERATURES.get(route.name)) for neighbours in retrieved.neighbours]
    if route.scorer is not None:
        scores = route.scorer.blend_scores(texts, retrieved.vectors, scores)
    return scores
