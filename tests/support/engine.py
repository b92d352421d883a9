"""Driving the engine over a catalogue (the code under test), as the tests do."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from shapely.geometry import box

from support.stac_files import WMQ
from tiler.catalog.base import Catalog
from tiler.catalog.filters import Search
from tiler.catalog.models import Band, Item
from tiler.engine.expression import parse
from tiler.engine.grids import PartGrid, TileGrid
from tiler.engine.io import ReadOptions
from tiler.engine.mosaic import MosaicStats
from tiler.engine.service import Engine

WAIT = 20  # seconds an event wait may take before a test fails (never reached when right)


def item(name: str, href: str = "/nowhere.tif") -> Item:
    """A one-band item over (0, 0, 1, 1) at 2020-07-01 (the scheduler's unit tests)."""
    return Item(
        id=name,
        datetime=dt.datetime(2020, 7, 1, tzinfo=dt.UTC),
        geometry=box(0, 0, 1, 1),
        properties={},
        bands={"b": Band(name="b", href=href)},
    )


@dataclass
class Mosaicker:
    """Tiles, parts and items of one catalogue through an :class:`Engine`."""

    catalog: Catalog
    engine: Engine
    tms: Any = field(default_factory=lambda: WMQ)

    def grid(self, t: Any, tilesize: int = 256) -> TileGrid:
        return TileGrid(self.tms, t.x, t.y, t.z, tilesize)

    def items(self, t: Any, search: Search | None = None) -> list[Item]:
        return self.catalog.search(search or Search(), self.grid(t).footprint())

    def tile(
        self,
        t: Any,
        quality: str,
        bands: list[str],
        search: Search | None = None,
        options: ReadOptions | None = None,
    ) -> tuple[Any, MosaicStats]:
        expr = parse(quality, self.catalog.info().bands)
        return self.engine.mosaic(
            self.catalog, search or Search(), self.grid(t), expr, bands, options or ReadOptions()
        )

    def part(
        self,
        bbox: tuple[float, float, float, float],
        crs: Any,
        size: tuple[int, int],
        quality: str,
        bands: list[str],
    ) -> tuple[Any, MosaicStats, list[Item]]:
        grid = PartGrid(bbox, crs, crs, size[0], size[1])
        expr = parse(quality, self.catalog.info().bands)
        img, stats = self.engine.mosaic(self.catalog, Search(), grid, expr, bands, ReadOptions())
        return img, stats, self.catalog.search(Search(), grid.footprint())
