"""``tiler serve --workers 2``: /metrics adds up every worker's counts, whichever worker
answers it; every log line is one JSON object; a request id goes end to end."""

from __future__ import annotations

import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import morecantile
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
from support.nginx import stop, tiler_serve
from test_metrics import value

from tiler.catalog.loaders import load_collection

pytestmark = pytest.mark.e2e

WMQ = morecantile.tms.get("WebMercatorQuad")


def per_worker(
    folder: Path, scratch: Path, name: str = "tiler_http_requests_total", group: str = "tile"
) -> dict[str, float]:
    """Samples ``name`` (of route ``group`` where labelled so) summed per worker process
    (its own counter file)."""
    out = {}
    for db in sorted(folder.glob("counter_*.db")):
        one = scratch / db.stem
        one.mkdir(parents=True)
        shutil.copy(db, one / db.name)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(one))
        total = 0.0
        for family in registry.collect():
            for s in family.samples:
                if s.name == name and s.labels.get("group", group) == group:
                    total += s.value
        out[db.stem] = total
    return out


def test_metrics_of_every_worker_json_logs_and_request_ids(
    synthetic: dict[str, Any], tmp_path: Path
) -> None:
    folder = tmp_path / "prom"
    folder.mkdir()
    (folder / "counter_1.db").write_bytes(b"stale values of an earlier run")
    env = {
        "PROMETHEUS_MULTIPROC_DIR": str(folder),
        "TILER_LOG_FORMAT": "json",
        "TILER_TILE_CACHE_BYTES": "0",
        "TILER_READ_THREADS": "1",
    }
    log = tmp_path / "tiler.log"
    proc, port = tiler_serve([synthetic["path"]], log, 2, env)
    base = f"http://127.0.0.1:{port}"
    try:
        assert not (folder / "counter_1.db").exists()  # cleaned at start
        w, s, e, n = load_collection(synthetic["path"]).bounds
        t = WMQ.tile((w + e) / 2, (s + n) / 2, 16)
        path = f"/collections/test/tiles/WebMercatorQuad/16/{t.x}/{t.y}.png?quality=q"
        sent = 0
        rounds = 0
        while rounds < 10:  # until both workers have served tiles (the kernel picks)
            with ThreadPoolExecutor(8) as pool:
                # a new connection per request, so that either worker may accept it
                codes = list(
                    pool.map(
                        lambda i: (
                            httpx.get(f"{base}{path}&min=0&max={1000 + i}", timeout=60).status_code
                        ),
                        range(sent, sent + 16),
                    )
                )
            assert set(codes) <= {200, 503}, codes
            sent += 16
            rounds += 1
            counted = per_worker(folder, tmp_path / f"scratch{rounds}")
            if len(counted) == 2 and all(v > 0 for v in counted.values()):
                break
        assert len(counted) == 2 and all(v > 0 for v in counted.values()), counted
        rid = "e2e-request.1"
        tagged = httpx.get(f"{base}{path}&bands=a", headers={"X-Request-ID": rid})
        assert tagged.status_code == 200 and tagged.headers["X-Request-ID"] == rid
        bad = httpx.get(f"{base}{path}&bands=nope&token=s3cret", headers={"X-Request-ID": rid})
        assert bad.status_code == 400 and bad.json()["request_id"] == rid
        sent += 2
        for _ in range(6):  # whichever worker answers: the sum of both
            text = httpx.get(f"{base}/metrics").text
            tiles = sum(
                value(text, "tiler_http_requests_total", group="tile", status=c)
                for c in ("2xx", "4xx", "5xx")
            )
            assert tiles == sent
            assert value(text, "tiler_workers") == 2
            assert value(text, "tiler_admission_limit") == 2 * 2  # 2 x read threads each
            assert value(text, "tiler_mosaic_items_count", group="tile", kind="read") >= 1
    finally:
        stop(proc)
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all({"time", "level", "logger", "message"} <= set(e) for e in entries)
    access = [e for e in entries if e["logger"] == "tiler.access"]
    assert len(access) >= sent
    mine = [e for e in entries if e.get("request_id") == rid]
    assert {e["logger"] for e in mine} >= {"tiler.access", "tiler.api.tiles"}
    assert {e["access"]["status"] for e in mine if e["logger"] == "tiler.access"} == {200, 400}
    assert "s3cret" not in log.read_text() and "?" not in "".join(
        e["access"]["route"] for e in access
    )
    assert any(e["logger"].startswith("uvicorn") for e in entries)  # uvicorn's lines too
