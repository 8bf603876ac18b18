"""/feedback: editors correct an answer once, and the service answers with the correction from then on.

POST stores a correction (on disk before the 201) and serves it at once beside the index; one sent from the page
without a token waits for an editor (202) until POST /feedback/{id}/approve (review.py: the editors' routes). An
`Idempotency-Key` header makes a retry safe: the same key and body store nothing new and answer the first result.

Which film a correction changes is decided here, once, and stored with it (`film`), so serving and the next
build agree: a title names a reference film (with its year when the title has several: 409 lists them), a
description identical to a reference film's plot names that film, and any other description is a film of its
own. A correction of a film served after another supersedes it."""
from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Depends, Header, HTTPException, Request, Response
from starlette.concurrency import run_in_threadpool

from service.api.corrections import correction_out, corrections_of, limits_of, refused, review_client, serve_written
from service.api.errors import error_response
from service.api.deps import check_lengths, current_runtime, editor_or_page, only_query_params
from service.api.models import AmbiguousFilm, CorrectionOut, ErrorResponse, FeedbackRequest
from service.api.routes import review as review_routes
from service.api.state import Runtime
from service.corpus import Film, plot_key
from service.films import film_key
from service.corrections import (Correction, Corrections, Draft, IdempotencyKey, KeyReused, OverBound, QueueFull,
                                 ShareFull, Written)
from service.corrections.idempotency import KEEP_HOURS, MAX_KEY_CHARS, checked
from service.lookup.kinds import detect_kind, parse_title

router = APIRouter(tags=["feedback"], responses={code: {"model": ErrorResponse}
                                                 for code in (400, 401, 403, 404, 413, 422, 429, 503, 507)})
IDEMPOTENCY_KEY = Header(None, alias="Idempotency-Key", description=(
    f"Makes a retry safe: a request with a key already used (by the same editor, or the same page client, within "
    f"{KEEP_HOURS} hours) and the same body stores nothing and answers the first result (header "
    f"Idempotent-Replayed: true); with another body, 422. 1 to {MAX_KEY_CHARS} printable ASCII characters: a UUID, "
    "say."))


@dataclass(frozen=True)
class Target:
    """The film a correction changes, and what of it is stored."""
    film: str
    title: str | None
    year: int | None
    plot: str


class Ambiguous(Exception):
    def __init__(self, message: str, films: list[Film]):
        super().__init__(message)
        self.films = films


@router.post("/feedback", status_code=201, response_model=CorrectionOut,
             responses={202: {"model": CorrectionOut, "description": "Sent from the page: waits for an editor"},
                        409: {"model": AmbiguousFilm}},
             dependencies=[Depends(only_query_params())])
async def add(request: Request, response: Response, body: FeedbackRequest, author: str = Depends(editor_or_page),
              runtime: Runtime = Depends(current_runtime), idempotency_key: str | None = IDEMPOTENCY_KEY):
    """Store a correction: the genres the film should have had. 201 once it is on disk and served; 202 when it
    was sent from the page and waits for an editor's approval."""
    # checked and written on the thread pool (a refused or invalid one holds no CPU slot), then served under one
    written = await run_in_threadpool(_write, request, body, author, runtime, idempotency_key)
    if isinstance(written, Response):
        return written
    # a retry's correction too: its first request may have stored it and failed before serving it here
    await serve_written(request, runtime.classifier.corrections, written.correction)
    return _answer(response, written)


def _write(request: Request, body: FeedbackRequest, author: str, runtime: Runtime,
           idempotency_key: str | None) -> Written | Response:
    """The correction checked and on disk (or the first one stored under this Idempotency-Key); the 409 answer when
    its title names several films."""
    check_lengths(request, [body.text])
    corrections = corrections_of(runtime)
    genres = _labels(runtime, body.genres)
    review = author == "page"
    client = review_client(request, corrections) if review else None
    key = _key(idempotency_key, f"page:{client}" if review else f"editor:{author}", body)
    first = _replayed(corrections, key)
    if first is not None:
        return Written(first, replayed=True)
    try:
        target = _target(runtime, body)
    except Ambiguous as exc:
        candidates = [{"title": f.title, "year": f.year} for f in sorted(exc.films, key=lambda f: f.year or 0)]
        return error_response(409, str(exc), candidates=candidates)
    draft = Draft(body.text, target.plot, tuple(genres), target.title, target.year, author, target.film, review,
                  client)
    try:
        return corrections.store.write(draft, limits_of(request, corrections), key)
    except (OverBound, QueueFull, ShareFull, KeyReused) as exc:
        raise refused(exc) from exc


def _key(value: str | None, principal: str, body: FeedbackRequest) -> IdempotencyKey | None:
    if value is None:
        return None
    try:
        return IdempotencyKey.of(principal, checked(value), body.model_dump())
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from exc


def _replayed(corrections: Corrections, key: IdempotencyKey | None) -> Correction | None:
    """The correction a request with this key already stored (cheap, before any work; the write checks again)."""
    if key is None:
        return None
    try:
        return corrections.store.replayed(key)
    except KeyReused as exc:
        raise refused(exc) from exc


def _answer(response: Response, written: Written) -> CorrectionOut:
    """The answer, built from what was written: 202 while it waits for an editor, else 201."""
    response.status_code = 202 if written.correction.review else 201
    if written.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return correction_out(written.correction)


def _target(runtime: Runtime, body: FeedbackRequest) -> Target:
    """The film the correction changes. Raises Ambiguous when a title names several films and no year picks one,
    or a title alone names a reference film of another year."""
    title, year, names_film = body.title, body.year, False
    if title is None and detect_kind(body.text) == "title":
        query = parse_title(body.text)
        title, year, names_film = query.title, year or query.year, True
    if title is None:
        same_plot = runtime.lookup.reference.with_plot(body.text)
        return _of(same_plot, body.text) if same_plot else Target(plot_key(body.text), None, None, body.text)
    named = runtime.lookup.reference.named(title, year)
    if named.kind == "one":
        film = named.films[0]
        return _of(film, film.plot if names_film else body.text)
    if named.kind == "several":
        raise Ambiguous(f"{title!r} names {len(named.films)} films of the reference: send the year of the one meant",
                        list(named.films))
    films = runtime.lookup.reference.named(title).films
    if films and names_film:
        raise Ambiguous(f"the reference holds no {title!r} of {year}: send the year of the one meant", list(films))
    if names_film:  # a text that reads as a title but names no film: taken as the description it may be
        return Target(plot_key(body.text), None, None, body.text)
    return Target(film_key(title, year), title, year, body.text)  # a film the reference does not hold


def _of(film: Film, plot: str) -> Target:
    return Target(film_key(film.title, film.year), film.title, film.year, plot)


def _labels(runtime: Runtime, genres: list[str]) -> list[str]:
    """The index's own spelling of each label; 422 naming the labels it does not know."""
    vocabulary = runtime.classifier.vocabulary
    known = [vocabulary.canonical(g) for g in genres]
    unknown = [g for g, k in zip(genres, known) if k is None]
    if unknown:
        raise HTTPException(422, f"labels this index does not know: {', '.join(map(repr, unknown))}; "
                                 f"it knows {', '.join(vocabulary.names)}")
    return list(dict.fromkeys(known))


router.include_router(review_routes.router)
