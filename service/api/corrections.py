"""What the /feedback routes share: the runtime's corrections, the bounds a write keeps (from the settings), how a
refused write is answered, and a correction as the API shows it."""
from __future__ import annotations

import ipaddress
import logging

from fastapi import HTTPException, Request
from starlette.concurrency import run_in_threadpool

from service.api.errors import Overloaded
from service.api.models import CorrectionOut
from service.api.keys import client_of
from service.api.state import Runtime
from service.corrections import Correction, Corrections, KeyReused, Limits, OverBound, QueueFull, ShareFull

log = logging.getLogger("moviegenre")

# The review queue counts an IPv6 client by its /48 (the rate limit counts by /64, one subscriber's network): a /48
# is what one site gets (and anyone gets for free from a tunnel broker), so counting finer lets one subscriber
# take 65,536 shares. Users of one /48 share one share of the queue, and only of the queue.
QUEUE_PREFIX_V6 = 48
REVIEW_RETRY_S = 3600  # the queue empties as editors review it: hours, not seconds


def corrections_of(runtime: Runtime) -> Corrections:
    if runtime.classifier.corrections is None:
        raise HTTPException(503, "corrections are off in this process")
    return runtime.classifier.corrections


def limits_of(request: Request, corrections: Corrections) -> Limits:
    settings = request.app.state.settings
    return Limits(through=corrections.through, max_films=settings.corrections.max_corrections,
                  max_pending=settings.corrections.max_pending_feedback, client_share=client_share(request))


def client_share(request: Request) -> int:
    """How many corrections one client may have waiting for review (MOVIEGENRE_PENDING_SHARE of the queue)."""
    settings = request.app.state.settings
    return max(1, int(settings.corrections.max_pending_feedback * settings.corrections.pending_share))


def review_client(request: Request, corrections: Corrections) -> str:
    """The page's client as the review queue counts it (ratelimit.client_of, an IPv6 address by its /48), as a
    pseudonym: the address itself is not stored."""
    who = client_of(request.scope, request.app.state.settings)
    kind, _, address = who.partition(":")
    if kind == "address" and "/" in address:
        who = f"address:{ipaddress.ip_network(address).supernet(new_prefix=QUEUE_PREFIX_V6)}"
    return corrections.store.pseudonym(who)


async def serve_written(request: Request, corrections: Corrections, correction: Correction) -> None:
    """A correction just written and served, embedded by every index part and put beside the index of this process
    (the others read it from the store at their next poll): the CPU work of a change, under a CPU slot. Stored is
    stored: when no slot comes in time it is served all the same, outside the slots (one short text), because a
    503 now would tell the client that nothing was stored; and when serving it here fails, this process's own poll
    serves it, as the others' do. A correction this process has read already (a retry's) costs nothing here."""
    try:
        try:
            await request.app.state.admission.run(corrections.serve, correction)
        except Overloaded:
            await run_in_threadpool(corrections.serve, correction)
    except Exception:  # noqa: BLE001 - stored is stored: the answer says so, the poll serves it
        log.exception("correction %d is stored; serving it here failed, the next poll serves it", correction.id)


def refused(exc: Exception) -> HTTPException:
    """A write its bounds or its Idempotency-Key refused (nothing was stored), as the answer that says why."""
    if isinstance(exc, OverBound):
        return HTTPException(507, f"{exc} (MOVIEGENRE_MAX_CORRECTIONS): run make build-index to fold them in")
    if isinstance(exc, ShareFull):
        return HTTPException(429, f"{exc} (MOVIEGENRE_PENDING_SHARE of MOVIEGENRE_MAX_PENDING_FEEDBACK): try again "
                                  "once an editor has reviewed them", headers={"Retry-After": str(REVIEW_RETRY_S)})
    if isinstance(exc, QueueFull):
        return HTTPException(503, f"{exc}: try again later", headers={"Retry-After": str(REVIEW_RETRY_S)})
    if isinstance(exc, KeyReused):
        return HTTPException(422, str(exc))
    raise TypeError(f"not a refusal: {exc!r}")


def correction_out(correction: Correction, superseded: bool = False) -> CorrectionOut:
    status = "superseded" if superseded and correction.status == "served" else correction.status
    return CorrectionOut(id=correction.id, text=correction.text, title=correction.title, year=correction.year,
                         genres=list(correction.genres), status=status, author=correction.author,
                         client=correction.client, created_at=correction.created_at,
                         approved_at=correction.approved_at, approved_by=correction.approved_by,
                         revoked_at=correction.revoked_at, revoked_by=correction.revoked_by)
