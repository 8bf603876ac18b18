"""A pure ASGI middleware that refuses request bodies over a size before they are read whole."""
from __future__ import annotations

from service.api.errors import error_response


class _TooLarge(Exception):
    pass


class BodySizeLimit:
    """413 when Content-Length says the body is too large, or as soon as a streamed body passes the limit.
    Whatever response the app tries to make of a cut-off body is replaced by the 413. `uploads`: (method, path) →
    the limit of a route that takes a file (POST /jobs), in place of `max_bytes`."""

    def __init__(self, app, max_bytes: int, uploads: dict[tuple[str, str], int] | None = None):
        self.app = app
        self.max_bytes = max_bytes
        self.uploads = uploads or {}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.uploads.get((scope["method"], scope["path"]), self.max_bytes)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            return await self._refuse(scope, receive, send, limit)
        state = {"received": 0, "over": False, "answered": False}

        async def counting_receive():
            message = await receive()
            if message["type"] == "http.request":
                state["received"] += len(message.get("body", b""))
                if state["received"] > limit:
                    state["over"] = True
                    raise _TooLarge
            return message

        async def guarded_send(message):
            if not state["over"]:
                return await send(message)
            if message["type"] == "http.response.start" and not state["answered"]:
                state["answered"] = True
                await self._refuse(scope, receive, send, limit)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except _TooLarge:
            pass
        if state["over"] and not state["answered"]:
            await self._refuse(scope, receive, send, limit)

    async def _refuse(self, scope, receive, send, limit: int):
        response = error_response(413, f"request body is larger than {limit:,} bytes", close=True)
        await response(scope, receive, send)
