"""/classify and /classify/batch."""
from __future__ import annotations

import logging
import time
from typing import Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request

from service.api.degraded import notes_of
from service.api.deps import charged_for_batch, check_lengths, current_runtime, only_query_params
from service.api.keys import client_of
from service.api.models import (BatchRequest, BatchResponse, CandidateOut, ClassifyRequest, ClassifyResponse,
                                CompanyOut, ErrorResponse, LabelScoreOut, LookupOut, MatchOut, NeighbourOut,
                                RecognisedOut, SeriesFilmOut)
from service.api.state import Runtime
from service.classifier import Classification
from service.recognition import Recognition
from service.lookup.kinds import detect_kind
from service.lookup.lookup import LookupResult, combine

log = logging.getLogger("moviegenre")
ERRORS = {code: {"model": ErrorResponse} for code in (400, 401, 413, 422, 429, 503)}
# (with MOVIEGENRE_API_KEY or MOVIEGENRE_API_KEYS set, a request without a valid key is answered 401 by the
# admission, api/admission.py, before its body is read)
router = APIRouter(tags=["classify"], responses=ERRORS)


def _response(request: Request, c: Classification, explain: bool, started: float) -> ClassifyResponse:
    neighbours = [NeighbourOut(title=n.film.title, year=n.film.year, genres=list(n.film.genres),
                               similarity=round(n.similarity, 4), source=n.film.source)
                  for n in c.neighbours] if explain else None
    label_scores = [LabelScoreOut(label=s.label, score=s.score, source=s.source) for s in c.label_scores] \
        if c.label_scores is not None else None
    return ClassifyResponse(genres=c.genres, scores={g: round(s, 4) for g, s in c.scores.items() if s > 0},
                            label_scores=label_scores,
                            backend=c.backend, llm_genres=c.llm_genres, fallback_reason=c.fallback_reason,
                            latency_ms=round((time.perf_counter() - started) * 1000, 2), language=c.language,
                            confidence=c.confidence, confidence_reason=c.confidence_reason,
                            notes=c.notes + notes_of(request.scope.get("state", {})),
                            recognised=_recognised_out(c.recognised), neighbours=neighbours)


def _recognised_out(recognised: Recognition | None) -> RecognisedOut | None:
    if recognised is None:
        return None
    film, similarity = recognised.film, round(recognised.similarity, 4)
    if film is None:
        return RecognisedOut(title=f"{recognised.series_name} (series)", year=None, similarity=similarity,
                             genres=list(recognised.genres), source="series",
                             series=[SeriesFilmOut(title=f.title, year=f.year) for f in recognised.series])
    return RecognisedOut(title=film.title, year=film.year, similarity=similarity,
                         genres=list(film.genres), source=recognised.source,
                         correction_id=getattr(film, "correction_id", None))


def _lookup_out(found: LookupResult) -> LookupOut:
    return LookupOut(kind=found.kind, available=found.available,
                     matched=MatchOut(**vars(found.match)) if found.match else None,
                     candidates=[CandidateOut(**vars(c)) for c in found.candidates],
                     company=CompanyOut(**found.company) if found.company else None,
                     known_genres=found.known_genres, plot_source=found.plot_source, notes=found.notes)


def _note(request: Request, results: list[Classification], llm: str | None) -> None:
    """What the request log and the metrics read of this request (api/metrics.py)."""
    request.state.backend = results[0].backend if results else None
    request.state.llm_backend = llm
    request.state.route = results[0].route if results else None
    request.state.llm_outcomes = [r.llm_outcome for r in results if r.llm_outcome]
    state = request.scope.setdefault("state", {})
    state["degraded"] = list(dict.fromkeys(state.get("degraded", []) + [d for r in results for d in r.degraded]))


Mode = Literal["description", "lookup", "auto"]


LLM_QUERY = Query(True, description="false: answer from the vote alone, without asking the LLM (fast)")


async def _classified(request: Request, runtime: Runtime, texts: list[str], use_llm: bool,
                      labels: list[str] | None = None) -> list[Classification]:
    """The pipeline's CPU stages under an admission slot (on a worker thread), then, the slot released, the LLM
    stage within the request's budget (LLM_TIMEOUT): its wait holds no slot and no thread."""
    classifier = runtime.classifier
    results = await request.app.state.admission.run(classifier.draft, texts, labels)
    if use_llm:  # the consumer the rate limit counts takes its turn in the LLM's queue with the others
        await classifier.refine(texts, results, classifier.settings.llm.timeout_s,
                                client_of(request.scope, classifier.settings))
    _note(request, results, classifier.llm.name if classifier.llm is not None else None)
    return results


@router.post("/classify", response_model=ClassifyResponse,
             dependencies=[Depends(only_query_params("mode", "explain", "llm"))])
async def classify(request: Request, body: ClassifyRequest, mode: Mode = Query(
                       "description", description="description: the text is a plot; lookup: a title, a review or a "
                                                  "company name to look up; auto: whichever the text reads as"),
                   explain: bool = False, llm: bool = LLM_QUERY,
                   runtime: Runtime = Depends(current_runtime)) -> ClassifyResponse:
    """Genres of a film from its description; with mode=lookup, from a title, a review or a company name
    looked up in the reference, IMDb and TMDb; with mode=auto, from whatever the text is."""
    check_lengths(request, [body.description])
    log.debug("classify mode=%s text=%r", mode, body.description)
    started = time.perf_counter()
    kind = body.kind or (detect_kind(body.description) if mode == "auto" else None)
    if mode == "description" or kind == "description":
        [result] = await _classified(request, runtime, [body.description], llm, body.labels)
        response = _response(request, result, explain, started)
        if mode != "description":  # the text was taken for a description: say so
            response.lookup = _lookup_out(LookupResult("description", body.description))
        return response
    # a lookup waits on IMDb's database and TMDb: I/O, on the lookups' own threads, holding no CPU slot
    found = await request.app.state.admission.lookup(runtime.lookup.lookup, body.description, kind)
    [result] = await _classified(request, runtime, [found.plot or body.description], llm, body.labels)
    request.state.lookup_outcomes = found.outcomes()
    response = _response(request, result, explain, started)
    if body.labels is None:  # with the request's own labels, the answer is theirs alone
        response.genres, response.genre_sources = combine(found, result.genres,
                                                          runtime.classifier.settings.classification.max_genres)
    response.lookup = _lookup_out(found)
    return response


@router.post("/classify/batch", response_model=BatchResponse,
             dependencies=[Depends(only_query_params("explain", "llm"))])
async def classify_batch(request: Request, body: BatchRequest, explain: bool = False, llm: bool = LLM_QUERY,
                         runtime: Runtime = Depends(current_runtime)) -> BatchResponse:
    """Many descriptions in one call, embedded together; the LLM asked about them at once, within its limits.
    A batch of N costs N requests of the consumer's rate limit."""
    limit = request.app.state.settings.service.max_batch_items
    if len(body.descriptions) > limit:
        raise HTTPException(422, f"a batch is limited to {limit} descriptions")
    check_lengths(request, body.descriptions)
    refusal = await charged_for_batch(request, len(body.descriptions))
    if refusal is not None:
        return refusal
    started = time.perf_counter()
    results = await _classified(request, runtime, body.descriptions, llm)
    return BatchResponse(results=[_response(request, r, explain, started) for r in results])
