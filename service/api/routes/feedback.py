"""/feedback: editors correct an answer once, and the service answers with the correction from then on.

POST stores a correction (on disk before the 201) and serves it at once beside the index; GET lists them; DELETE
revokes one. A text that is a title the reference knows corrects that film: its own description is what gets
embedded, so any description of it finds the correction."""
from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request

from service.api.deps import check_lengths, current_runtime, editor_or_page, only_query_params, require_editor
from service.api.models import CorrectionOut, CorrectionPage, ErrorResponse, FeedbackRequest
from service.api.state import Runtime
from service.corrections import Correction, Corrections
from service.lookup.kinds import detect_kind

router = APIRouter(tags=["feedback"],
                   responses={code: {"model": ErrorResponse} for code in (400, 401, 403, 404, 413, 422, 429, 503)})


@router.post("/feedback", status_code=201, response_model=CorrectionOut,
             dependencies=[Depends(only_query_params())])
def add(request: Request, body: FeedbackRequest, author: str = Depends(editor_or_page),
        runtime: Runtime = Depends(current_runtime)) -> CorrectionOut:
    """Store a correction: the genres the text should have had. Answered 201 once it is on disk."""
    check_lengths(request, [body.text])
    corrections = _corrections(runtime)
    genres = _labels(runtime, body.genres)
    title, year, plot = body.title, body.year, body.text
    named = runtime.lookup.reference_film(body.text) if detect_kind(body.text) == "title" else None
    if named is not None and title is None:
        title, year, plot = named.title, year or named.year, named.plot
    return _out(corrections.add(body.text, plot, genres, title, year, author))


@router.get("/feedback", response_model=CorrectionPage, dependencies=[Depends(only_query_params("offset", "limit"))])
def listing(offset: int = Query(0, ge=0, le=2**62), limit: int = Query(50, ge=1, le=500),
            _: str = Depends(require_editor), runtime: Runtime = Depends(current_runtime)) -> CorrectionPage:
    """The corrections, the newest first, with who sent them and when (revoked ones too, marked)."""
    page, total = _corrections(runtime).store.page(offset, limit)
    return CorrectionPage(corrections=[_out(c) for c in page], total=total, offset=offset, limit=limit,
                          next_offset=offset + limit if offset + limit < total else None)


@router.delete("/feedback/{correction_id}", response_model=CorrectionOut)
def revoke(correction_id: int = Path(ge=1, le=2**63 - 1), author: str = Depends(require_editor),
           runtime: Runtime = Depends(current_runtime)) -> CorrectionOut:
    """Revoke a correction: it stops counting at once (one folded into the index by a build counts until the
    next build)."""
    revoked = _corrections(runtime).revoke(correction_id, author)
    if revoked is None:
        raise HTTPException(404, f"no correction {correction_id}")
    return _out(revoked)


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


def _out(correction: Correction) -> CorrectionOut:
    return CorrectionOut(id=correction.id, text=correction.text, title=correction.title, year=correction.year,
                         genres=list(correction.genres), author=correction.author, created_at=correction.created_at,
                         revoked_at=correction.revoked_at, revoked_by=correction.revoked_by)
