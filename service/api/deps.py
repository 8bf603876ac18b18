"""Dependencies the routes share: the current runtime, the editors' and the admin's token checks, and what a
batch costs of its consumer's allowance. (The API key of /classify is checked before, in api/admission.py.)

They are `async def` because none of them blocks: FastAPI runs a plain `def` dependency on its thread pool,
one thread hop per dependency per request, which cost more than the checks themselves."""
from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import HTTPException, Request
from fastapi.responses import JSONResponse

from service.api.errors import unauthorised
from service.api.keys import editor_named, matches, presented_key
from service.api.state import Runtime, serving_runtime


async def current_runtime(request: Request) -> AsyncIterator[Runtime]:
    """The runtime serving now, held until the request is done (a reload closes it only after)."""
    with serving_runtime(request.app.state) as runtime:
        if runtime is None:
            raise HTTPException(503, request.app.state.unavailable or "the classifier is not loaded yet")
        yield runtime


def check_lengths(request: Request, texts: list[str]) -> None:
    limit = request.app.state.settings.service.max_description_chars
    for text in texts:
        if len(text) > limit:
            raise HTTPException(422, f"a description is limited to {limit} characters (got {len(text)})")


def only_query_params(*names: str):
    """A dependency refusing query parameters the route does not know (a typo like ?explian=true)."""
    allowed = set(names)

    async def check(request: Request) -> None:
        unknown = sorted(set(request.query_params) - allowed)
        if unknown:
            raise HTTPException(422, f"unknown query parameter(s): {', '.join(unknown)}; "
                                     f"this route takes {', '.join(sorted(allowed)) or 'none'}")

    return check


def _check(request: Request, secret, what: str) -> None:
    if not matches(presented_key(request.headers), secret):
        raise unauthorised(what)


async def charged_for_batch(request: Request, size: int) -> JSONResponse | None:
    """A batch of `size` descriptions costs `size` of its consumer's allowance: the admission charged one before its
    body was read, this charges the rest. The 429 to answer with, or None. A batch larger than the whole allowance
    could never pass: 422 saying so."""
    admission = request.app.state.admission
    if admission.rate_limit is None or size <= 1:
        return None
    rate = admission.rate_limit.rate
    if size > rate.amount:
        raise HTTPException(422, f"a batch of {size} descriptions costs {size} requests of the rate limit of {rate}: "
                                 f"send at most {rate.amount} at a time")
    return await admission.rate_limited(request.scope, cost=size - 1)


async def require_admin(request: Request) -> None:
    """Closed unless MOVIEGENRE_ADMIN_TOKEN is set to a value (an empty one is no token)."""
    secret = request.app.state.settings.service.admin_token
    if secret is None:
        raise HTTPException(403, "reload is disabled: set MOVIEGENRE_ADMIN_TOKEN to enable it")
    _check(request, secret, "admin token")


async def require_editor(request: Request) -> str:
    """GET and DELETE /feedback: an editor token (MOVIEGENRE_FEEDBACK_TOKEN); closed when none is set."""
    if not request.app.state.settings.corrections.editors():
        raise HTTPException(403, "editor feedback is off: set MOVIEGENRE_FEEDBACK_TOKEN to enable it")
    name = editor_named(presented_key(request.headers), request.app.state.settings)
    if name is None:
        raise unauthorised("feedback token")
    return name


async def editor_or_page(request: Request) -> str:
    """POST /feedback: an editor token, or nothing at all when the page may send corrections
    (MOVIEGENRE_FEEDBACK_PAGE): then the correction is the page's, within its client's allowance
    (MOVIEGENRE_FEEDBACK_PAGE_RATE_LIMIT). A wrong token is refused either way."""
    settings = request.app.state.settings
    if settings.corrections.feedback_page and not presented_key(request.headers):
        limit = request.app.state.page_feedback_limit
        verdict = await limit.check(request.scope)
        if verdict.retry_after is not None:
            raise HTTPException(429, f"corrections from the page are limited to {limit.rate} a client: try again in "
                                     f"{verdict.retry_after} s", headers={"Retry-After": str(verdict.retry_after)})
        return "page"
    return await require_editor(request)
