"""/feedback: editors correct an answer once, and the service answers with the correction from then on.

POST stores a correction (on disk before the 201) and serves it at once beside the index; one sent from the page
without a token waits for an editor (202) until POST /feedback/{id}/approve. GET lists them; DELETE revokes one.

Which film a correction changes is decided here, once, and stored with it (`film`), so serving and the next
build agree: a title names a reference film (with its year when the title has several: 409 lists them), a
description identical to a reference film's plot names that film, and any other description is a film of its
own. A newer correction of the same film supersedes the older one."""
from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from fastapi.responses import JSONResponse

from service.api.deps import check_lengths, current_runtime, editor_or_page, only_query_params, require_editor
from service.api.models import AmbiguousFilm, CorrectionOut, CorrectionPage, ErrorResponse, FeedbackRequest
from service.api.state import Runtime
from service.corpus import Film, plot_key
from service.films import film_key
from service.corrections import Correction, Corrections
from service.lookup.kinds import detect_kind, parse_title

router = APIRouter(tags=["feedback"], responses={code: {"model": ErrorResponse}
                                                 for code in (400, 401, 403, 404, 413, 422, 429, 503, 507)})
CORRECTION_ID = Path(ge=1, le=2**63 - 1)


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
def add(request: Request, response: Response, body: FeedbackRequest, author: str = Depends(editor_or_page),
        runtime: Runtime = Depends(current_runtime)):
    """Store a correction: the genres the film should have had. 201 once it is on disk and served; 202 when it
    was sent from the page and waits for an editor's approval."""
    check_lengths(request, [body.text])
    corrections = _corrections(runtime)
    genres = _labels(runtime, body.genres)
    review = author == "page"
    if review:
        _review_queue_has_room(request, corrections)
    try:
        target = _target(runtime, body)
    except Ambiguous as exc:
        candidates = [{"title": f.title, "year": f.year} for f in sorted(exc.films, key=lambda f: f.year or 0)]
        return JSONResponse({"error": str(exc), "candidates": candidates}, status_code=409)
    if not review and len(corrections) >= request.app.state.settings.max_corrections:
        raise HTTPException(507, f"{len(corrections)} corrections are served beside the index, its bound "
                                 "(MOVIEGENRE_MAX_CORRECTIONS): run make build-index to fold them in")
    stored = corrections.add(body.text, target.plot, genres, target.title, target.year, author, target.film, review)
    if review:
        response.status_code = 202
    return _out(stored, corrections)


@router.get("/feedback", response_model=CorrectionPage,
            dependencies=[Depends(only_query_params("offset", "limit", "status"))])
def listing(offset: int = Query(0, ge=0, le=2**62), limit: int = Query(50, ge=1, le=500),
            status: str | None = Query(None, pattern="^(pending|served|revoked)$",
                                       description="only these: pending (waiting for an editor), served, revoked"),
            _: str = Depends(require_editor), runtime: Runtime = Depends(current_runtime)) -> CorrectionPage:
    """The corrections, the newest first, with who sent them, when, and whether they are served."""
    corrections = _corrections(runtime)
    page, total = corrections.store.page(offset, limit, status)
    return CorrectionPage(corrections=[_out(c, corrections) for c in page], total=total, offset=offset, limit=limit,
                          next_offset=offset + limit if offset + limit < total else None)


@router.post("/feedback/{correction_id}/approve", response_model=CorrectionOut,
             dependencies=[Depends(only_query_params())])
def approve(correction_id: int = CORRECTION_ID, author: str = Depends(require_editor),
            runtime: Runtime = Depends(current_runtime)) -> CorrectionOut:
    """Approve a correction sent from the page: it is served from now on (a revoked one cannot be approved)."""
    corrections = _corrections(runtime)
    approved = corrections.approve(correction_id, author)
    if approved is None:
        raise HTTPException(404, f"no correction {correction_id}")
    if approved.status == "revoked":
        raise HTTPException(409, f"correction {correction_id} was revoked by {approved.revoked_by}: it cannot be "
                                 "approved")
    return _out(approved, corrections)


