"""Output grids: where a request's pixels are, and how one file is read onto them.

Every read goes through rio-tiler's ``Reader.tile`` / ``Reader.part`` / ``Reader.point``,
so the pixels are exactly those of a naive per-item read (same overview choice, same
warp); a grid much larger than a file is warped once per raster layout and gathered
(:func:`~tiler.engine.sparse.sparse_read`), with the same result. A grid also knows its
footprint in lon/lat, which is what catalogues search.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy
from morecantile import Tile, TileMatrixSet
from rasterio.crs import CRS
from rasterio.warp import transform_bounds
from rio_tiler.constants import WGS84_CRS
from rio_tiler.io import Reader
from rio_tiler.models import ImageData
from shapely.geometry import Point, box
from shapely.geometry.base import BaseGeometry

from tiler.engine.sparse import sparse_read


class Grid(Protocol):
    """The output pixel grid of a request."""

    @property
    def width(self) -> int:
        """Columns."""
        ...

    @property
    def height(self) -> int:
        """Rows."""
        ...

    @property
    def tms(self) -> TileMatrixSet | None:
        """The tile matrix set a reader must be opened with (None: rio-tiler's default)."""
        ...

    def read(self, src: Reader, indexes: list[int], **kwargs: Any) -> numpy.ma.MaskedArray:
        """Bands ``indexes`` of ``src`` on this grid: a 3-D (bands, rows, cols) array."""
        ...

    def footprint(self) -> BaseGeometry:
        """The grid's area in lon/lat (what a catalogue searches)."""
        ...

    def empty(self, count: int, dtype: Any) -> ImageData:
        """A fully masked image on this grid."""
        ...


def _masked(count: int, height: int, width: int, dtype: Any) -> numpy.ma.MaskedArray:
    shape = (count, height, width)
    return numpy.ma.MaskedArray(numpy.zeros(shape, dtype), mask=numpy.ones(shape, bool))


@dataclass(frozen=True)
class TileGrid:
    """A tile of a TileMatrixSet."""

    tms: TileMatrixSet
    x: int
    y: int
    z: int
    tilesize: int = 256

    @property
    def width(self) -> int:  # noqa: D102
        return self.tilesize

    @property
    def height(self) -> int:  # noqa: D102
        return self.tilesize

    def read(self, src: Reader, indexes: list[int], **kwargs: Any) -> numpy.ma.MaskedArray:
        """Read with ``Reader.tile`` (through :func:`sparse_read`)."""

        def tile(reader: Reader, bands: list[int], **kw: Any) -> numpy.ma.MaskedArray:
            img = reader.tile(self.x, self.y, self.z, tilesize=self.tilesize, indexes=bands, **kw)
            return img.array

        bounds = self.tms.xy_bounds(Tile(self.x, self.y, self.z))
        frame = (self.tms.rasterio_crs, (bounds[0], bounds[1], bounds[2], bounds[3]))
        return sparse_read(self, frame, src, indexes, kwargs, tile)

    def footprint(self) -> BaseGeometry:
        """Geographic bounds of the tile."""
        return box(*self.tms.bounds(Tile(self.x, self.y, self.z)))

    def empty(self, count: int, dtype: Any) -> ImageData:
        """A fully masked tile."""
        bounds = self.tms.xy_bounds(Tile(self.x, self.y, self.z))
        return ImageData(
            _masked(count, self.tilesize, self.tilesize, dtype),
            bounds=tuple(bounds),
            crs=self.tms.rasterio_crs,
        )


@dataclass(frozen=True)
class PartGrid:
    """A bbox (in ``bounds_crs``) read onto ``width`` x ``height`` pixels in ``dst_crs``."""

    bbox: tuple[float, float, float, float]
    bounds_crs: CRS
    dst_crs: CRS
    width: int
    height: int

    @property
    def tms(self) -> None:
        """Parts need no tile matrix set."""
        return None

    def read(self, src: Reader, indexes: list[int], **kwargs: Any) -> numpy.ma.MaskedArray:
        """Read with ``Reader.part`` (through :func:`sparse_read`)."""

        def part(reader: Reader, bands: list[int], **kw: Any) -> numpy.ma.MaskedArray:
            img = reader.part(
                self.bbox,
                dst_crs=self.dst_crs,
                bounds_crs=self.bounds_crs,
                width=self.width,
                height=self.height,
                indexes=bands,
                **kw,
            )
            return img.array

        w, s, e, n = self.bbox
        if self.bounds_crs != self.dst_crs:
            w, s, e, n = transform_bounds(self.bounds_crs, self.dst_crs, *self.bbox, densify_pts=21)
        frame = (self.dst_crs, (w, s, e, n))
        return sparse_read(self, frame, src, indexes, kwargs, part)

    def footprint(self) -> BaseGeometry:
        """Geographic bounds of the bbox (densified when it is in another CRS)."""
        bbox = self.bbox
        if self.bounds_crs != WGS84_CRS:
            bbox = transform_bounds(self.bounds_crs, WGS84_CRS, *bbox, densify_pts=21)
        return box(*bbox)

    def empty(self, count: int, dtype: Any) -> ImageData:
        """A fully masked image."""
        bounds = self.bbox
        if self.bounds_crs != self.dst_crs:
            bounds = transform_bounds(self.bounds_crs, self.dst_crs, *self.bbox, densify_pts=21)
        return ImageData(
            _masked(count, self.height, self.width, dtype), bounds=tuple(bounds), crs=self.dst_crs
        )


@dataclass(frozen=True)
class PointGrid:
    """One location (in ``coord_crs``): a 1 x 1 grid read with ``Reader.point``."""

    lon: float
    lat: float
    coord_crs: CRS = WGS84_CRS

    width = 1
    height = 1

    @property
    def tms(self) -> None:
        """Points need no tile matrix set."""
        return None

    def read(self, src: Reader, indexes: list[int], **kwargs: Any) -> numpy.ma.MaskedArray:
        """Read with ``Reader.point`` (which takes no reprojection method)."""
        kwargs.pop("reproject_method", None)
        pt = src.point(self.lon, self.lat, coord_crs=self.coord_crs, indexes=indexes, **kwargs)
        return pt.array.reshape(len(indexes), 1, 1)

    def lonlat(self) -> tuple[float, float]:
        """The location in lon/lat."""
        if self.coord_crs == WGS84_CRS:
            return self.lon, self.lat
        lon, lat, _, _ = transform_bounds(
            self.coord_crs, WGS84_CRS, self.lon, self.lat, self.lon, self.lat
        )
        return lon, lat

    def footprint(self) -> BaseGeometry:
        """A tiny disc around the point (footprints touching it are selected)."""
        return Point(*self.lonlat()).buffer(1e-9)

    def empty(self, count: int, dtype: Any) -> ImageData:
        """A masked 1 x 1 image."""
        lon, lat = self.lonlat()
        return ImageData(_masked(count, 1, 1, dtype), bounds=(lon, lat, lon, lat), crs=WGS84_CRS)
