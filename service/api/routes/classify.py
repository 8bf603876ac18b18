"""/classify and /classify/batch."""
from __future__ import annotations

import logging
import time
from typing import Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request

from service.api.deps import current_runtime, only_query_params, require_api_key
from service.api.models import (BatchRequest, BatchResponse, ClassifyRequest, ClassifyResponse, CompanyOut,
                                ErrorResponse, LookupOut, MatchOut, NeighbourOut)
from service.api.state import Runtime
from service.classifier import Classification
from service.lookup.lookup import LookupResult, combine

log = logging.getLogger("moviegenre")
ERRORS = {code: {"model": ErrorResponse} for code in (400, 401, 413, 422, 503)}
router = APIRouter(tags=["classify"], dependencies=[Depends(require_api_key)], responses=ERRORS)


def _response(c: Classification, explain: bool, started: float) -> ClassifyResponse:
    neighbours = [NeighbourOut(title=n.film.title, year=n.film.year, genres=list(n.film.genres),
                               similarity=round(n.similarity, 4)) for n in c.neighbours] if explain else None
    return ClassifyResponse(genres=c.genres, scores={g: round(s, 4) for g, s in c.scores.items() if s > 0},
                            backend=c.backend, llm_genres=c.llm_genres, fallback_reason=c.fallback_reason,
                            latency_ms=round((time.perf_counter() - started) * 1000, 2), neighbours=neighbours)


def _lookup_out(found: LookupResult) -> LookupOut:
    return LookupOut(kind=found.kind, available=found.available,
                     matched=MatchOut(**vars(found.match)) if found.match else None,
                     company=CompanyOut(**found.company) if found.company else None,
                     known_genres=found.known_genres, plot_source=found.plot_source, notes=found.notes)


def _check_lengths(request: Request, texts: list[str]) -> None:
    limit = request.app.state.settings.max_description_chars
    for text in texts:
        if len(text) > limit:
            raise HTTPException(422, f"a description is limited to {limit} characters (got {len(text)})")


@router.post("/classify", response_model=ClassifyResponse, dependencies=[Depends(only_query_params("mode", "explain"))])
def classify(request: Request, body: ClassifyRequest, mode: Literal["description", "lookup"] = Query("description"),
             explain: bool = False, runtime: Runtime = Depends(current_runtime)) -> ClassifyResponse:
    """Genres of a film from its description; with mode=lookup, from a title, a review or a company name
    looked up in IMDb and TMDb."""
    _check_lengths(request, [body.description])
    log.debug("classify mode=%s text=%r", mode, body.description)
    started = time.perf_counter()
    if mode == "description":
        result = runtime.classifier.classify(body.description)
        request.state.backend = result.backend
        return _response(result, explain, started)
    found = runtime.lookup.lookup(body.description, body.kind)
    result = runtime.classifier.classify(found.plot or body.description)
    request.state.backend = result.backend
    response = _response(result, explain, started)
    response.genres, response.genre_sources = combine(found, result.genres, runtime.classifier.settings.max_genres)
    response.lookup = _lookup_out(found)
    return response


@router.post("/classify/batch", response_model=BatchResponse,
             dependencies=[Depends(only_query_params("explain"))])
def classify_batch(request: Request, body: BatchRequest, explain: bool = False,
                   runtime: Runtime = Depends(current_runtime)) -> BatchResponse:
    """Many descriptions in one call, embedded together."""
    limit = request.app.state.settings.max_batch_items
    if len(body.descriptions) > limit:
        raise HTTPException(422, f"a batch is limited to {limit} descriptions")
    _check_lengths(request, body.descriptions)
    started = time.perf_counter()
    results = runtime.classifier.classify_many(body.descriptions)
    request.state.backend = results[0].backend if results else None
    return BatchResponse(results=[_response(r, explain, started) for r in results])
