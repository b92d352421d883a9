"""``tiler serve --workers 2`` over remote files: /metrics' storage counts are every worker's,
and add up to exactly the requests and bytes the storage server answered."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import morecantile
import pytest
from support.nginx import stop, tiler_serve
from support.remote_servers import RangeServer, rewrite_hrefs
from test_metrics import value
from test_workers_e2e import per_worker

from tiler.catalog.loaders import load_collection

pytestmark = pytest.mark.e2e

WMQ = morecantile.tms.get("WebMercatorQuad")
STORAGE = ("tiler_storage_requests_total", "tiler_storage_bytes_total")


def _storage(base: str) -> tuple[float, float]:
    text = httpx.get(f"{base}/metrics").text
    return (
        value(text, STORAGE[0], scheme="http"),
        value(text, STORAGE[1], scheme="http"),
    )


def test_storage_counts_of_every_worker(synthetic: dict[str, Any], tmp_path: Path) -> None:
    folder = tmp_path / "prom"
    folder.mkdir()
    env = {
        "PROMETHEUS_MULTIPROC_DIR": str(folder),
        "TILER_TILE_CACHE_BYTES": "0",
        "TILER_READ_THREADS": "1",
    }
    with RangeServer(synthetic["root"]) as server:
        source = rewrite_hrefs(synthetic["path"], tmp_path / "http.json", server.fresh())
        proc, port = tiler_serve([source], tmp_path / "tiler.log", 2, env)
        base = f"http://127.0.0.1:{port}"
        try:
            before = _storage(base)
            asked, answered = server.requests, server.bytes
            w, s, e, n = load_collection(synthetic["path"]).bounds
            tiles = [WMQ.tile((w + e) / 2, (s + n) / 2, z) for z in (14, 15, 16)]
            paths = [
                f"/collections/test/tiles/WebMercatorQuad/{t.z}/{t.x + dx}/{t.y}.png?quality=q"
                for t in tiles
                for dx in (-1, 0, 1)
            ]
            counted: dict[str, float] = {}
            for rounds in range(10):  # until both workers have read files (the kernel picks)
                with ThreadPoolExecutor(4) as pool:  # a new connection per request
                    codes = list(
                        pool.map(
                            lambda p, r=rounds: (
                                httpx.get(f"{base}{p}&min=0&max={1000 + r}", timeout=60).status_code
                            ),
                            paths,
                        )
                    )
                assert set(codes) <= {200, 503}, codes
                counted = per_worker(folder, tmp_path / f"scratch{rounds}", STORAGE[0])
                if len(counted) == 2 and all(v > 0 for v in counted.values()):
                    break
            assert len(counted) == 2 and all(v > 0 for v in counted.values()), counted
            expected = (
                before[0] + server.requests - asked,
                before[1] + server.bytes - answered,
            )
            assert server.requests > asked
            found = _storage(base)
            for _ in range(50):  # a worker adds its counts once its answer is sent
                if found == expected:
                    break
                time.sleep(0.1)
                found = _storage(base)
            assert found == expected
        finally:
            stop(proc)
