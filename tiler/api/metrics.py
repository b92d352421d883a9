"""Prometheus metrics: requests, latency, mosaic work, admission, tile cache, catalogues.

:class:`Metrics` owns the metric objects of one server process and renders ``/metrics``.
Labels take a few fixed values only (route group, status class, stage, catalogue kind;
the collection id only with ``TILER_METRICS_COLLECTION_LABELS``), never a path or a query.

With several worker processes (``tiler serve --workers N``) prometheus-client runs in its
multiprocess mode: every process writes its values to files in ``PROMETHEUS_MULTIPROC_DIR``
and ``/metrics``, whichever worker answers it, adds up all of them (counters and histograms
summed; the admission gauges summed over live workers). The mode is chosen when
prometheus-client is imported, from that variable, which ``tiler serve`` sets for its
workers.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Literal

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)

from tiler.api.gate import Gate
from tiler.api.requests_log import Route, Work
from tiler.engine.netstats import NETWORK_STATS

#: seconds: from a cached tile (~1 ms) to the request timeout (60 s)
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
#: seconds of one stage of a mosaic
STAGE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
#: items per request (TILER_MAX_ITEMS_PER_TILE is 500 by default)
ITEM_BUCKETS = (0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
#: the work counts a mosaic response reports
ITEM_KINDS = ("considered", "read", "used", "skipped")
#: how the multiprocess mode combines the workers' values of a gauge
GaugeMode = Literal["livesum", "livemax"]
#: statuses of a collection's route that come from its catalogue (503 without Retry-After)
CATALOG_STATUSES = (502, 503, 504)


def multiprocess_mode() -> bool:
    """Whether prometheus-client writes values to files (``PROMETHEUS_MULTIPROC_DIR``)."""
    return bool(getattr(values.ValueClass, "_multiprocess", False))


def status_class(status: int) -> str:
    """``2xx``, ``3xx``, ``4xx`` or ``5xx``."""
    return f"{min(max(status // 100, 1), 5)}xx"


class Metrics:
    """The metrics of one server process.

    Args:
        collection_labels: label request counts and latencies with the collection id.
        catalog_kinds: collection id -> its catalogue's kind (``MemoryCatalog``,
            ``PgstacCatalog``, ``StacApiCatalog``).
    """

    def __init__(
        self, collection_labels: bool = False, catalog_kinds: dict[str, str] | None = None
    ) -> None:
        self.collection_labels = collection_labels
        self.catalog_kinds = catalog_kinds or {}
        self.multiprocess = multiprocess_mode()
        self.registry = CollectorRegistry()
        if self.multiprocess:
            multiprocess.MultiProcessCollector(self.registry)  # type: ignore[no-untyped-call]
        self._reg = None if self.multiprocess else self.registry
        labels = ("group", "status", *(("collection",) if collection_labels else ()))
        self.requests = self._counter(
            "tiler_http_requests",
            "HTTP requests answered, by route group and status class.",
            labels,
        )
        self.latency = self._histogram(
            "tiler_http_request_duration_seconds",
            "Time from a request's arrival to the end of its answer.",
            labels,
            LATENCY_BUCKETS,
        )
        self.stages = self._histogram(
            "tiler_mosaic_stage_seconds",
            "Time of each stage of a computed mosaic (Server-Timing: search = the catalogue "
            "search, quality = the quality pass's reads, bands = the output bands' reads, "
            "render = the image's encoding).",
            ("group", "stage"),
            STAGE_BUCKETS,
        )
        self.items = self._histogram(
            "tiler_mosaic_items",
            "Items per computed mosaic: considered (selected by the search), read, used "
            "(won a pixel), skipped (a file missing, broken or too slow).",
            ("group", "kind"),
            ITEM_BUCKETS,
        )
        self.cache = self._counter(
            "tiler_tile_cache",
            "Tiles answered from the rendered-tile cache (hit) or computed (miss).",
            ("result",),
        )
        self.in_flight = self._gauge(
            "tiler_admission_in_flight", "Tiles, points and exports being computed (all workers)."
        )
        self.queued = self._gauge(
            "tiler_admission_queued", "Requests waiting for a computation slot (all workers)."
        )
        self.limit = self._gauge(
            "tiler_admission_limit", "Computation slots (TILER_MAX_IN_FLIGHT, all workers)."
        )
        self.shed = self._counter(
            "tiler_admission_shed", "Requests refused with 503 and Retry-After (busy)."
        )
        self.coalesced = self._counter(
            "tiler_admission_coalesced",
            "Requests answered with a copy of an identical request's answer.",
        )
        self.workers = self._gauge("tiler_workers", "Worker processes reporting.")
        self.catalog_search = self._histogram(
            "tiler_catalog_search_seconds",
            "Item searches of computed mosaics, by catalogue kind (cached searches included).",
            ("kind",),
            STAGE_BUCKETS,
        )
        self.catalog_failures = self._counter(
            "tiler_catalog_failures",
            "Answers 502, 503 (not busy) and 504 of a collection's routes, by catalogue kind: "
            "its database or API failed, was unreachable or too slow (a 504 may also be the "
            "request's own deadline).",
            ("kind", "status"),
        )
        self.catalog_unavailable = self._gauge(
            "tiler_catalog_unavailable",
            "Catalogues found unreachable by the latest /readyz, by kind (most of any worker).",
            ("kind",),
            mode="livemax",
        )
        self.storage_requests = self._counter(
            "tiler_storage_requests",
            "HTTP requests GDAL sent to object storage and web servers, by scheme (http = "
            "/vsicurl/, http and https URLs; s3 = /vsis3/; az = /vsiaz/; gs, adls, ...).",
            ("scheme",),
        )
        self.storage_bytes = self._counter(
            "tiler_storage_bytes",
            "Body bytes GDAL received from object storage and web servers, by scheme.",
            ("scheme",),
        )
        self.network = NETWORK_STATS
        self.network.enable()  # counts start now (reads before this one are dropped)
        self.workers.set(1)

    def _counter(self, name: str, doc: str, labels: Sequence[str] = ()) -> Counter:
        return Counter(name, doc, labels, registry=self._reg)

    def _histogram(
        self, name: str, doc: str, labels: Sequence[str], buckets: Sequence[float]
    ) -> Histogram:
        return Histogram(name, doc, labels, buckets=buckets, registry=self._reg)

    def _gauge(
        self, name: str, doc: str, labels: Sequence[str] = (), mode: GaugeMode = "livesum"
    ) -> Gauge:
        return Gauge(name, doc, labels, registry=self._reg, multiprocess_mode=mode)

    def render(self) -> tuple[bytes, str]:
        """The text exposition of every metric (all workers) and its content type."""
        self.count_storage()
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def count_storage(self) -> None:
        """Add GDAL's network requests and bytes since the previous sample (this process).

        GDAL counts for the whole process, whichever thread reads, so each worker adds its
        own after every answer that may have read files and when it renders ``/metrics``.
        """
        for scheme, traffic in self.network.sample().items():
            self.storage_requests.labels(scheme).inc(traffic.requests)
            self.storage_bytes.labels(scheme).inc(traffic.bytes)

    def observe(self, route: Route, status: int, seconds: float, work: Work) -> None:
        """Count one answered request."""
        labels = [route.group, status_class(status)]
        if self.collection_labels:
            labels.append(route.collection or "-")
        self.requests.labels(*labels).inc()
        self.latency.labels(*labels).observe(seconds)
        if work.cache is not None and route.group == "tile":
            self.cache.labels(work.cache).inc()
        if route.group != "health" and work.cache != "hit" and not work.coalesced:
            self.count_storage()  # this answer's reads (and any other thread's so far)
        kind = self.catalog_kinds.get(route.collection)
        if kind and status in CATALOG_STATUSES and not work.retry_after:
            self.catalog_failures.labels(kind, str(status)).inc()
        if work.read is None or work.coalesced or work.cache == "hit":
            return  # no mosaic computed for this answer
        for stage, spent in work.timings.items():
            self.stages.labels(route.group, stage).observe(spent)
            if stage == "search" and kind:
                self.catalog_search.labels(kind).observe(spent)
        counts = (work.considered, work.read, work.used, work.skipped)
        for name, count in zip(ITEM_KINDS, counts, strict=True):
            if count is not None:
                self.items.labels(route.group, name).observe(count)

    def readiness(self, states: dict[str, dict[str, Any]]) -> None:
        """Record the catalogues' states of a readiness check (collection id -> health)."""
        down: dict[str, int] = dict.fromkeys(self.catalog_kinds.values(), 0)
        for cid, state in states.items():
            kind = self.catalog_kinds.get(cid)
            if kind and state.get("status") != "ok":
                down[kind] += 1
        for kind, count in down.items():
            self.catalog_unavailable.labels(kind).set(count)

    def close(self) -> None:
        """This process stops serving: its live gauges leave the sums."""
        if self.multiprocess:
            multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


class ObservedGate(Gate):
    """A :class:`~tiler.api.gate.Gate` whose counters are also metrics.

    Every change of ``in_flight`` or ``queued`` sets its gauge, every increment of
    ``refused`` or ``coalesced`` counts (the admission middleware changes them).
    """

    metrics: Metrics | None = None

    def watch(self, metrics: Metrics) -> ObservedGate:
        """Report to ``metrics`` from now on; returns the gate."""
        self.metrics = metrics
        metrics.limit.set(self.limit)
        metrics.in_flight.set(self.in_flight)
        metrics.queued.set(self.queued)
        return self

    def __setattr__(self, name: str, value: Any) -> None:
        """Set an attribute; a counter's change goes to the metrics."""
        metrics = self.metrics
        if metrics is not None:
            if name == "in_flight":
                metrics.in_flight.set(value)
            elif name == "queued":
                metrics.queued.set(value)
            elif name == "refused" and value > self.refused:
                metrics.shed.inc(value - self.refused)
            elif name == "coalesced" and value > self.coalesced:
                metrics.coalesced.inc(value - self.coalesced)
        super().__setattr__(name, value)
