"""A real STAC API for tests: stac-fastapi-pgstac on a PgSTAC database, on a loopback port.

Started in its own process with uvicorn (``stac_fastapi.pgstac.app:create_app``), with the
extensions a test asks for (``ENABLED_EXTENSIONS``), e.g. without sort and filter to check
the catalogue's client-side fallback.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.error import URLError


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def stac_api(
    host: str, port: int, dbname: str, extensions: str, user: str = "postgres"
) -> Iterator[str]:
    """Run stac-fastapi-pgstac on ``dbname``; yields its root URL (http://127.0.0.1:PORT).

    Args:
        host: the database host.
        port: the database port.
        dbname: the PgSTAC database.
        extensions: ``ENABLED_EXTENSIONS`` (comma-separated, e.g. "sort,filter,fields").
        user: the database role (trusted on loopback).
    """
    api_port = _free_port()
    env = {
        **os.environ,
        "PGUSER": user,
        "PGPASSWORD": "unused",
        "PGHOST": host,
        "PGPORT": str(port),
        "PGDATABASE": dbname,
        "ENABLED_EXTENSIONS": extensions,
    }
    url = f"http://127.0.0.1:{api_port}"
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "stac_fastapi.pgstac.app:create_app",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(api_port),
                "--log-level",
                "warning",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=tempfile.gettempdir(),  # no .env file of anyone's is read
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    with urllib.request.urlopen(f"{url}/", timeout=2) as answer:
                        if answer.status == 200:
                            break
                except (URLError, OSError):
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    raise RuntimeError(f"stac-fastapi did not start:\n{log.read().decode()}")
                time.sleep(0.2)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
