"""Logs: one access line per request, text or JSON lines, no query string or secret."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from tiler.api.requests_log import AccessLog, RequestIdFilter, Route, Work
from tiler.process import JSONFormatter, ServerLogHandler, TextFormatter, configure_logging


@pytest.fixture
def root_logging() -> Iterator[logging.Logger]:
    """The root logger, its handlers and level restored after the test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield root
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    for handler in handlers:
        if handler not in root.handlers:
            root.addHandler(handler)
    root.setLevel(level)


def _line(formatter: logging.Formatter, **extra: Any) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    logger = logging.getLogger("tests.ops.logs")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        AccessLog(logger).write(
            "GET",
            Route("tile", "/collections/{collection_id}/tiles/{tileMatrixSetId}/{z}/{x}/{y}", "c"),
            200,
            0.0123,
            456,
            Work(considered=5, read=2, used=1, cache="miss"),
        )
    finally:
        logger.removeHandler(handler)
    return stream.getvalue()


def test_json_access_line_parses() -> None:
    text = _line(JSONFormatter())
    assert text.count("\n") == 1
    entry = json.loads(text)
    assert entry["level"] == "INFO" and entry["logger"] == "tests.ops.logs"
    assert entry["time"].endswith("Z")
    access = entry["access"]
    assert access["group"] == "tile" and access["status"] == 200
    assert access["duration_ms"] == 12.3 and access["items_read"] == 2
    assert access["cache"] == "miss" and access["collection"] == "c"


def test_text_access_line() -> None:
    text = _line(TextFormatter())
    assert " GET tile /collections/{collection_id}/tiles/" in text
    assert " 200 12.3 ms collection=c items_considered=5 items_read=2" in text


def test_json_lines_carry_the_request_id_and_exceptions(root_logging: logging.Logger) -> None:
    from tiler.api.requests_log import REQUEST_ID

    configure_logging("INFO", "json", [RequestIdFilter()])
    handler = next(h for h in root_logging.handlers if isinstance(h, ServerLogHandler))
    stream = io.StringIO()
    handler.setStream(stream)
    token = REQUEST_ID.set("rid-json")
    try:
        logging.getLogger("tiler.test").warning("hello %s", "world")
        try:
            raise ValueError("bad")
        except ValueError:
            logging.getLogger("tiler.test").exception("failed")
    finally:
        REQUEST_ID.reset(token)
    logging.getLogger("tiler.test").warning("outside")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [entry["message"] for entry in lines] == ["hello world", "failed", "outside"]
    assert lines[0]["request_id"] == "rid-json" and "request_id" not in lines[2]
    assert "ValueError: bad" in lines[1]["exc_info"]
    configure_logging("INFO", "json", [RequestIdFilter()])  # again: one handler, one filter
    assert sum(isinstance(h, ServerLogHandler) for h in root_logging.handlers) == 1
    assert len(handler.filters) == 1


def test_access_log_has_no_query_string_or_token(
    make_client: Any, tile_paths: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    client = make_client()
    client.get(tile_paths[0] + "&token=s3cr3t-t0ken&password=hunter2")
    client.get("/collections/test/items?access_token=abc-s3cret")
    client.get("/nope?api_key=k3y-s3cret")
    access = [r for r in caplog.records if r.name == "tiler.access"]
    assert len(access) == 3
    assert all("?" not in r.getMessage() for r in access)
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("tiler"))
    assert "s3cr" not in ours and "hunter2" not in ours and "k3y" not in ours  # (the client's
    # own log, httpx's, has the URL)
    assert [r.access["group"] for r in access] == ["tile", "items", "other"]


def test_busy_answers_are_logged_at_most_a_few_a_second_then_counted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A retry storm's 503s: ``busy_per_second`` lines a second, then the next line says how
    many were not logged (other statuses are always logged)."""
    records: list[logging.LogRecord] = []
    logger = logging.getLogger("tests.ops.busy")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger.addHandler(handler)
    clock = [100.0]
    monkeypatch.setattr("tiler.api.requests_log.time.monotonic", lambda: clock[0])
    log = AccessLog(logger, busy_per_second=3)
    route = Route("tile", "/collections/{collection_id}/tiles/{tileMatrixSetId}/{z}/{x}/{y}", "c")
    try:
        for _ in range(50):
            log.write("GET", route, 503, 0.001, 80, Work())
        log.write("GET", route, 200, 0.1, 800, Work())
        assert [r.access["status"] for r in records] == [503, 503, 503, 200]  # type: ignore[attr-defined]
        clock[0] += 1.0
        log.write("GET", route, 503, 0.001, 80, Work())
        assert records[-1].access["busy_not_logged"] == 47  # type: ignore[attr-defined]
    finally:
        logger.removeHandler(handler)
