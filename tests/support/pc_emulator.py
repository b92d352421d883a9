"""A Planetary Computer emulator on loopback: a SAS token API and a blob server that checks them.

``TokenApi`` answers ``GET /api/sas/v1/token/{account}/{container}`` as the Planetary
Computer does (``{"msft:expiry": "...Z", "token": "st=...&se=...&sp=rl&sv=...&sr=c&sig=..."}``),
minting a token per container that lives ``ttl`` seconds; it can require a subscription key
(``Ocp-Apim-Subscription-Key``) and revoke tokens. ``BlobServer`` is a range-capable HTTP
server laid out as Azurite is (``/{account}/{container}/{blob}``, so the tiler reaches it with
``TILER_AZURE_BLOB_ENDPOINT=http://127.0.0.1:PORT/{account}``) that answers 403
``AuthenticationFailed`` to any request without a token of its container that the API issued,
that has not expired and was not revoked. Hrefs stay the real ``https://{account}.blob.core
.windows.net/...`` ones: only the endpoint setting sends the reads here.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from support.net import LoopbackServer, http_server
from support.remote_servers import RangeServer

PREFIX = "/api/sas/v1/token/"


@dataclass
class Token:
    """One issued token."""

    account: str
    container: str
    text: str
    expiry: float
    revoked: bool = False


class TokenApi(LoopbackServer):
    """The SAS token API: one token per account/container, ``ttl`` seconds long.

    Attributes:
        ttl: seconds a new token lives.
        key: the subscription key required (None: anonymous access, as PC allows).
        requests: token requests answered, per ``account/container``.
        keys_seen: subscription keys received.
        tokens: every token issued.
        reissue: whether a revoked token is replaced at the next request (else the API keeps
            answering it: access to the container is withdrawn).
    """

    def __init__(self, ttl: float = 2700.0, key: str | None = None) -> None:
        self.ttl = ttl
        self.key = key
        self.requests: Counter[str] = Counter()
        self.keys_seen: list[str | None] = []
        self.tokens: list[Token] = []
        self.reissue = True
        self._current: dict[tuple[str, str], Token] = {}
        self._lock = threading.Lock()
        self._server = http_server(self._handler())
        self.port = self._server.server_port
        self.url = f"http://127.0.0.1:{self.port}{PREFIX.rstrip('/')}"

    def issue(self, account: str, container: str) -> Token:
        """The current token of a container (a new one if none is valid)."""
        now = time.time()
        with self._lock:
            token = self._current.get((account, container))
            if token is None or token.expiry <= now or (token.revoked and self.reissue):
                start = dt.datetime.fromtimestamp(now - 60, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                end = dt.datetime.fromtimestamp(now + self.ttl, dt.UTC)
                text = (
                    f"st={start}&se={end.strftime('%Y-%m-%dT%H:%M:%SZ')}&sp=rl&sv=2021-06-08"
                    f"&sr=c&skoid={secrets.token_hex(8)}&sig={secrets.token_urlsafe(32)}"
                )
                token = Token(account, container, text, now + self.ttl)
                self._current[(account, container)] = token
                self.tokens.append(token)
            return token

    def valid(self, account: str, container: str, query: str) -> bool:
        """Whether ``query`` is an issued, unexpired, unrevoked token of the container."""
        now = time.time()
        with self._lock:
            return any(
                t.text == query
                and t.account == account
                and t.container == container
                and not t.revoked
                and t.expiry > now
                for t in self.tokens
            )

    def revoke(self, reissue: bool = True) -> None:
        """Revoke every token issued; ``reissue``: new ones are issued (else refused)."""
        with self._lock:
            for token in self.tokens:
                token.revoked = True
            self.reissue = reissue

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _json(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802
                path = urlsplit(self.path).path
                parts = path.removeprefix(PREFIX).split("/")
                if not path.startswith(PREFIX) or len(parts) != 2 or not all(parts):
                    self._json(404, {"detail": "Not found"})
                    return
                key = self.headers.get("Ocp-Apim-Subscription-Key")
                outer.keys_seen.append(key)
                if outer.key is not None and key != outer.key:
                    self._json(401, {"detail": "Access denied due to invalid subscription key"})
                    return
                outer.requests["/".join(parts)] += 1
                token = outer.issue(parts[0], parts[1])
                expiry = dt.datetime.fromtimestamp(token.expiry, dt.UTC)
                self._json(
                    200,
                    {
                        "msft:expiry": expiry.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                        "token": token.text,
                    },
                )

        return Handler


class BlobServer(RangeServer):
    """Blob storage emulator: ``root/{account}/{container}/{blob}``, reads need a valid token.

    Attributes:
        denied: requests answered 403 (no, a wrong, an expired or a revoked token).
        queries: every query string received (the tokens GDAL sent).
    """

    def __init__(self, root: Path, api: TokenApi) -> None:
        super().__init__(root)
        self.api = api
        self.denied = 0
        self.queries: list[str] = []

    @property
    def endpoint(self) -> str:
        """The ``TILER_AZURE_BLOB_ENDPOINT`` that reaches this server."""
        return f"{self.url}/{{account}}"

    def fault(self, path: str) -> str | None:
        """403 unless the query is a valid token of the path's account and container."""
        split = urlsplit(path)
        parts = split.path.lstrip("/").split("/")
        with self._lock:
            self.queries.append(split.query)
        if len(parts) < 3 or not self.api.valid(parts[0], parts[1], split.query):
            with self._lock:
                self.denied += 1
            return "403"
        return super().fault(path)


def sas_fields(query: str) -> dict[str, list[str]]:
    """The parameters of a SAS token (to check its shape)."""
    return parse_qs(query)
