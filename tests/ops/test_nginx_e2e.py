"""The deploy template's nginx (Debian's) in front of ``tiler serve --workers 2``: a shared
tile cache keyed on the full URL that honours Cache-Control, ETag and no-store, 503 with
Retry-After passed through, request ids and public URLs right."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import morecantile
import pytest
from support.nginx import NGINX, free_port, nginx, stop, tiler_serve

from tiler.catalog.loaders import load_collection

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(NGINX is None, reason="nginx is not installed (apt-get install nginx)"),
]

WMQ = morecantile.tms.get("WebMercatorQuad")
MAX_AGE = 4


def _broken_copy(synthetic: dict[str, Any]) -> Path:
    """The synthetic collection as ``broken``, its first item's quality file missing."""
    doc = json.loads(synthetic["path"].read_text())
    for feature in doc["features"]:
        feature["collection"] = "broken"
    first = doc["features"][0]["assets"]["q"]
    first["href"] = first["href"].replace("q.tif", "missing-q.tif")
    path = synthetic["path"].with_name("broken.json")
    path.write_text(json.dumps(doc))
    return path


@pytest.fixture(scope="module")
def stack(synthetic: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """tiler serve (2 workers, one computation each, no queue) behind nginx."""
    folder = tmp_path_factory.mktemp("nginx-stack")
    public_port = free_port()  # nginx's, known before the server starts
    env = {
        "TILER_PUBLIC_URL": f"http://127.0.0.1:{public_port}",
        "TILER_CACHE_CONTROL": f"public, max-age={MAX_AGE}",
        "TILER_TILE_CACHE_BYTES": "0",
        "TILER_MAX_IN_FLIGHT": "1",
        "TILER_MAX_QUEUE_WAIT": "0",
        "TILER_READ_THREADS": "1",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    sources = [synthetic["path"], _broken_copy(synthetic)]
    server, port = tiler_serve(sources, folder / "tiler.log", 2, env)
    try:
        proxy, nginx_port = nginx(folder / "nginx", port, listen_port=public_port)
        try:
            yield {"url": f"http://127.0.0.1:{nginx_port}", "upstream": port, "dir": folder}
        finally:
            stop(proxy)
    finally:
        stop(server)


def _centre(synthetic: dict[str, Any], z: int) -> tuple[int, int, int]:
    """The tile over the synthetic collection's centre (every item overlaps it)."""
    w, s, e, north = load_collection(synthetic["path"]).bounds
    t = WMQ.tile((w + e) / 2, (s + north) / 2, z)
    return t.z, t.x, t.y


def _path(cid: str, tile: tuple[int, int, int], query: str = "quality=q") -> str:
    z, x, y = tile
    return f"/collections/{cid}/tiles/WebMercatorQuad/{z}/{x}/{y}.png?{query}"


def test_second_request_is_a_cache_hit_keyed_on_the_full_url(stack, synthetic) -> None:
    url = stack["url"] + _path("test", _centre(synthetic, 15))
    first = httpx.get(url, headers={"X-Request-ID": "first-one"})
    assert first.status_code == 200, first.text
    assert first.headers["X-Cache-Status"] == "MISS"
    assert int(first.headers["X-Items-Read"]) >= 1
    assert first.headers["X-Request-ID"] == "first-one"
    second = httpx.get(url)
    assert second.status_code == 200 and second.headers["X-Cache-Status"] == "HIT"
    assert second.content == first.content and second.headers["ETag"] == first.headers["ETag"]
    rid = second.headers["X-Request-ID"]
    assert rid != "first-one" and len(rid) == 32  # this request's id, not the cached one's
    other = httpx.get(url.replace("quality=q", "quality=q&bands=a"))
    assert other.headers["X-Cache-Status"] == "MISS"  # another query: another entry
    access = (stack["dir"] / "nginx" / "access.log").read_text()
    assert "quality=q" not in access and "cache=HIT" in access and "request_id=first-one" in access


def test_etag_revalidation(stack, synthetic) -> None:
    url = stack["url"] + _path("test", _centre(synthetic, 15), "quality=q&bands=b")
    first = httpx.get(url)
    etag = first.headers["ETag"]
    assert first.status_code == 200 and etag
    cached = httpx.get(url, headers={"If-None-Match": etag})
    assert cached.status_code == 304 and cached.headers["X-Cache-Status"] == "HIT"
    log = stack["dir"] / "tiler.log"
    before = _revalidations(log)
    time.sleep(MAX_AGE + 0.5)
    # expired: the stale copy is answered at once while nginx asks the server with
    # If-None-Match in the background; the server's 304 renews the copy
    deadline = time.monotonic() + 30
    while (stale := httpx.get(url)).headers["X-Cache-Status"] == "HIT":
        assert time.monotonic() < deadline, "the copy never expired"
        time.sleep(0.5)  # (nginx's clock and the answer's arrival: a little later)
    assert stale.status_code == 200 and stale.headers["X-Cache-Status"] == "STALE"
    while _revalidations(log) == before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _revalidations(log) == before + 1
    again = httpx.get(url)
    assert again.status_code == 200 and again.headers["X-Cache-Status"] == "HIT"
    assert again.content == first.content
    direct = httpx.get(
        f"http://127.0.0.1:{stack['upstream']}"
        + _path("test", _centre(synthetic, 15), "quality=q&bands=b"),
        headers={"If-None-Match": etag},
    )
    assert direct.status_code == 304


def _revalidations(log: Path) -> int:
    """304s the tile server's access log shows for tiles."""
    return sum(" tile /collections/" in line and " 304 " in line for line in log.open())


def test_no_store_tiles_are_never_cached(stack, synthetic) -> None:
    url = stack["url"] + _path("broken", _centre(synthetic, 15))
    for _ in range(3):
        r = httpx.get(url)
        assert r.status_code == 200, r.text
        assert "X-Items-Skipped" in r.headers and r.headers["Cache-Control"] == "no-store"
        assert r.headers["X-Cache-Status"] == "MISS"


def test_503_passes_through_with_retry_after(stack, synthetic) -> None:
    centre = _centre(synthetic, 16)  # distinct URLs that all compute a mosaic
    paths = [_path("test", centre, f"quality=q&bands=a&min=0&max={m}") for m in range(100, 124)]

    def get(path: str) -> httpx.Response:
        return httpx.get(stack["url"] + path, timeout=30)

    for _attempt in range(5):
        with ThreadPoolExecutor(12) as pool:
            answers = list(pool.map(get, paths))
        busy = [r for r in answers if r.status_code == 503]
        if busy:
            break
        paths = [p + "0" for p in paths]  # new URLs: not cached
    assert busy, [r.status_code for r in answers]
    r = busy[0]
    assert r.headers["Retry-After"] == "1" and r.headers["Cache-Control"] == "no-store"
    assert "busy" in r.json()["detail"] and r.json()["request_id"] == r.headers["X-Request-ID"]
    assert r.headers["X-Cache-Status"] == "MISS"
    assert {a.status_code for a in answers} <= {200, 503}


def test_public_urls_and_probes(stack) -> None:
    tilejson = httpx.get(stack["url"] + "/collections/test/WebMercatorQuad/tilejson.json")
    assert tilejson.status_code == 200
    assert tilejson.json()["tiles"][0].startswith(stack["url"] + "/collections/test/tiles/")
    assert httpx.get(stack["url"] + "/readyz").status_code == 200
    assert "X-Cache-Status" not in httpx.get(stack["url"] + "/healthz").headers
    assert httpx.get(stack["url"] + "/metrics").status_code == 404  # not through the proxy
    upstream = httpx.get(f"http://127.0.0.1:{stack['upstream']}/metrics").text
    assert "tiler_workers 2.0" in upstream  # tiler serve made the multiprocess folder
