"""The editors' /feedback routes: list the corrections, approve one sent from the page, revoke (or reject) one,
reject many waiting for review at once, and see who fills the review queue."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from starlette.concurrency import run_in_threadpool

from service.api.corrections import (client_share, correction_out, corrections_of, limits_of, refused,
                                     serve_written)
from service.api.deps import current_runtime, only_query_params, require_editor
from service.api.errors import Overloaded
from service.api.models import CorrectionOut, CorrectionPage, QueueClient, RejectRequest, RejectResult, ReviewQueue
from service.api.state import Runtime
from service.corrections import OverBound, Written
from service.corrections.store import CLIENT_PATTERN

router = APIRouter(tags=["feedback"])
CORRECTION_ID = Path(ge=1, le=2**63 - 1)
QUEUE_CLIENTS = 50  # the clients /feedback/queue lists, the most waiting first
ANSWERS_LEFT_OUT = ("what the service answers each text today is left out while the service is at capacity: "
                    "reload the list once /classify is quieter")


@router.get("/feedback", response_model=CorrectionPage,
            dependencies=[Depends(only_query_params("offset", "limit", "status", "client", "q", "answers"))])
async def listing(request: Request, offset: int = Query(0, ge=0, le=2**62), limit: int = Query(50, ge=1, le=500),
                  status: str | None = Query(None, pattern="^(pending|served|revoked)$",
                                             description="only these: pending (waiting for an editor), served, "
                                                         "revoked"),
                  client: str | None = Query(None, pattern=CLIENT_PATTERN,
                                             description="only those sent from the page by this client"),
                  q: str | None = Query(None, min_length=1, max_length=300,
                                        description="only those whose title or text holds this (any case)"),
                  answers: bool = Query(False, description=(
                      "add what the service answers each one's text today (`answer`: the vote's genres, no LLM); "
                      "at most MOVIEGENRE_MAX_BATCH_ITEMS corrections a page")),
                  _: str = Depends(require_editor), runtime: Runtime = Depends(current_runtime)) -> CorrectionPage:
    """The corrections, the newest first, with who sent them, when, and whether they are served."""
    most = request.app.state.settings.service.max_batch_items
    if answers and limit > most:
        raise HTTPException(422, f"with answers=true a page is limited to {most} corrections (limit)")
    store = corrections_of(runtime).store
    page, total, superseded = await run_in_threadpool(_listed, store, offset, limit, status, client, q)
    out = [correction_out(c, c.id in superseded) for c in page]
    note = await _answer(request, runtime, out) if answers and page else None
    return CorrectionPage(corrections=out, total=total, offset=offset, limit=limit,
                          next_offset=offset + limit if offset + limit < total else None, note=note)


async def _answer(request: Request, runtime: Runtime, out: list[CorrectionOut]) -> str | None:
    """What the service answers each text today, classified under a CPU slot like /classify/batch; when no slot
    comes (a /classify flood), the page goes without them rather than turn the editor away: the note says so."""
    try:
        drafts = await request.app.state.admission.run(runtime.classifier.draft, [c.text for c in out])
    except Overloaded:
        return ANSWERS_LEFT_OUT
    for correction, draft in zip(out, drafts):
        correction.answer = draft.genres
    return None


def _listed(store, offset: int, limit: int, status: str | None, client: str | None, query: str | None):
    page, total = store.page(offset, limit, status, client, query)
    return page, total, store.superseded(page)


@router.post("/feedback/{correction_id:int}/approve", response_model=CorrectionOut,
             dependencies=[Depends(only_query_params())])
async def approve(request: Request, correction_id: int = CORRECTION_ID, author: str = Depends(require_editor),
                  runtime: Runtime = Depends(current_runtime)) -> CorrectionOut:
    """Approve a correction sent from the page: served from now on, by every replica and the next build (a
    revoked one cannot be approved; 507 when the side index is at its bound)."""
    # approved on the thread pool, then served under a CPU slot (serving it embeds it)
    written, superseded = await run_in_threadpool(_approved, request, correction_id, author, runtime)
    # approved by this request, or a retry's (its first may have approved it and failed before serving it here)
    await serve_written(request, runtime.classifier.corrections, written.correction)
    return correction_out(written.correction, superseded)


def _approved(request: Request, correction_id: int, author: str, runtime: Runtime) -> tuple[Written, bool]:
    """The correction approved (or approved before: `replayed`), and whether a later one of its film superseded it
    since."""
    corrections = corrections_of(runtime)
    try:
        written = corrections.store.approve(correction_id, author, limits_of(request, corrections))
    except OverBound as exc:
        raise refused(exc) from exc
    if written is None:
        raise HTTPException(404, f"no correction {correction_id}")
    if written.correction.status == "revoked":
        raise HTTPException(409, f"correction {correction_id} was revoked by {written.correction.revoked_by}: it "
                                 "cannot be approved")
    if not written.replayed:
        return written, False
    return written, written.correction.id in corrections.store.superseded([written.correction])


@router.delete("/feedback/{correction_id:int}", response_model=CorrectionOut)
def revoke(correction_id: int = CORRECTION_ID, author: str = Depends(require_editor),
           runtime: Runtime = Depends(current_runtime)) -> CorrectionOut:
    """Revoke (or, for one waiting for review, reject) a correction: it stops counting at once, and an earlier
    correction of the same film counts again (one folded into the index by a build counts until the next)."""
    corrections = corrections_of(runtime)
    revoked = corrections.store.revoke(correction_id, author)
    if revoked is None:
        raise HTTPException(404, f"no correction {correction_id}")
    corrections.withdraw({correction_id})
    return correction_out(revoked)


@router.post("/feedback/reject", response_model=RejectResult, dependencies=[Depends(only_query_params())])
def reject(body: RejectRequest, author: str = Depends(require_editor),
           runtime: Runtime = Depends(current_runtime)) -> RejectResult:
    """Reject at once every correction waiting for review that one client sent (`client`, as listed), or that
    has waited `older_than_hours` or longer (0: all), or both."""
    corrections = corrections_of(runtime)
    before = None
    if body.older_than_hours is not None:
        before = (datetime.now(UTC) - timedelta(hours=body.older_than_hours)).isoformat(timespec="seconds")
    ids = corrections.store.queue.reject(author, body.client, before)
    corrections.withdraw(set(ids))
    return RejectResult(rejected=len(ids), ids=ids)


@router.get("/feedback/queue", response_model=ReviewQueue, dependencies=[Depends(only_query_params())])
def queue(request: Request, _: str = Depends(require_editor),
          runtime: Runtime = Depends(current_runtime)) -> ReviewQueue:
    """The review queue: how many wait, its bounds, and the clients with the most waiting."""
    store = corrections_of(runtime).store
    clients = [QueueClient(client=client, waiting=waiting, oldest=oldest)
               for client, waiting, oldest in store.queue.clients(QUEUE_CLIENTS)]
    return ReviewQueue(waiting=store.queue.waiting(),
                       max_waiting=request.app.state.settings.corrections.max_pending_feedback,
                       client_share=client_share(request), clients=clients)
