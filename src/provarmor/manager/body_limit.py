"""A limit on the size of every request body, enforced while the body is read.

:class:`BodyLimit` wraps the whole ASGI application. A request whose ``Content-Length``
declares more than its route's limit is answered 413 before the application sees it (no
route, no authentication, no body read). A body that arrives in chunks (``Transfer-Encoding:
chunked``, or a ``Content-Length`` that lies) is counted as the application reads it; the
read that passes the limit raises :class:`BodyTooLarge` (answered 413 by the application's
handler, or here when it escapes), so no route ever holds more than the limit in memory and
the server stops reading from the socket. Decompressing is the business of the one route that
accepts ``Content-Encoding: gzip`` (the batch upload), which bounds the output the same way.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from fastapi import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTooLarge(HTTPException):
    """A request body over its route's limit (413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(status_code=413, detail=f"request body over {limit} bytes")
        self.limit = limit


def too_large_response(limit: int) -> JSONResponse:
    """The 413 answer; the connection is closed because the rest of the body is not read."""
    return JSONResponse(
        {"error": f"request body over {limit} bytes", "field": "body"},
        status_code=413,
        headers={"Connection": "close"},
    )


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() and len(text) < 20 else None
    return None


class BodyLimit:
    """ASGI middleware: ``default`` bytes for every request body, or the limit of the first
    ``(path pattern, limit)`` in ``routes`` whose pattern matches the whole path."""

    def __init__(
        self, app: ASGIApp, *, default: int, routes: Sequence[tuple[str, int]] = ()
    ) -> None:
        self.app = app
        self.default = default
        self.routes = [(re.compile(pattern), limit) for pattern, limit in routes]

    def limit_for(self, path: str) -> int:
        for pattern, limit in self.routes:
            if pattern.fullmatch(path):
                return limit
        return self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = _declared_length(scope)
        if declared is not None and declared > limit:
            await too_large_response(limit)(scope, receive, send)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracked_send)
        except BodyTooLarge:
            if started:
                raise
            await too_large_response(limit)(scope, receive, send)
