"""Issue 22 on a live ``tiler serve``: what uvicorn answers before the app (a request its parser
cannot read) is the API's JSON, and a stopping server with workers refuses new connections
instead of accepting and then resetting them."""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.net import tiler_serve

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def _exchange(port: int, request: bytes) -> bytes:
    """Send raw bytes, read until the server closes (or 10 s pass)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        # the server may answer and close before it has read everything
        with contextlib.suppress(OSError):
            sock.sendall(request)
        data = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except OSError:
                break
            if not chunk:
                break
            data += chunk
    return data


@pytest.fixture(scope="module")
def server(demo_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    log = tmp_path_factory.mktemp("served") / "server.log"
    with tiler_serve(str(demo_path), log=log, cwd=ROOT) as served:
        yield served.port


@pytest.mark.parametrize(
    "request_bytes",
    [
        pytest.param(
            b"GET /collections/demo/items?ids=" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
            id="request_line_over_the_limit",
        ),
        pytest.param(b"NONSENSE\x00\x01 / HTTP/9.9\r\n\r\n", id="not_http"),
    ],
)
def test_a_request_the_parser_refuses_gets_the_apps_json_400(
    server: int, request_bytes: bytes
) -> None:
    raw = _exchange(server, request_bytes)
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 "), raw[:300]
    assert b"content-type: application/json" in head.lower()
    assert "64 KB" in json.loads(body)["detail"]


def test_a_long_request_within_the_limit_reaches_the_app(server: int) -> None:
    raw = _exchange(
        server,
        b"GET /collections/demo/items?limit=1&ids=" + b"a" * 30_000 + b" HTTP/1.1\r\n"
        b"Host: x\r\nConnection: close\r\n\r\n",
    )
    assert raw.startswith(b"HTTP/1.1 200 "), raw[:300]


def _connect_outcome(port: int) -> str:
    """'refused', or 'connected' (the kernel accepted it; a worker may never serve it)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return "connected"
    except ConnectionRefusedError:
        return "refused"


def test_a_stopping_server_with_workers_refuses_new_connections(
    demo_path: Path, tmp_path: Path
) -> None:
    with tiler_serve(
        str(demo_path), "--workers", "2", log=tmp_path / "server.log", cwd=ROOT
    ) as served:
        proc, port = served.proc, served.port
        # a request in flight that the test holds open: its body comes later
        held = socket.create_connection(("127.0.0.1", port), timeout=30)
        body = b'{"type": "Feature", "geometry": null, "properties": {}}'
        held.sendall(
            b"POST /collections/demo/feature HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body[:5]
        )
        time.sleep(0.5)  # the worker has read the head: the request is in flight
        proc.send_signal(signal.SIGTERM)
        outcomes = [_connect_outcome(port)]
        while outcomes[-1] != "refused" and len(outcomes) < 100:  # workers drain meanwhile
            time.sleep(0.1)
            outcomes.append(_connect_outcome(port))
        assert proc.poll() is None, "the server exited before its request in flight ended"
        assert outcomes[-1] == "refused", outcomes  # not accepted, then reset at exit
        held.sendall(body[5:])  # the request in flight still completes
        answer = held.recv(65536)
        held.close()
        assert answer.startswith(b"HTTP/1.1 4"), answer[:300]  # a null geometry: refused
        proc.wait(timeout=30)
