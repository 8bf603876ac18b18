"""How the LLM's picks and the neighbour vote combine.

The LLM only moves genres the vote already supports (score ≥ `floor`): a picked genre gets `weight`
added to its (1 - weight)-scaled vote score. With weight 0.2 and threshold 0.3 a genre the LLM picks
needs a vote of 0.125 instead of 0.375: a weak LLM shifts borderline genres only, a strong one can
recover genres the vote under-rates. It can never add a genre no neighbour carries.
"""
from __future__ import annotations


def fuse(vote_scores: dict[str, float], llm_genres: list[str], weight: float, floor: float) -> dict[str, float]:
    picked = set(llm_genres)
    fused = {g: (1 - weight) * s + (weight if g in picked and s >= floor else 0.0) for g, s in vote_scores.items()}
    return dict(sorted(fused.items(), key=lambda item: -item[1]))
