"""Every error is JSON with an `error` message; never a traceback. `error_response` is the one place an error
body is shaped: the exception handlers, the admission's refusals (503, 429, 408) and the body limit (413) all
answer through it."""
from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.routing import Match

from service.corrections import CommitUnknown, StoreUnavailable

log = logging.getLogger("moviegenre")


class Overloaded(Exception):
    """No CPU slot could be expected, or none came, in time (admission.py): 503 with Retry-After."""
    reason = "overloaded"  # the refusal's label in the metrics
    message = "the service is at capacity: try again shortly"


class LookupsBusy(Overloaded):
    """Too many lookups wait on IMDb and TMDb already (their own lane, admission.py): 503 with Retry-After."""
    reason = "lookups_busy"
    message = "too many lookups are waiting on IMDb and TMDb: try again shortly"


def unauthorised(what: str) -> HTTPException:
    """The 401 of a request without the key or token its route needs."""
    return HTTPException(401, f"missing or wrong {what}: send it as X-API-Key or Authorization: Bearer",
                         headers={"WWW-Authenticate": "Bearer"})


def error_response(status: int, message: str, *, retry_after: int | None = None, close: bool = False,
                   headers: dict[str, str] | None = None, **extra) -> JSONResponse:
    """`{"error": message, **extra}` with `status`; Retry-After and Connection: close when asked for."""
    headers = dict(headers or {})
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    if close:
        headers["Connection"] = "close"
    return JSONResponse({"error": message} | extra, status_code=status, headers=headers or None)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
                  for e in exc.errors()]
        if any(e["type"] == "json_invalid" for e in errors):
            return error_response(400, "the body is not valid JSON", detail=errors)
        summary = "; ".join(f"{'.'.join(map(str, e['loc'][1:])) or e['loc'][0]}: {e['msg']}" for e in errors)
        return error_response(422, summary, detail=errors)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        headers = exc.headers
        if exc.status_code == 405:  # Starlette names the methods of the first route of the path only
            headers = (headers or {}) | {"Allow": ", ".join(_methods_of(request.app, request.url.path))}
        return error_response(exc.status_code, str(exc.detail), headers=headers)

    @app.exception_handler(StoreUnavailable)
    async def store_unavailable(request: Request, exc: StoreUnavailable) -> JSONResponse:
        log.warning("%s %s: %s", request.method, request.url.path, exc)
        if isinstance(exc, CommitUnknown):  # the change may be stored: a retry must be recognised as one
            return error_response(503, f"{exc}: send it again with the same Idempotency-Key, which stores it once",
                                  retry_after=5)
        return error_response(503, f"{exc}: nothing was stored or changed; try again", retry_after=5)

    @app.exception_handler(Overloaded)
    async def overloaded(request: Request, exc: Overloaded) -> JSONResponse:
        return await request.app.state.admission.overloaded(request.scope, exc)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return error_response(500, "internal error")


def _methods_of(app: FastAPI, path: str) -> list[str]:
    """Every method some route of the app answers on this path."""
    scope = {"type": "http", "path": path, "method": "GET"}
    methods = set()
    for route in app.routes:
        match, _ = route.matches(scope)
        if match != Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    return sorted(methods)
