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
    if not hmac.compare_digest(presented_key(request.headers).encode(), secret.get_secret_value().encode()):
        raise HTTPException(401, f"missing or wrong {what}: send it as X-API-Key or Authorization: Bearer",
                            headers={"WWW-Authenticate": "Bearer"})


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
