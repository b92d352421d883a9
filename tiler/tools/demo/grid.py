"""The demo's pixel grid, band constants and smooth random fields.

The full demo grid is 1536 x 1536 pixels of 20 m on EPSG:32613 (UTM 13N) around
lon -103.19, lat 40.14. A smaller demo keeps the resolution and the centre and
covers less ground: :func:`demo_grid` snaps its upper-left corner to the 60 m
Sentinel-2 grid like the full one.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from rasterio.crs import CRS
from rasterio.transform import Affine

__all__ = [
    "BANDS",
    "CENTER_LONLAT",
    "DEMO_COLLECTION_ID",
    "DEMO_SIZE",
    "EPSG",
    "GRID_CRS",
    "LR_FACTOR",
    "LR_PAD",
    "MASK_BAND",
    "MASK_NODATA",
    "MGRS_TILE",
    "REFLECTANCE_NODATA",
    "RES",
    "BoolArray",
    "FloatArray",
    "Grid",
    "demo_grid",
    "smooth_noise",
]

FloatArray = npt.NDArray[np.float32]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.intp]

DEMO_COLLECTION_ID = "demo"
"""Collection id of every demo item."""

EPSG = 32613
GRID_CRS = CRS.from_epsg(EPSG)
CENTER_LONLAT = (-103.19, 40.14)
RES = 20.0
"""Pixel size, metres."""
DEMO_SIZE = 1536
"""Pixels per side of the full demo."""
MGRS_TILE = "13TFE"
"""The real MGRS tile containing the demo area."""

# Projected centre of the demo area and the grid its corners are snapped to. The
# full grid's upper-left corner is (638820.0, 4460220.0).
_CENTER_X = 654189.45
_CENTER_Y = 4444866.36
_SNAP = 60.0

LR_FACTOR = 8
"""Clouds and other smooth fields are made on a grid this much coarser, then upsampled."""
LR_PAD = 48
"""Coarse pixels around the crop of a cloud field: room for the shadow offset."""

BANDS = ("B2", "B3", "B4", "B8")
MASK_BAND = "MSK_CLDPRB"
REFLECTANCE_NODATA = 0
MASK_NODATA = 255


@dataclass(frozen=True)
class Grid:
    """A square demo grid of :data:`RES` metre pixels on :data:`GRID_CRS`.

    Attributes:
        size: Pixels per side, a multiple of :data:`LR_FACTOR`.
        left: Easting of the upper-left corner, metres.
        top: Northing of the upper-left corner, metres.
    """

    size: int
    left: float
    top: float

    @property
    def transform(self) -> Affine:
        """The affine transform of the grid."""
        return Affine(RES, 0.0, self.left, 0.0, -RES, self.top)

    @property
    def coarse(self) -> int:
        """Pixels per side of the coarse grid of the smooth fields."""
        return self.size // LR_FACTOR

    def upsample(self, coarse: FloatArray) -> FloatArray:
        """Bilinear upsampling of a coarse field to the full grid.

        Args:
            coarse: Field on the coarse grid, shape (:attr:`coarse`, :attr:`coarse`).

        Returns:
            Field on the full (:attr:`size`, :attr:`size`) grid.
        """
        lo, hi, w = _upsample_index(self.size, LR_FACTOR, self.coarse)
        rows = coarse[lo] * (1.0 - w)[:, None] + coarse[hi] * w[:, None]
        out = rows[:, lo] * (1.0 - w)[None, :] + rows[:, hi] * w[None, :]
        fine: FloatArray = out.astype(np.float32, copy=False)
        return fine


def demo_grid(size: int = DEMO_SIZE) -> Grid:
    """The grid of a demo of ``size`` pixels per side around the demo centre.

    Args:
        size: Pixels per side; a multiple of :data:`LR_FACTOR`, at least 64 and at
            most 2048 (the landscape's field tables are 64 quarter sections wide).

    Returns:
        The grid; ``demo_grid()`` is the full demo's grid.

    Raises:
        ValueError: ``size`` is out of range or not a multiple of :data:`LR_FACTOR`.
    """
    if not isinstance(size, int) or isinstance(size, bool):
        raise ValueError(f"demo size must be an integer, not {size!r}")
    if size < 64 or size > 2048 or size % LR_FACTOR:
        raise ValueError(f"demo size must be a multiple of {LR_FACTOR} in 64..2048, not {size}")
    half = size * RES / 2.0
    left = round((_CENTER_X - half) / _SNAP) * _SNAP
    top = round((_CENTER_Y + half) / _SNAP) * _SNAP
    return Grid(size=size, left=float(left), top=float(top))


@functools.cache
def _upsample_index(n_out: int, factor: int, n_in: int) -> tuple[IntArray, IntArray, FloatArray]:
    """Indices and weights of a linear, pixel-centre aligned upsampling.

    Args:
        n_out: Output length.
        factor: Upsampling factor.
        n_in: Input length.

    Returns:
        Lower indices, upper indices and upper weights, each of length ``n_out``
        (cached: do not modify them).
    """
    pos = (np.arange(n_out, dtype=np.float64) + 0.5) / factor - 0.5
    pos = np.clip(pos, 0.0, n_in - 1.0)
    lo = np.floor(pos).astype(np.intp)
    hi = np.minimum(lo + 1, n_in - 1)
    return lo, hi, (pos - lo).astype(np.float32)


def smooth_noise(rng: np.random.Generator, n: int, scale: float, beta: float) -> FloatArray:
    """Periodic smooth random field with unit variance.

    Args:
        rng: Random generator.
        n: Side of the square field.
        scale: Size of the largest structures, in pixels.
        beta: Spectral slope of the amplitude (larger = smoother).

    Returns:
        A float32 array of shape (n, n), mean 0 and standard deviation 1.
    """
    white = rng.standard_normal((n, n))
    fy = np.fft.fftfreq(n)[:, None]
    fx = np.fft.rfftfreq(n)[None, :]
    k2 = fy * fy + fx * fx
    amplitude = (k2 + (1.0 / scale) ** 2) ** (-beta / 2.0) * np.exp(-k2 / 0.08)
    field = np.fft.irfft2(np.fft.rfft2(white) * amplitude, s=(n, n))
    field -= field.mean()
    field /= field.std()
    return field.astype(np.float32)
