"""Dependencies the routes share: the current runtime and the API key check.

They are `async def` because none of them blocks: FastAPI runs a plain `def` dependency on its thread pool,
one thread hop per dependency per request, which cost more than the checks themselves."""
from __future__ import annotations

import hmac
from collections.abc import AsyncIterator

from fastapi import HTTPException, Request

from service.api.admission import presented_key
from service.api.state import Runtime, serving_runtime


async def current_runtime(request: Request) -> AsyncIterator[Runtime]:
    """The runtime serving now, held until the request is done (a reload closes it only after)."""
    with serving_runtime(request.app.state) as runtime:
        if runtime is None:
            raise HTTPException(503, request.app.state.unavailable or "the classifier is not loaded yet")
        yield runtime


def check_lengths(request: Request, texts: list[str]) -> None:
    limit = request.app.state.settings.max_description_chars
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
    if not hmac.compare_digest(presented_key(request.headers).encode(), secret.get_secret_value().encode()):
        raise _unauthorised(what)


async def require_api_key(request: Request) -> None:
    """With MOVIEGENRE_API_KEY set, /classify* need it (compared in constant time)."""
    secret = request.app.state.settings.api_key
    if secret is not None:
        _check(request, secret, "API key")


async def require_admin(request: Request) -> None:
    """Closed unless MOVIEGENRE_ADMIN_TOKEN is set to a value (an empty one is no token)."""
    secret = request.app.state.settings.admin_token
    if secret is None:
        raise HTTPException(403, "reload is disabled: set MOVIEGENRE_ADMIN_TOKEN to enable it")
    _check(request, secret, "admin token")


def _editor_named(request: Request) -> str | None:
    """The name of the editor token presented (every token compared, in constant time); None for none."""
    presented = presented_key(request.headers).encode()
    found = None
    for token, name in request.app.state.settings.editors().items():
        if hmac.compare_digest(presented, token.encode()):
            found = name
    return found


async def require_editor(request: Request) -> str:
    """GET and DELETE /feedback: an editor token (MOVIEGENRE_FEEDBACK_TOKEN); closed when none is set."""
    if not request.app.state.settings.editors():
        raise HTTPException(403, "editor feedback is off: set MOVIEGENRE_FEEDBACK_TOKEN to enable it")
    name = _editor_named(request)
    if name is None:
        raise _unauthorised("feedback token")
    return name


async def editor_or_page(request: Request) -> str:
    """POST /feedback: an editor token, or nothing at all when the page may send corrections
    (MOVIEGENRE_FEEDBACK_PAGE): then the correction is the page's. A wrong token is refused either way."""
    settings = request.app.state.settings
    if settings.feedback_page and not presented_key(request.headers):
        return "page"
    return await require_editor(request)
