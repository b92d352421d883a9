"""The index raster of a raster layout: a VRT whose pixel values are their own positions.

Read onto a grid through the same rio-tiler call as a file of that layout, it says which
source pixel, of which overview level, lands on each output pixel (see
:mod:`tiler.engine.sparse`, which gathers files' values from those pixels).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape

import numpy
from rasterio.errors import NotGeoreferencedWarning
from rasterio.io import MemoryFile

#: opens overview level ``k`` (0: the first overview) of the file being read
LevelOpener = Callable[[int], AbstractContextManager[Any]]


@dataclass(frozen=True)
class Level:
    """The pixels of one level that a grid copies."""

    level: int  # 0: full resolution, k: the k-th overview
    window: tuple[tuple[int, int], tuple[int, int]]  # rows, columns of that level
    target: numpy.ndarray  # flat positions in the grid
    source: numpy.ndarray  # flat positions in the window


class IndexRaster:
    """A UInt32 VRT in /vsimem, as many bands as the file: ``offset[level] + position + 1``.

    Each band of each level is GDAL's ``sum`` pixel function of a row of column numbers and
    a column of ``row * width`` numbers, both stretched over the level: nothing is made
    per pixel. The bands are the file's count so that a read of some of them takes the
    same path through GDAL's warped VRT as the file's (a read of all bands is warped as
    one window, of some of them block by block: with the approximate transformer, the
    pixels chosen differ).
    """

    def __init__(self, ds: Any, sizes: list[tuple[int, int]]) -> None:
        self.sizes = sizes
        self.offsets = numpy.cumsum([0] + [w * h for w, h in sizes])
        self._files: list[MemoryFile] = []
        count = int(ds.count)
        levels = [self._level(k, w, h, count) for k, (w, h) in enumerate(sizes)]
        gt = ", ".join(repr(v) for v in ds.transform.to_gdal())
        w0, h0 = sizes[0]
        bands = "".join(
            f'<VRTRasterBand dataType="UInt32" band="{b}"><NoDataValue>0</NoDataValue>'
            f"<SimpleSource><SourceFilename>{levels[0]}</SourceFilename>"
            f"<SourceBand>{b}</SourceBand></SimpleSource>"
            + "".join(
                f"<Overview><SourceFilename>{f}</SourceFilename>"
                f"<SourceBand>{b}</SourceBand></Overview>"
                for f in levels[1:]
            )
            + "</VRTRasterBand>"
            for b in range(1, count + 1)
        )
        self.vrt = MemoryFile(
            (
                f'<VRTDataset rasterXSize="{w0}" rasterYSize="{h0}">'
                f"<SRS>{escape(ds.crs.to_wkt())}</SRS><GeoTransform>{gt}</GeoTransform>"
                f"{bands}</VRTDataset>"
            ).encode(),
            ext=".vrt",
        )

    def _line(self, values: numpy.ndarray, width: int, height: int) -> str:
        mem = MemoryFile(ext=".tif")
        profile = {"driver": "GTiff", "width": width, "height": height, "count": 1}
        with warnings.catch_warnings():  # a line of numbers: no georeferencing
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with mem.open(**profile, dtype="uint32") as dst:
                dst.write(values.astype("uint32").reshape(1, height, width))
        self._files.append(mem)
        return str(mem.name)

    def _level(self, k: int, width: int, height: int, count: int) -> str:
        """A VRT of level ``k``: column numbers plus row starts, stretched, in each band."""
        cols = self._line(numpy.arange(width), width, 1)
        first = int(self.offsets[k]) + 1
        rows = self._line(numpy.arange(height) * width + first, 1, height)
        dst = f'<DstRect xOff="0" yOff="0" xSize="{width}" ySize="{height}"/>'
        source = (
            "<SimpleSource><SourceFilename>{f}</SourceFilename><SourceBand>1</SourceBand>"
            '<SrcRect xOff="0" yOff="0" xSize="{w}" ySize="{h}"/>{dst}</SimpleSource>'
        )
        band = (
            '<VRTRasterBand dataType="UInt32" band="{b}" subClass="VRTDerivedRasterBand">'
            "<NoDataValue>0</NoDataValue><PixelFunctionType>sum</PixelFunctionType>"
            "<SourceTransferType>Float64</SourceTransferType>"
            + source.format(f=cols, w=width, h=1, dst=dst)
            + source.format(f=rows, w=1, h=height, dst=dst)
            + "</VRTRasterBand>"
        )
        mem = MemoryFile(
            (
                f'<VRTDataset rasterXSize="{width}" rasterYSize="{height}">'
                + "".join(band.format(b=b) for b in range(1, count + 1))
                + "</VRTDataset>"
            ).encode(),
            ext=".vrt",
        )
        self._files.append(mem)
        return str(mem.name)

    def plan(self, values: numpy.ma.MaskedArray) -> tuple[Level, ...]:
        """Where each valid pixel of a warped index (its first band) comes from."""
        target = numpy.flatnonzero(~numpy.ma.getmaskarray(values[0]))
        flat = values.data[0].reshape(-1)[target].astype("int64") - 1
        if not flat.size:
            return ()
        low, high = int(flat.min()), int(flat.max())
        first, last = (int(i) for i in numpy.searchsorted(self.offsets, [low, high], "right") - 1)
        if first == last:  # one level (the usual case): no per-pixel level lookup
            parts = [(first, target, flat - int(self.offsets[first]))]
        else:
            level = numpy.searchsorted(self.offsets, flat, side="right") - 1
            parts = [
                (k, target[level == k], flat[level == k] - int(self.offsets[k]))
                for k in range(first, last + 1)
                if (level == k).any()
            ]
        out = []
        for k, where, position in parts:
            r, c = numpy.divmod(position, self.sizes[k][0])
            r0, r1 = int(r.min()), int(r.max()) + 1
            c0, c1 = int(c.min()), int(c.max()) + 1
            source = (r - r0) * (c1 - c0) + (c - c0)
            window = ((r0, r1), (c0, c1))
            out.append(Level(k, window, where.astype("int32"), source.astype("int32")))
        return tuple(out)


def level_sizes(ds: Any, open_level: LevelOpener) -> list[tuple[int, int]] | None:
    """(width, height) of each level of ``ds`` (None: its bands' overviews differ)."""
    factors = {tuple(ds.overviews(i)) for i in ds.indexes}
    if len(factors) != 1:
        return None
    sizes = [(ds.width, ds.height)]
    for k in range(len(next(iter(factors)))):
        with open_level(k) as level:
            sizes.append((level.width, level.height))
    return sizes
