"""The trailing-slash redirect, written from ``TILER_PUBLIC_URL`` or as a path, never Host."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter
from fastapi.responses import RedirectResponse
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send


class SlashRedirect:
    """The router's answer to an unmatched path: a redirect across a trailing slash, or 404.

    Starlette's own redirect (``redirect_slashes``) writes an absolute ``Location`` from the
    ``Host`` header, so ``Host: evil.example`` on ``/collections/demo/`` sent the client to
    ``https://evil.example/collections/demo``. This one writes ``TILER_PUBLIC_URL`` + path
    when it is set, else a path only (relative to the host the client asked), never a Host.

    Args:
        router: the app's router (its routes are matched against the other spelling).
        public_url: ``TILER_PUBLIC_URL``, or None.
        fallback: what answers a path that matches nowhere either way (the 404).
    """

    def __init__(self, router: APIRouter, public_url: str | None, fallback: ASGIApp) -> None:
        self.router = router
        self.public_url = public_url.rstrip("/") if public_url else None
        self.fallback = fallback

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Redirect (307) to the matching spelling of the path, else answer the fallback."""
        location = self.location(scope) if scope["type"] == "http" else None
        if location is None:
            await self.fallback(scope, receive, send)
            return
        await RedirectResponse(location, status_code=307)(scope, receive, send)

    def location(self, scope: Scope) -> str | None:
        """Where the request's path with or without its trailing slash is served, or None."""
        path: str = scope["path"]
        root: str = scope.get("root_path", "")
        if root and path.startswith(root + "/"):  # the root path was not stripped by a proxy
            path = path[len(root) :]
        if path in ("", "/"):
            return None
        other = path.rstrip("/") if path.endswith("/") else path + "/"
        if not other or not any(
            route.matches({**scope, "path": other, "root_path": ""})[0] is not Match.NONE
            for route in self.router.routes
        ):
            return None
        where = quote(other, safe="/:@!$&'()*+,;=%")
        base = self.public_url if self.public_url is not None else root
        location = f"{base}{where}"
        if location.startswith("//"):  # never a scheme-relative URL to another host
            return None
        query = scope.get("query_string", b"").decode("latin-1")
        return f"{location}?{query}" if query else location
