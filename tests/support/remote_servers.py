"""Real protocol peers for remote COGs: a range-capable HTTP server with latency, and S3.

``RangeServer`` serves a folder over HTTP/1.1 on loopback with ``Range`` requests (one range
per request, as COG readers ask), ``HEAD``, and an injected delay before each answer; it
counts requests and bytes. It can also misbehave for chosen files (:attr:`RangeServer.faults`:
an error status, an answer that never comes, a truncated body), and hands out fresh URL
prefixes (:meth:`RangeServer.fresh`) so that GDAL's per-URL caches of one test never hide
another's fault. ``s3_server`` runs moto's S3 server on loopback. Both stand for the object
stores real collections live in; GDAL talks to them through /vsicurl/ and /vsis3/.
"""

from __future__ import annotations

import itertools
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler
from pathlib import Path
from typing import Any

from support.net import LoopbackServer, http_server

_RANGE = re.compile(r"bytes=(\d+)-(\d*)$")

#: the first path segment of a URL from :meth:`RangeServer.fresh` (stripped before serving)
_FRESH = re.compile(r"^/~\d+(?=/)")
#: numbers of fresh prefixes, unique in the process (a later server may get the same port)
_FRESH_NUMBERS = itertools.count(1)

#: what :attr:`RangeServer.faults` may ask for
FAULTS = ("500", "403", "404", "hang", "truncate")


class RangeServer(LoopbackServer):
    """Serve ``root`` on 127.0.0.1 with ``Range`` support and ``latency`` seconds per answer.

    Attributes:
        requests, bytes: requests answered (faulty ones included) and body bytes sent.
        faults: URL path (as requested, fresh prefix included) or a suffix of it -> how
            requests of it misbehave, settable at any time: ``"500"``, ``"403"``, ``"404"``
            (that status, a short body), ``"hang"`` (the connection is accepted and nothing
            is ever sent, until the server stops), ``"truncate"`` (GET: the full
            ``Content-Length`` is announced, half the body is sent, the connection is
            closed; HEAD is answered normally). The longest matching key wins.
        faulted: per faulty URL path, the requests it got (proves a fault was hit).
        asked: per URL path, all the requests it got (faulty or not).

    Args:
        root: the folder served.
        latency: seconds before each answer.
        port: the loopback port (default: one the kernel chooses as the server binds),
            e.g. one that clients already tried while nothing listened (a server down,
            then back).
    """

    def __init__(self, root: Path, latency: float = 0.0, port: int | None = None) -> None:
        self.root = Path(root)
        self.latency = latency
        self.requests = 0
        self.bytes = 0
        self.faults: dict[str, str] = {}
        self.faulted: Counter[str] = Counter()
        self.asked: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = http_server(self._handler(), port or 0)
        self.port = self._server.server_port
        self.url = f"http://127.0.0.1:{self.port}"

    def _count(self, sent: int) -> None:
        with self._lock:
            self.requests += 1
            self.bytes += sent

    def fresh(self) -> str:
        """A base URL no earlier caller got (``url`` + ``/~N``), serving the same files.

        GDAL keeps file sizes, 404s and chunks per URL for the whole process; hrefs under a
        fresh base are new to it.
        """
        return f"{self.url}/~{next(_FRESH_NUMBERS)}"

    def fault(self, path: str) -> str | None:
        """The fault :attr:`faults` sets for a requested URL path, if any."""
        path = path.split("?", 1)[0]
        keys = [k for k in self.faults if path == k or path.endswith(k)]
        if not keys:
            return None
        kind = self.faults[max(keys, key=len)]
        if kind not in FAULTS:
            raise ValueError(f"unknown fault {kind!r}: one of {FAULTS}")
        return kind

    def _handler(self) -> type[SimpleHTTPRequestHandler]:
        outer = self

        class Handler(SimpleHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, directory=str(outer.root), **kwargs)

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def translate_path(self, path: str) -> str:
                return super().translate_path(_FRESH.sub("", path, count=1))

            def _file(self) -> Path | None:
                path = Path(self.translate_path(self.path))
                return path if path.is_file() else None

            def _misbehave(self, kind: str, body: bool) -> None:
                with outer._lock:
                    outer.faulted[self.path.split("?", 1)[0]] += 1
                if kind == "hang":  # accepted, never answered; let go when the server stops
                    outer._stopping.wait()
                    self.close_connection = True
                    return
                if kind != "truncate":
                    self.send_error(int(kind))
                    outer._count(0)
                    return
                path = self._file()
                if path is None or not body:  # HEAD: nothing to truncate
                    self._serve(path, body)
                    return
                data = path.read_bytes()
                match = _RANGE.match(self.headers.get("Range", ""))
                if match:
                    start = int(match[1])
                    end = min(len(data) - 1, int(match[2])) if match[2] else len(data) - 1
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
                    data = data[start : end + 1]
                else:
                    self.send_response(200)
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("Content-Type", "image/tiff")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(data[: len(data) // 2])
                self.wfile.flush()
                self.close_connection = True
                outer._count(len(data) // 2)

            def _answer(self, body: bool) -> None:
                with outer._lock:
                    outer.asked[self.path.split("?", 1)[0]] += 1
                if outer.latency:
                    time.sleep(outer.latency)
                kind = outer.fault(self.path)
                if kind is not None:
                    self._misbehave(kind, body)
                    return
                self._serve(self._file(), body)

            def _serve(self, path: Path | None, body: bool) -> None:
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

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()  # hanging answers end (their threads are daemons anyway)
        super().__exit__(*exc)


@contextmanager
def s3_server(files: dict[str, Path], bucket: str = "cogs") -> Iterator[dict[str, str]]:
    """moto's S3 on loopback holding ``files`` (key -> path); yields GDAL's settings for it."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    port = server.get_host_and_port()[1]
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


def rewrite_hrefs(src: Path, dst: Path, prefix: str) -> Path:
    """A copy of the collection file ``src`` whose relative hrefs start with ``prefix``."""
    import json

    doc = json.loads(Path(src).read_text())
    for feature in doc["features"]:
        for asset in feature["assets"].values():
            asset["href"] = f"{prefix}/{asset['href'].removeprefix('./')}"
    dst.write_text(json.dumps(doc))
    return dst


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
