"""Dependencies the routes share: the current runtime and the API key check.

They are `async def` because none of them blocks: FastAPI runs a plain `def` dependency on its thread pool,
one thread hop per dependency per request, which cost more than the checks themselves."""
from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import HTTPException, Request

from service.api.keys import caller_of, editor_named, matches, may_classify, presented_key
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


def _unauthorised(what: str) -> HTTPException:
    return HTTPException(401, f"missing or wrong {what}: send it as X-API-Key or Authorization: Bearer",
                         headers={"WWW-Authenticate": "Bearer"})


def _check(request: Request, secret, what: str) -> None:
    if not matches(presented_key(request.headers), secret):
        raise _unauthorised(what)


async def require_api_key(request: Request) -> None:
    """With MOVIEGENRE_API_KEY set, /classify* need one of its keys (compared in constant time)."""
    settings = request.app.state.settings
    if not may_classify(caller_of(request.scope, settings), settings):
        raise _unauthorised("API key")


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
        raise _unauthorised("feedback token")
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
