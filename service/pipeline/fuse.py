"""The fuse stage: the LLM's picks move the vote's scores by the route's calibrated weight (fusion.py), and the
answer is decided again from them. A recognised film keeps its own labels whatever the LLM says."""
from __future__ import annotations

from service.fusion import fuse
from service.pipeline.answer import Classification
from service.pipeline.routes import Route
from service.vote import decide


def fuse_picks(result: Classification, picks: list[str], route: Route, max_genres: int) -> None:
    if result.recognised is not None or route.fusion.weight == 0:
        return
    result.scores = fuse(result.vote_scores, picks, route.fusion.weight, route.fusion.floor)
    result.genres = decide(result.scores, route.threshold, max_genres)
