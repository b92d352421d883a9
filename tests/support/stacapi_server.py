"""A real STAC API for tests: stac-fastapi-pgstac on a PgSTAC database, on a loopback port.

Started in its own process with uvicorn (``stac_fastapi.pgstac.app:create_app``), with the
extensions a test asks for (``ENABLED_EXTENSIONS``), e.g. without sort and filter to check
the catalogue's client-side fallback. uvicorn gets a socket already bound (``--fd``).
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from support.net import ServerFailed, process_server


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
    env = {
        **os.environ,
        "PGUSER": user,
        "PGPASSWORD": "unused",
        "PGHOST": host,
        "PGPORT": str(port),
        "PGDATABASE": dbname,
        "ENABLED_EXTENSIONS": extensions,
    }
    argv = [sys.executable, "-m", "uvicorn", "stac_fastapi.pgstac.app:create_app", "--factory"]
    with tempfile.TemporaryDirectory() as tmp:
        try:
            with process_server(
                lambda fd: [*argv, "--fd", str(fd), "--log-level", "warning"],
                Path(tmp) / "stac-api.log",
                fd=True,
                health="/",
                env=env,
                cwd=tempfile.gettempdir(),  # no .env file of anyone's is read
            ) as served:
                yield served.url
        except ServerFailed as exc:
            raise RuntimeError(f"stac-fastapi did not start: {exc}") from exc
