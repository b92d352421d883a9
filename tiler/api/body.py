"""A bound on request bodies (POST ``/feature``): larger ones are refused before parsing."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tiler.api.admission import send_json


class BodyLimit:
    """Pure ASGI middleware: a request body over ``limit`` bytes answers 413 at once.

    A ``Content-Length`` over the limit is refused before a byte of the body is read; a
    body without one (chunked) is read up to the limit, and refused as soon as it passes
    it. Nothing of a refused body reaches the routes (no JSON or GeoJSON parsing); a body
    within the limit is handed on unchanged.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection scope."""
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.limit:
            await self._refuse(send, length.decode("latin-1")[:20] + " bytes")
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self._refuse(send, f"more than {size} bytes")
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: the disconnect, when it comes

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send, size: str) -> None:
        await send_json(
            send,
            413,
            f"request body of {size} exceeds the limit of {self.limit} bytes "
            "(TILER_MAX_BODY_BYTES); simplify the geometry",
            {"Connection": "close"},
        )