@router.delete("/feedback/{correction_id}", response_model=CorrectionOut)
def revoke(correction_id: int = CORRECTION_ID, author: str = Depends(require_editor),
           runtime: Runtime = Depends(current_runtime)) -> CorrectionOut:
    """Revoke (or, for one waiting for review, reject) a correction: it stops counting at once, and an earlier
    correction of the same film counts again (one folded into the index by a build counts until the next)."""
    corrections = _corrections(runtime)
    revoked = corrections.revoke(correction_id, author)
    if revoked is None:
        raise HTTPException(404, f"no correction {correction_id}")
    return _out(revoked, corrections)


def _target(runtime: Runtime, body: FeedbackRequest) -> Target:
    """The film the correction changes. Raises Ambiguous when a title names several films and no year picks one,
    or a title alone names a reference film of another year."""
    title, year, names_film = body.title, body.year, False
    if title is None and detect_kind(body.text) == "title":
        query = parse_title(body.text)
        title, year, names_film = query.title, year or query.year, True
    if title is None:
        same_plot = runtime.lookup.film_with_plot(body.text)
        return _of(same_plot, body.text) if same_plot else Target(plot_key(body.text), None, None, body.text)
    films = runtime.lookup.films_titled(title)
    fitting = ([f for f in films if f.year == year] or [f for f in films if f.year is None]) if year else films
    if len(fitting) == 1:
        return _of(fitting[0], fitting[0].plot if names_film else body.text)
    if len(fitting) > 1:
        raise Ambiguous(f"{title!r} names {len(fitting)} films of the reference: send the year of the one meant",
                        fitting)
    if films and names_film:
        raise Ambiguous(f"the reference holds no {title!r} of {year}: send the year of the one meant", films)
    if names_film:  # a text that reads as a title but names no film: taken as the description it may be
        return Target(plot_key(body.text), None, None, body.text)
    return Target(film_key(title, year), title, year, body.text)  # a film the reference does not hold


def _of(film: Film, plot: str) -> Target:
    return Target(film_key(film.title, film.year), film.title, film.year, plot)


def _review_queue_has_room(request: Request, corrections: Corrections) -> None:
    waiting = corrections.store.count("pending")
    if waiting >= request.app.state.settings.max_pending_feedback:
        raise HTTPException(503, f"{waiting} corrections are waiting for an editor's review, the most kept: try "
                                 "again later", headers={"Retry-After": "3600"})


def _corrections(runtime: Runtime) -> Corrections:
    if runtime.classifier.corrections is None:
        raise HTTPException(503, "corrections are off: the corrections store beside the index could not be opened "
                                 "(a read-only index folder?); see the log")
    return runtime.classifier.corrections


def _labels(runtime: Runtime, genres: list[str]) -> list[str]:
    """The index's own spelling of each label; 422 naming the labels it does not know."""
    vocabulary = runtime.classifier.vocabulary
    known = [vocabulary.canonical(g) for g in genres]
    unknown = [g for g, k in zip(genres, known) if k is None]
    if unknown:
        raise HTTPException(422, f"labels this index does not know: {', '.join(map(repr, unknown))}; "
                                 f"it knows {', '.join(vocabulary.names)}")
    return list(dict.fromkeys(known))


def _out(correction: Correction, corrections: Corrections) -> CorrectionOut:
    status = correction.status
    if status == "served" and corrections.store.newest_served(correction.film) != correction.id:
        status = "superseded"
    return CorrectionOut(id=correction.id, text=correction.text, title=correction.title, year=correction.year,
                         genres=list(correction.genres), status=status, author=correction.author,
                         created_at=correction.created_at, approved_at=correction.approved_at,
                         approved_by=correction.approved_by, revoked_at=correction.revoked_at,
                         revoked_by=correction.revoked_by)
