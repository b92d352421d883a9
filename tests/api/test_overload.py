"""Overload and fairness over HTTP: admission (503), coalescing, disconnects, deadlines,
incomplete tiles never cached, HEAD, and the application's log in uvicorn workers.

Reads are made to block on ``threading.Event`` s (:class:`Blocker`), so each test proves
what happened while work was held (what was refused, shared, stopped), not timings.
"""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import morecantile
import pytest
from fastapi.testclient import TestClient
from support.net import tiler_serve

from tiler.api.admission import OVERLOAD_RESPONSES
from tiler.app import create_app
from tiler.catalog.loaders import load_collection
from tiler.catalog.memory import MemoryCatalog
from tiler.settings import Settings

WMQ = morecantile.tms.get("WebMercatorQuad")
WAIT = 30  # seconds an event wait may take before a test fails (never reached when right)


class Blocker:
    """Wraps the engine's item reads: records them and holds them until released."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.real = engine.reader.read
        self.calls: list[str] = []
        self.started = threading.Event()
        self.release = threading.Event()
        self.held = threading.Event()  # a read is waiting for ``release``
        engine.reader.read = self

    def __call__(self, item: Any, *args: Any, **kwargs: Any) -> Any:
        self.calls.append(item.id)
        self.held.set()
        self.started.set()
        try:
            assert self.release.wait(WAIT)
        finally:
            self.held.clear()
        return self.real(item, *args, **kwargs)


def _until(condition: Any) -> None:
    """Wait until ``condition()`` holds (a state reached by other threads)."""
    end = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < end, "state not reached"
        time.sleep(0.01)


@pytest.fixture(scope="module")
def tiles(synthetic) -> list[str]:
    """URLs of z15 tiles over the synthetic collection, the busiest first."""
    col = load_collection(synthetic["path"])
    w, s, e, n = col.info().bounds
    grid = list(WMQ.tiles(w, s, e, n, [15]))
    centre = WMQ.tile((w + e) / 2, (s + n) / 2, 15)
    grid.sort(key=lambda t: (t != centre, t.x, t.y))
    return [
        f"/collections/test/tiles/WebMercatorQuad/{t.z}/{t.x}/{t.y}.png?quality=q" for t in grid
    ]


@pytest.fixture
def make_client(synthetic) -> Iterator[Any]:
    clients = []

    def make(catalogs: dict[str, Any] | None = None, **settings: Any) -> TestClient:
        options = {"collections": [synthetic["path"]], "read_threads": 1, **settings}
        client = TestClient(create_app(Settings(**options), catalogs))
        clients.append(client.__enter__())
        return client

    yield make
    for c in clients:
        c.__exit__(None, None, None)


def test_beyond_the_limit_answers_503_at_once_before_any_work(make_client, tiles):
    client = make_client(max_in_flight=1, max_queue_wait=0, tile_cache_bytes=0)
    blocker = Blocker(client.app.state.engine)
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(client.get, tiles[0])
        assert blocker.started.wait(WAIT)
        reads = len(blocker.calls)
        busy = client.get(tiles[1])
        assert busy.status_code == 503
        assert blocker.held.is_set() and not first.done()  # at once: not behind the held read
        assert busy.headers["Retry-After"] == "1"
        assert busy.headers["Cache-Control"] == "no-store"
        assert "busy" in busy.json()["detail"]
        assert len(blocker.calls) == reads  # refused before any read
        point = client.get("/collections/test/point/15.003,45.103")
        assert point.status_code == 503
        export = client.get("/collections/test/bbox/15.0,45.1,15.01,45.11/16x16.png")
        assert export.status_code == 503
        square = [[15.0, 45.1], [15.01, 45.1], [15.01, 45.11], [15.0, 45.1]]
        feature = {
            "type": "Feature",
            "properties": {},
            "geometry": {"type": "Polygon", "coordinates": [square]},
        }
        assert client.post("/collections/test/feature", json=feature).status_code == 503
        health = client.get("/healthz")  # never refused
        assert health.status_code == 200
        assert health.json()["load"]["in_flight"] == 1
        assert client.head("/healthz").status_code == 200
        assert client.get("/collections/test").status_code == 200  # cheap routes too
        blocker.release.set()
        assert first.result(WAIT).status_code == 200
    assert client.get(tiles[1]).status_code == 200


def test_a_stuck_file_of_one_collection_does_not_stall_another(make_client, synthetic, cloudy):
    """One read slot; a read of the first collection never answers while it is held: a tile
    of another collection is still made from all its items (the stuck read leaves its
    slot after a second), and says nothing was skipped."""
    client = make_client(
        collections=[synthetic["path"], cloudy["path"]], tile_cache_bytes=0, item_timeout=600
    )
    blocker = Blocker(client.app.state.engine)
    real = blocker.real

    def only_test_items(item: Any, *args: Any, **kwargs: Any) -> Any:
        if item.id.startswith("it-"):  # the synthetic collection's items
            return blocker(item, *args, **kwargs)
        return real(item, *args, **kwargs)

    client.app.state.engine.reader.read = only_test_items
    cloudy_col = load_collection(cloudy["path"])
    w, s, e, n = cloudy_col.info().bounds
    t = WMQ.tile((w + e) / 2, (s + n) / 2, 15)
    other = f"/collections/cloudy/tiles/WebMercatorQuad/15/{t.x}/{t.y}.png?quality=-cld"
    with ThreadPoolExecutor(1) as pool:
        stuck = pool.submit(client.get, _tile_url(synthetic))
        assert blocker.started.wait(WAIT)
        r = client.get(other)
        assert not blocker.release.is_set()  # still stuck
        assert r.status_code == 200 and "X-Items-Skipped" not in r.headers
        assert int(r.headers["X-Items-Read"]) >= 1
        blocker.release.set()
        assert stuck.result(WAIT).status_code == 200


def _tile_url(synthetic: dict[str, Any]) -> str:
    w, s, e, n = load_collection(synthetic["path"]).info().bounds
    t = WMQ.tile((w + e) / 2, (s + n) / 2, 15)
    return f"/collections/test/tiles/WebMercatorQuad/15/{t.x}/{t.y}.png?quality=q"


def test_a_burst_waits_its_turn_and_only_a_long_queue_is_refused(make_client, tiles):
    """One computation at once: two more wait their turn however long a computation takes
    (2 x max_in_flight: a map page's burst), a further one only while the expected wait
    is short; it is refused at once here, where computations look slow."""
    client = make_client(max_in_flight=1, tile_cache_bytes=0)
    gate = client.app.state.gate
    blocker = Blocker(client.app.state.engine)
    gate.service = 60.0  # computations look slow: only the minimum queue waits
    with ThreadPoolExecutor(4) as pool:
        first = pool.submit(client.get, tiles[0])
        assert blocker.started.wait(WAIT)
        queued = [pool.submit(client.get, t) for t in tiles[1:3]]
        _until(lambda: gate.queued == 2)
        reads = len(blocker.calls)
        assert client.get("/healthz").json()["load"]["queued"] == 2
        refused = client.get(tiles[3])
        assert refused.status_code == 503 and refused.headers["Retry-After"] == "1"
        assert "busy" in refused.json()["detail"]
        assert blocker.held.is_set() and not first.done()  # at once: not behind the held read
        assert len(blocker.calls) == reads  # nothing of the waiting ones read yet
        blocker.release.set()
        assert first.result(WAIT).status_code == 200
        assert [q.result(WAIT).status_code for q in queued] == [200, 200]  # in turn
    assert gate.in_flight == 0 and gate.queued == 0 and gate.refused == 1


def test_a_cached_tile_is_served_while_the_worker_is_busy(make_client, tiles):
    client = make_client(max_in_flight=1)
    assert client.get(tiles[1]).status_code == 200  # now in the tile cache
    blocker = Blocker(client.app.state.engine)
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(client.get, tiles[0])
        assert blocker.started.wait(WAIT)
        hit = client.get(tiles[1])
        assert hit.status_code == 200 and hit.headers["X-Cache"] == "hit"
        blocker.release.set()
        assert first.result(WAIT).status_code == 200


def test_identical_requests_share_one_computation(make_client, tiles):
    client = make_client(max_in_flight=1, tile_cache_bytes=0)
    engine = client.app.state.engine
    blocker = Blocker(engine)
    computations = []
    real_mosaic = engine.mosaic

    def counted(*args: Any, **kwargs: Any) -> Any:
        computations.append(1)
        return real_mosaic(*args, **kwargs)

    engine.mosaic = counted
    with ThreadPoolExecutor(6) as pool:
        answers = [pool.submit(client.get, tiles[0])]
        assert blocker.started.wait(WAIT)
        answers += [pool.submit(client.get, tiles[0]) for _ in range(5)]
        _until(lambda: sum(f.waiters for f in client.app.state.coalescer.flights.values()) == 6)
        blocker.release.set()
        responses = [a.result(WAIT) for a in answers]
    assert [r.status_code for r in responses] == [200] * 6
    assert len({r.content for r in responses}) == 1
    assert len(computations) == 1
    assert sum(r.headers.get("X-Coalesced") == "1" for r in responses) == 5
    assert client.app.state.coalescer.flights == {}


def _scope(url: str) -> dict[str, Any]:
    path, _, query = url.partition("?")
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query.encode(),
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }


def test_a_disconnected_client_stops_its_reads(make_client, tiles):
    """The client goes away while the first read is held: no further read is started
    (read_threads=1: one at a time, and the tile has several items)."""
    client = make_client(tile_cache_bytes=0)
    app = client.app
    blocker = Blocker(app.state.engine)
    sent: list[dict[str, Any]] = []

    async def scenario() -> None:
        gone = asyncio.Event()
        messages = [{"type": "http.request", "body": b"", "more_body": False}]

        async def receive() -> dict[str, Any]:
            if messages:
                return messages.pop()
            await gone.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        call = asyncio.ensure_future(app(_scope(tiles[0]), receive, send))
        assert await asyncio.to_thread(blocker.started.wait, WAIT)
        gone.set()
        await asyncio.wait_for(call, WAIT)

    try:
        asyncio.run(scenario())
        assert blocker.calls == blocker.calls[:1]  # only the held read ever started
        assert not blocker.release.is_set()
    finally:
        blocker.release.set()
    assert sent[0]["status"] == 499
    assert client.app.state.gate.in_flight == 0


def test_past_the_request_timeout_the_answer_is_504_and_reads_stop(make_client, tiles):
    client = make_client(request_timeout=0.3, tile_cache_bytes=0)
    blocker = Blocker(client.app.state.engine)
    try:
        r = client.get(tiles[0])
        assert blocker.held.is_set()  # answered by the deadline while the read is still held
        assert len(blocker.calls) == 1  # the held read; nothing was scheduled after it
    finally:
        blocker.release.set()
    assert r.status_code == 504
    assert "limit of 0.3 s" in r.json()["detail"]
    assert r.headers["Cache-Control"] == "no-store"


def test_work_stuck_outside_the_reads_is_answered_504_by_the_middleware(make_client, tiles):
    """The route's thread never reaches a read (e.g. a transform that never returns): the
    client gets 504 while that work is still held, and the worker counts it as overdue."""
    client = make_client(request_timeout=0.2)
    app = client.app
    catalog = app.state.catalogs["test"]
    release = threading.Event()
    real_search = catalog.search

    def stuck(*args: Any, **kwargs: Any) -> Any:
        release.wait(WAIT)
        return real_search(*args, **kwargs)

    catalog.search = stuck
    sent: list[dict[str, Any]] = []
    state: dict[str, Any] = {}

    async def scenario() -> None:
        answered = asyncio.Event()

        async def receive() -> dict[str, Any]:
            await asyncio.Event().wait()  # the client stays
            return {}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)
            if message["type"] == "http.response.body":
                answered.set()

        call = asyncio.ensure_future(app(_scope(tiles[0]), receive, send))
        await asyncio.wait_for(answered.wait(), WAIT)
        state["running"] = not call.done()
        state["load"] = dict(app.state.gate.status())
        release.set()
        await asyncio.wait_for(call, WAIT)

    try:
        asyncio.run(scenario())
    finally:
        release.set()
        catalog.search = real_search
    assert sent[0]["status"] == 504
    assert b"limit of 0.2 s" in sent[1]["body"]
    assert state["running"] and state["load"]["overdue"] == 1
    assert state["load"]["in_flight"] == 1  # its slot stays taken while the work runs
    assert app.state.gate.in_flight == 0 and app.state.gate.overdue == 0


def test_a_tile_that_lost_items_is_never_cached_and_shows_no_path(make_client, synthetic):
    col = load_collection(synthetic["path"])
    broken = []
    for item in col.items:
        band = dataclasses.replace(item.bands["q"], href="/srv/private/data/gone.tif")
        broken.append(dataclasses.replace(item, bands={**item.bands, "q": band}))
    catalog = MemoryCatalog("test", [broken[0], *col.items[1:]])
    client = make_client(catalogs={"test": catalog})
    lon, lat = col.items[0].geometry.centroid.coords[0]
    t = WMQ.tile(lon, lat, 15)
    url = f"/collections/test/tiles/WebMercatorQuad/15/{t.x}/{t.y}.png?quality=q"
    for _ in range(2):
        r = client.get(url)
        assert r.status_code == 200
        assert broken[0].id in r.headers["X-Items-Skipped"]
        assert "file not found" in r.headers["X-Items-Skipped"]
        assert "/srv/private" not in r.headers["X-Items-Skipped"]
        assert r.headers["Cache-Control"] == "no-store"
        assert "ETag" not in r.headers
        assert r.headers["X-Cache"] == "miss"  # never kept, so never a hit
    assert client.get(url, headers={"If-None-Match": "*"}).status_code == 200
    point = client.get(f"/collections/test/point/{lon},{lat}?quality=q").json()
    reasons = [it["skipped"] for it in point["items"] if it["skipped"]]
    assert reasons == ["RasterioIOError: file not found"]


def test_a_complete_tile_keeps_its_cache_headers(make_client, tiles):
    client = make_client()
    r = client.get(tiles[0])
    assert "X-Items-Skipped" not in r.headers
    assert r.headers["Cache-Control"] == "public, max-age=3600" and r.headers["ETag"]


@pytest.mark.parametrize(
    "url",
    ["/healthz", "/collections", "/collections/test", "/openapi.json", "TILE", "/nope"],
)
def test_head_answers_like_get_without_a_body(make_client, tiles, url):
    client = make_client()
    url = tiles[0] if url == "TILE" else url
    get, head = client.get(url), client.head(url)
    assert head.status_code == get.status_code
    assert head.content == b""
    assert head.headers.get("content-length") == get.headers.get("content-length")
    assert head.headers.get("content-type") == get.headers.get("content-type")


@pytest.mark.e2e  # a child process
def test_the_application_logs_in_uvicorn_worker_processes(synthetic, tiles):
    """A uvicorn worker configures only uvicorn's loggers; serve_app configures the rest."""
    script = textwrap.dedent(
        f"""
        import logging.config
        import uvicorn.config
        from fastapi.testclient import TestClient
        from tiler.app import serve_app
        from tiler.settings import Settings

        logging.config.dictConfig(uvicorn.config.LOGGING_CONFIG)  # as in a worker
        app = serve_app(Settings(collections=[{str(synthetic["path"])!r}]))
        with TestClient(app) as client:
            assert client.get({tiles[0]!r}).status_code == 200
        """
    )
    run = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    assert "INFO tiler.api.tiles: tile test 15/" in run.stderr


@pytest.mark.e2e
def test_tiler_serve_with_two_workers_logs_the_application_at_info(synthetic, tiles, tmp_path):
    """A live ``tiler serve --workers 2``: each tile's INFO line reaches the server's log."""
    import os
    import urllib.request

    log = tmp_path / "server.log"
    env = {**os.environ, "TILER_TILE_CACHE_BYTES": "0"}
    with tiler_serve(str(synthetic["path"]), "--workers", "2", log=log, env=env, timeout=120) as s:
        base = s.url
        for url in tiles[:4]:  # spread over both workers (each connection may go to either)
            with urllib.request.urlopen(base + url, timeout=60) as r:
                assert r.status == 200
    text = log.read_text(errors="replace")  # the server has stopped
    assert text.count("INFO tiler.api.tiles: tile test 15/") == 4, text[-3000:]


def test_the_routes_under_admission_control_are_those_documenting_the_503(make_client):
    """Admission is derived from the routes' OpenAPI responses: what the document says is
    what the middleware does (a renamed route keeps its control)."""
    paths = make_client().get("/openapi.json").json()["paths"]
    documented = {
        (path, method)
        for path, methods in paths.items()
        for method, operation in methods.items()
        if operation["responses"].get("503", {}).get("description")
        == OVERLOAD_RESPONSES[503]["description"]
    }
    assert documented == {
        ("/collections/{collection_id}/tiles/{tileMatrixSetId}/{z}/{x}/{y}", "get"),
        ("/collections/{collection_id}/point/{coordinates}", "get"),
        ("/collections/{collection_id}/bbox/{extent}/{size}.{format}", "get"),
        ("/collections/{collection_id}/feature", "post"),
    }
