"""Real protocol peers for remote COGs: a range-capable HTTP server with latency, and S3.

``RangeServer`` serves a folder over HTTP/1.1 on loopback with ``Range`` requests (one range
per request, as COG readers ask), ``HEAD``, and an injected delay before each answer; it
counts requests and bytes. ``s3_server`` runs moto's S3 server on loopback. Both stand for
the object stores real collections live in; GDAL talks to them through /vsicurl/ and /vsis3/.
"""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

_RANGE = re.compile(r"bytes=(\d+)-(\d*)$")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RangeServer:
    """Serve ``root`` on 127.0.0.1 with ``Range`` support and ``latency`` seconds per answer."""

    def __init__(self, root: Path, latency: float = 0.0) -> None:
        self.root = Path(root)
        self.latency = latency
        self.requests = 0
        self.bytes = 0
        self._lock = threading.Lock()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self._server.daemon_threads = True

    def _count(self, sent: int) -> None:
        with self._lock:
            self.requests += 1
            self.bytes += sent

    def _handler(self) -> type[SimpleHTTPRequestHandler]:
        outer = self

        class Handler(SimpleHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, directory=str(outer.root), **kwargs)

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _file(self) -> Path | None:
                path = Path(self.translate_path(self.path))
                return path if path.is_file() else None

            def _answer(self, body: bool) -> None:
                if outer.latency:
                    time.sleep(outer.latency)
                path = self._file()
                if path is None:
                    self.send_error(404)
                    outer._count(0)
                    return
                size = path.stat().st_size
                match = _RANGE.match(self.headers.get("Range", ""))
                start, end = 0, size - 1
                if match:
                    start = int(match[1])
                    end = min(size - 1, int(match[2])) if match[2] else size - 1
                    if start >= size:
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{size}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        outer._count(0)
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
                else:
                    self.send_response(200)
                length = end - start + 1
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("Content-Type", "image/tiff")
                self.send_header("Content-Length", str(length))
                self.end_headers()
                sent = 0
                if body:
                    with path.open("rb") as f:
                        f.seek(start)
                        data = f.read(length)
                    self.wfile.write(data)
                    sent = len(data)
                outer._count(sent)

            def do_GET(self) -> None:  # noqa: N802
                self._answer(body=True)

            def do_HEAD(self) -> None:  # noqa: N802
                self._answer(body=False)

        return Handler

    def __enter__(self) -> RangeServer:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@contextmanager
def s3_server(files: dict[str, Path], bucket: str = "cogs") -> Iterator[dict[str, str]]:
    """moto's S3 on loopback holding ``files`` (key -> path); yields GDAL's settings for it."""
    import boto3
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_S3_ENDPOINT": f"127.0.0.1:{port}",
        "AWS_HTTPS": "NO",
        "AWS_VIRTUAL_HOSTING": "FALSE",
    }
    try:
        s3 = boto3.client(
            "s3",
            endpoint_url=f"http://127.0.0.1:{port}",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        )
        s3.create_bucket(Bucket=bucket)
        for key, path in files.items():
            s3.upload_file(str(path), bucket, key)
        yield env
    finally:
        server.stop()


def environ(settings: dict[str, str]) -> dict[str, str | None]:
    """Set environment variables; the previous values, to restore with :func:`restore`."""
    old = {k: os.environ.get(k) for k in settings}
    os.environ.update(settings)
    return old


def restore(old: dict[str, str | None]) -> None:
    """Put back what :func:`environ` changed."""
    for key, value in old.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
