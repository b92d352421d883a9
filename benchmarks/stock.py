"""Stock titiler over the same STAC items: what a titiler user writes for a best-pixel mosaic.

``titiler.mosaic``'s ``MosaicTilerFactory`` with a minimal rio-tiler ``BaseBackend``:

- ``assets_for_tile``: the items whose ``bbox`` intersects the tile, in collection order
  (datetime, then id: the same order, and so the same tie order, as the quality mosaic);
- reader: rio-tiler's ``STACReader`` over each item (as titiler-pgstac's ``PgSTACReader`` does,
  the item itself is the reader's input), reading the band files of the requested assets;
- layer: titiler's ``AssetsExprParams``; the quality goes LAST and the highest wins
  (``pixel_selection=lastbandhigh``), e.g.
  ``?assets=B04&assets=B03&assets=B02&assets=MSK_CLDPRB&expression=b1;b2;b3;-b4``.

In rio-tiler 9, ``MultiBaseReader.tile`` stacks the assets in the order given and names the
bands ``b1 .. bN``; the expression refers to those names (asset names are not accepted).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import attr
import pystac
from fastapi import FastAPI
from morecantile import Tile
from rasterio.crs import CRS
from rasterio.warp import transform_bounds
from rio_tiler.constants import WGS84_CRS
from rio_tiler.io import STACReader
from rio_tiler.mosaic.backend import BaseBackend
from titiler.core.dependencies import AssetsExprParams
from titiler.core.errors import DEFAULT_STATUS_CODES, add_exception_handlers
from titiler.core.resources.enums import OptionalHeader
from titiler.mosaic.errors import MOSAIC_STATUS_CODES
from titiler.mosaic.factory import MosaicTilerFactory

#: query of a stock tile equivalent to ``quality=-MSK_CLDPRB&bands=B04,B03,B02``
STOCK_QUERY = (
    "assets=B04&assets=B03&assets=B02&assets=MSK_CLDPRB"
    "&expression=b1;b2;b3;-b4&pixel_selection=lastbandhigh"
)


class ItemReader(STACReader):
    """``STACReader`` whose input is a ``pystac.Item`` (no fetch)."""

    def __attrs_post_init__(self) -> None:
        """Use the item given as input."""
        if isinstance(self.input, pystac.Item):
            self.item = self.input
        super().__attrs_post_init__()


@functools.lru_cache(maxsize=8)
def load_items(path: str) -> tuple[pystac.Item, ...]:
    """The items of a FeatureCollection file, hrefs made absolute, in collection order."""
    base = Path(path).resolve().parent
    doc = json.loads(Path(path).read_text())
    items = []
    for feature in doc["features"]:
        for asset in feature["assets"].values():
            if "://" not in asset["href"] and not Path(asset["href"]).is_absolute():
                asset["href"] = str(base / asset["href"])
        items.append(pystac.Item.from_dict(feature, preserve_dict=False))
    items.sort(key=lambda it: (it.datetime, it.id))
    return tuple(items)


def _intersects(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]


@attr.s
class ItemsBackend(BaseBackend):
    """A mosaic backend over a STAC FeatureCollection file (input = its path)."""

    reader: type[ItemReader] = attr.ib(default=ItemReader)
    minzoom: int = attr.ib(default=0)
    maxzoom: int = attr.ib(default=24)
    items: tuple[pystac.Item, ...] = attr.ib(init=False)

    def __attrs_post_init__(self) -> None:
        """Load the items; bounds in lon/lat."""
        self.items = load_items(self.input)
        boxes = [it.bbox for it in self.items if it.bbox]
        self.bounds = (
            min(b[0] for b in boxes),
            min(b[1] for b in boxes),
            max(b[2] for b in boxes),
            max(b[3] for b in boxes),
        )
        self.crs = WGS84_CRS

    def _in_bbox(self, bbox: tuple[float, ...]) -> list[pystac.Item]:
        return [it for it in self.items if it.bbox and _intersects(tuple(it.bbox), bbox)]

    def assets_for_tile(self, x: int, y: int, z: int, **kwargs: Any) -> list[pystac.Item]:
        """Items whose bbox intersects the tile."""
        return self._in_bbox(tuple(self.tms.bounds(Tile(x, y, z))))

    def assets_for_point(
        self, lng: float, lat: float, coord_crs: CRS | None = None, **kwargs: Any
    ) -> list[pystac.Item]:
        """Items whose bbox contains the point."""
        if coord_crs is not None and coord_crs != WGS84_CRS:
            lng, lat, _, _ = transform_bounds(coord_crs, WGS84_CRS, lng, lat, lng, lat)
        return self._in_bbox((lng, lat, lng, lat))

    def assets_for_bbox(
        self,
        xmin: float,
        ymin: float,
        xmax: float,
        ymax: float,
        coord_crs: CRS | None = None,
        **kwargs: Any,
    ) -> list[pystac.Item]:
        """Items whose bbox intersects the bbox."""
        if coord_crs is not None and coord_crs != WGS84_CRS:
            xmin, ymin, xmax, ymax = transform_bounds(coord_crs, WGS84_CRS, xmin, ymin, xmax, ymax)
        return self._in_bbox((xmin, ymin, xmax, ymax))

    def asset_name(self, asset: Any) -> str:
        """The item id."""
        return str(asset.id)


def create_stock_app(collection: Path) -> FastAPI:
    """Stock titiler: ``/mosaic/tiles/{tms}/{z}/{x}/{y}.{format}?`` + :data:`STOCK_QUERY`."""
    path = str(Path(collection).resolve())
    load_items(path)

    def mosaic_path() -> str:
        return path

    factory = MosaicTilerFactory(
        backend=ItemsBackend,
        dataset_reader=ItemReader,
        path_dependency=mosaic_path,
        layer_dependency=AssetsExprParams,
        optional_headers=[OptionalHeader.server_timing, OptionalHeader.x_assets],
        router_prefix="/mosaic",
    )
    app = FastAPI(title="stock titiler (lastbandhigh)")
    app.include_router(factory.router, prefix="/mosaic")
    add_exception_handlers(app, {**DEFAULT_STATUS_CODES, **MOSAIC_STATUS_CODES})
    return app
