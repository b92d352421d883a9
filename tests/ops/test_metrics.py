"""/metrics: what moves when tiles are served, labels of low cardinality, the off switch."""

from __future__ import annotations

import re
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tiler.api.metrics import Metrics, ObservedGate, status_class
from tiler.api.observe import RouteGroups, route_group
from tiler.api.requests_log import Route, Work


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """``{(sample name, sorted labels): value}`` of a Prometheus text exposition."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_move_when_tiles_are_served(make_client: Any, tile_paths: list[str]) -> None:
    client = make_client()
    before = client.get("/metrics").text
    assert client.get(tile_paths[0]).status_code == 200
    assert client.get(tile_paths[0]).headers["X-Cache"] == "hit"
    assert client.get(tile_paths[0] + "&bands=nope").status_code == 400
    text = client.get("/metrics").text
    tile_2xx = {"group": "tile", "status": "2xx"}
    assert value(text, "tiler_http_requests_total", **tile_2xx) == 2
    assert value(text, "tiler_http_requests_total", group="tile", status="4xx") == 1
    assert value(before, "tiler_http_requests_total", group="health", status="2xx") == 0
    assert value(text, "tiler_http_requests_total", group="health", status="2xx") == 1
    assert value(text, "tiler_http_request_duration_seconds_count", **tile_2xx) == 2
    assert value(text, "tiler_tile_cache_total", result="miss") == 1
    assert value(text, "tiler_tile_cache_total", result="hit") == 1
    # one mosaic computed: its stages and items, once (the cache hit computed nothing)
    for stage in ("search", "quality", "render"):
        count = value(text, "tiler_mosaic_stage_seconds_count", group="tile", stage=stage)
        assert count == 1, stage
    for kind in ("considered", "read", "used", "skipped"):
        assert value(text, "tiler_mosaic_items_count", group="tile", kind=kind) == 1
    read = value(text, "tiler_mosaic_items_sum", group="tile", kind="read")
    assert read >= 1
    assert value(text, "tiler_catalog_search_seconds_count", kind="MemoryCatalog") == 1
    assert value(text, "tiler_admission_limit") == client.app.state.gate.limit
    assert value(text, "tiler_admission_in_flight") == 0
    assert value(text, "tiler_workers") == 1


def test_no_path_query_or_collection_in_labels(make_client: Any, tile_paths: list[str]) -> None:
    client = make_client()
    client.get(tile_paths[1] + "&token=s3cret")
    client.get("/nope/at/all?password=x")
    text = client.get("/metrics").text
    assert "s3cret" not in text and "/nope" not in text and "password" not in text
    assert "collection=" not in text and "WebMercatorQuad" not in text
    groups = {dict(labels).get("group") for _, labels in samples(text)} - {None}
    assert groups <= {"tile", "point", "export", "items", "metadata", "health", "other"}


def test_collection_labels_when_allowed(make_client: Any, tile_paths: list[str]) -> None:
    client = make_client(metrics_collection_labels=True)
    client.get(tile_paths[0])
    client.get("/collections/unknown-one/tiles/WebMercatorQuad/1/0/0.png")
    text = client.get("/metrics").text
    labels = {"group": "tile", "status": "2xx", "collection": "test"}
    assert value(text, "tiler_http_requests_total", **labels) == 1
    assert "unknown-one" not in text  # not a served collection: never a label value
    other = {"group": "tile", "status": "4xx", "collection": "-"}
    assert value(text, "tiler_http_requests_total", **other) == 1


def test_metrics_off(make_client: Any, tile_paths: list[str]) -> None:
    client = make_client(metrics=False)
    assert client.get(tile_paths[0]).status_code == 200
    assert client.get("/metrics").status_code == 404
    assert "/metrics" not in client.get("/openapi.json").json()["paths"]


def test_the_gate_reports_in_flight_queued_shed_and_coalesced() -> None:
    metrics = Metrics()
    gate = ObservedGate(limit=2, timeout=10).watch(metrics)
    gate.in_flight += 2
    gate.queued += 1
    gate.refused += 3
    gate.coalesced += 1
    text = metrics.render()[0].decode()
    assert value(text, "tiler_admission_in_flight") == 2
    assert value(text, "tiler_admission_queued") == 1
    assert value(text, "tiler_admission_shed_total") == 3
    assert value(text, "tiler_admission_coalesced_total") == 1
    assert value(text, "tiler_admission_limit") == 2
    gate.in_flight -= 2
    assert value(metrics.render()[0].decode(), "tiler_admission_in_flight") == 0


def test_shed_requests_are_counted_over_http(make_client: Any, tile_paths: list[str]) -> None:
    client = make_client(max_in_flight=1, max_queue_wait=0)
    client.app.state.gate.in_flight = 1  # the one slot taken
    busy = client.get(tile_paths[2])
    assert busy.status_code == 503 and busy.headers["Retry-After"]
    client.app.state.gate.in_flight = 0
    text = client.get("/metrics").text
    assert value(text, "tiler_admission_shed_total") == 1
    assert value(text, "tiler_http_requests_total", group="tile", status="5xx") == 1
    assert value(text, "tiler_catalog_failures_total", kind="MemoryCatalog", status="503") == 0


def test_catalogue_failures_and_readiness_by_kind() -> None:
    metrics = Metrics(catalog_kinds={"a": "StacApiCatalog", "b": "PgstacCatalog"})
    metrics.observe(Route("tile", "/t", "a"), 502, 0.1, Work())
    metrics.observe(Route("tile", "/t", "a"), 503, 0.1, Work(retry_after=True))  # busy
    metrics.readiness({"a": {"status": "unavailable"}, "b": {"status": "ok"}})
    text = metrics.render()[0].decode()
    assert value(text, "tiler_catalog_failures_total", kind="StacApiCatalog", status="502") == 1
    assert value(text, "tiler_catalog_failures_total", kind="StacApiCatalog", status="503") == 0
    assert value(text, "tiler_catalog_unavailable", kind="StacApiCatalog") == 1
    assert value(text, "tiler_catalog_unavailable", kind="PgstacCatalog") == 0


def test_route_groups_of_every_route(make_client: Any) -> None:
    client = make_client()
    groups = client.app.state.route_groups
    assert isinstance(groups, RouteGroups)
    paths = {
        "/collections/test/tiles/WebMercatorQuad/1/2/3.png": ("tile", "test"),
        "/collections/test/point/1,2": ("point", "test"),
        "/collections/test/bbox/1,2,3,4/10x10.png": ("export", "test"),
        "/collections/test/feature": ("export", "test"),
        "/collections/test/items": ("items", "test"),
        "/collections/test": ("metadata", "test"),
        "/collections/other": ("metadata", ""),
        "/collections/test/WebMercatorQuad/tilejson.json": ("metadata", "test"),
        "/tileMatrixSets/WebMercatorQuad": ("metadata", ""),
        "/healthz": ("health", ""),
        "/readyz": ("health", ""),
        "/metrics": ("health", ""),
        "/": ("other", ""),
        "/static/viewer/app.js": ("other", ""),
        "/nope": ("other", ""),
    }
    for path, (group, collection) in paths.items():
        scope = {"type": "http", "method": "GET", "path": path, "root_path": "", "headers": []}
        route = groups.match(scope)
        assert (route.group, route.collection) == (group, collection), path
        assert "{" in route.template or route.template in (
            "-",
            "/",
            "/healthz",
            "/readyz",
            "/metrics",
            "/static/viewer",
        ), path
    assert route_group("/collections/{collection_id}/tiles/{tileMatrixSetId}/{z}/{x}/{y}") == "tile"
    assert [status_class(s) for s in (200, 304, 404, 503, 0)] == ["2xx", "3xx", "4xx", "5xx", "1xx"]


def test_metrics_text_is_prometheus_format(make_client: Any) -> None:
    r = make_client().get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain; version=")
    assert re.search(r"^# TYPE tiler_http_requests_total counter$", r.text, re.M) or re.search(
        r"^# TYPE tiler_http_requests counter$", r.text, re.M
    )
