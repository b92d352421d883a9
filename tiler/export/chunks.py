"""One chunk of an export, as a Dask task runs it on a worker.

A task gets the export's :class:`ExportSpec` (source strings and settings, never open
catalogues), its chunk grid and the export's selection (item id -> position in collection
order over the whole grid). The worker opens the catalogue and an engine once per process
(:class:`RunnerCache`), searches the catalogue for the chunk's own footprint (no items
limit), keeps the items of the export's selection, and runs the engine on the chunk.
``_index`` is the winner's position in the whole export's selection, as the oracle of the
whole grid has it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy
from shapely.geometry.base import BaseGeometry

from tiler.catalog.baked import MASKED, VALID
from tiler.catalog.base import Catalog, ItemPage
from tiler.catalog.filters import Search, make_search
from tiler.catalog.models import CollectionInfo, Item
from tiler.catalog.sources import open_catalogs
from tiler.engine.budget import Budget
from tiler.engine.expression import parse
from tiler.engine.io import GDAL_DEFAULTS, ReadOptions, remember_default_transforms
from tiler.engine.outputs import INDEX
from tiler.engine.service import Engine
from tiler.errors import CollectionLoadError
from tiler.export.grid import ChunkGrid, Window
from tiler.settings import Settings

logger = logging.getLogger(__name__)


class ExportError(RuntimeError):
    """An export cannot be planned or run (its message says why)."""


@dataclass(frozen=True)
class ExportSpec:
    """What every chunk computes: where the items are, which ones, and the layer.

    Attributes:
        sources: collection files (absolute paths), PgSTAC URLs or STAC API collection
            URLs, as ``tiler serve`` takes them.
        collection: the collection id.
        quality: the quality expression (over band names).
        bands: the output bands (band names and derived bands).
        datetime, filter, sortby: the STAC API filters and order.
        unscale: apply scale/offset.
        settings: the settings catalogues and engines are made with.
    """

    sources: tuple[str, ...]
    collection: str
    quality: str
    bands: tuple[str, ...]
    datetime: str | None = None
    filter: str | None = None
    sortby: str | None = None
    unscale: bool = False
    settings: Settings = field(default_factory=Settings, compare=False)

    def search(self) -> Search:
        """The parsed selection (raises the catalogue's errors on malformed values)."""
        return make_search(datetime=self.datetime, filter=self.filter, sortby=self.sortby)

    def options(self) -> ReadOptions:
        """The read options."""
        return ReadOptions(unscale=self.unscale)

    def fingerprint(self) -> str:
        """A digest of what decides the pixels (not the settings)."""
        text = json.dumps(
            [
                self.sources,
                self.collection,
                self.quality,
                self.bands,
                self.datetime,
                self.filter,
                self.sortby,
                self.unscale,
            ]
        )
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class ChunkResult:
    """A chunk's pixels and what it took.

    Attributes:
        window: the chunk's place in the grid.
        pixels: (bands + 1, rows, cols) in the export's dtype: the output bands' values
            (0 where masked), then the validity band (255 valid, 0 masked); None once the
            worker has written them to the chunk's part itself
            (:func:`tiler.export.parts.compute_part`).
        considered: items the chunk's search selected.
        read: items whose quality was read.
        skipped: items skipped, with the reason.
        seconds: time the chunk took on its worker.
    """

    window: Window
    pixels: numpy.ndarray | None
    considered: int = 0
    read: int = 0
    skipped: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


class Selection(Catalog):
    """A catalogue's search kept to the export's selection (and without an items limit)."""

    def __init__(self, catalog: Catalog, positions: Mapping[str, int]) -> None:
        self.id = catalog.id
        self.catalog = catalog
        self.positions = positions
        self.selected: list[Item] = []

    def info(self) -> CollectionInfo:
        """The catalogue's description."""
        return self.catalog.info()

    def search(
        self, search: Search, geometry: BaseGeometry | None, limit: int | None = None
    ) -> list[Item]:
        """The items of the selection under ``geometry``, in collection order (kept)."""
        items = self.catalog.search(search, geometry, None)
        self.selected = [item for item in items if item.id in self.positions]
        return self.selected

    def page(self, search: Search, limit: int, offset: int) -> ItemPage:
        """The catalogue's page."""
        return self.catalog.page(search, limit, offset)

    def sample(self) -> Item | None:
        """The catalogue's sample item."""
        return self.catalog.sample()


def configure_process() -> None:
    """GDAL's settings and rio-tiler's transform of a server process, in this process."""
    for key, value in GDAL_DEFAULTS.items():
        os.environ.setdefault(key, value)
    remember_default_transforms()


def open_catalog(spec: ExportSpec) -> Catalog:
    """The catalogue of ``spec.collection`` from ``spec.sources`` (the others closed).

    Raises:
        ExportError: a source cannot be read, or none has the collection.
    """
    try:
        catalogs = open_catalogs(list(spec.sources), spec.settings)
    except CollectionLoadError as exc:
        raise ExportError(str(exc)) from exc
    chosen = catalogs.pop(spec.collection, None)
    for other in catalogs.values():
        other.close()
    if chosen is None:
        known = ", ".join(sorted(catalogs)) or "(none)"
        raise ExportError(f"no source has the collection {spec.collection!r}; they have: {known}")
    return chosen


class ChunkRunner:
    """A worker's catalogue and engine for one export, reused by its chunks."""

    def __init__(self, spec: ExportSpec) -> None:
        configure_process()
        settings = spec.settings
        self.spec = spec
        self.catalog = open_catalog(spec)
        info = self.catalog.info()
        self.quality = parse(spec.quality, info.bands, info.aliases)
        self.search = spec.search()
        self.engine = Engine.from_settings(settings, max_items=sys.maxsize)

    def close(self) -> None:
        """Close the engine and the catalogue."""
        self.engine.close()
        self.catalog.close()

    def run(
        self, grid: ChunkGrid, window: Window, dtype: str, positions: Mapping[str, int]
    ) -> ChunkResult:
        """The chunk's mosaic, cast to ``dtype``, with its validity band.

        Raises:
            ExportError: a value does not fit ``dtype`` (an item's band is of a wider type
                than the export's files said).
        """
        t0 = time.perf_counter()
        selection = Selection(self.catalog, positions)
        bands = list(self.spec.bands)
        image, stats = self.engine.mosaic(
            selection, self.search, grid, self.quality, bands, self.spec.options(), Budget()
        )
        data = image.array.data
        valid = numpy.asarray(~numpy.ma.getmaskarray(image.array).any(axis=0))
        if INDEX in bands:
            k = bands.index(INDEX)
            where = numpy.asarray([positions[item.id] for item in selection.selected] or [0])
            data[k] = numpy.where(valid, where[data[k].astype("int64")], 0)
        pixels = _pack(data, valid, numpy.dtype(dtype), window)
        return ChunkResult(
            window,
            pixels,
            considered=stats.considered,
            read=stats.read,
            skipped=dict(stats.skipped),
            seconds=time.perf_counter() - t0,
        )


def _pack(
    data: numpy.ndarray, valid: numpy.ndarray, dtype: numpy.dtype, window: Window
) -> numpy.ndarray:
    """The values (0 where masked) in ``dtype``, then the validity band."""
    count = data.shape[0]
    values = numpy.where(valid, data, 0)
    out = numpy.zeros((count + 1, *valid.shape), dtype=dtype)
    out[:count] = values.astype(dtype)
    if not numpy.array_equal(out[:count].astype(values.dtype), values, equal_nan=True):
        raise ExportError(
            f"chunk {window.key}: values of type {data.dtype} do not fit the export's type "
            f"{dtype} (an item's band is of a wider type than the files sampled)"
        )
    out[count] = numpy.where(valid, VALID, MASKED).astype(dtype)
    return out


class RunnerCache:
    """The runners of a worker process, by export: the last few kept open.

    A runner is closed only when no task uses it (a worker with several threads may run
    chunks of several exports at once).
    """

    def __init__(self, size: int = 2) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._runners: dict[str, ChunkRunner] = {}
        self._users: dict[str, int] = {}

    @contextmanager
    def use(self, spec: ExportSpec) -> Iterator[ChunkRunner]:
        """The runner of ``spec`` (made on first use) while the block runs."""
        key = spec.fingerprint()
        with self._lock:
            runner = self._runners.pop(key, None) or ChunkRunner(spec)
            self._runners[key] = runner  # the most recently used last
            self._users[key] = self._users.get(key, 0) + 1
        try:
            yield runner
        finally:
            with self._lock:
                self._users[key] -= 1
                idle = [k for k in self._runners if not self._users.get(k)]
                for old in idle[: max(0, len(self._runners) - self.size)]:
                    self._runners.pop(old).close()
                    self._users.pop(old, None)


#: the runners of this process (a Dask worker keeps its module state between tasks)
RUNNERS = RunnerCache()


def run_chunk(
    spec: ExportSpec,
    grid: ChunkGrid,
    window: Window,
    dtype: str,
    positions: Mapping[str, int],
) -> ChunkResult:
    """The Dask task of one chunk (see :class:`ChunkRunner`)."""
    with RUNNERS.use(spec) as runner:
        return runner.run(grid, window, dtype, positions)


def output_dtype(
    bands: Sequence[str], band_dtypes: Mapping[str, str], unscale: bool
) -> numpy.dtype:
    """The export's data type: wide enough for every output band and the validity band.

    Args:
        bands: the output bands.
        band_dtypes: the stored type of each band read from files.
        unscale: values are scaled (float64).
    """
    derived = {"quality": "float64", INDEX: "int32", "_date": "float64", "_doy": "float64"}
    kinds = []
    for name in bands:
        if name in derived:
            kinds.append(numpy.dtype(derived[name]))
        elif unscale:
            kinds.append(numpy.dtype("float64"))
        else:
            kinds.append(numpy.dtype(band_dtypes[name]))
    dtype = numpy.result_type(*kinds, numpy.uint8)
    if dtype == numpy.int8:
        dtype = numpy.dtype("int16")  # 255 must fit
    return numpy.dtype(dtype)
