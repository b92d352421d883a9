"""A synthetic, deterministic Sentinel-2-like demo collection.

The demo makes this Earth Engine example work out of the box::

    col = (ee.ImageCollection("COPERNICUS/S2_SR_HARMONIZED")
           .filterBounds(ee.Geometry.Point(-103.19, 40.14))
           .filterDate("2020-07-01", "2020-09-01"))
    best = col.qualityMosaic("-MSK_CLDPRB")   # least cloudy pixel
    worst = col.qualityMosaic("MSK_CLDPRB")   # cloudiest pixel
    # visualised with bands B4, B3, B2, min 0, max 4500

Nothing is downloaded: :func:`create_demo` paints 13 scenes of a fixed, made-up
landscape (centre-pivot circles, dryland wheat/fallow strips, rangeland, a river with
riparian trees, section-line roads, a small town) on one UTM grid (EPSG:32613,
1536 x 1536 pixels of 20 m, 30.72 km x 30.72 km around lon -103.19, lat 40.14), adds soft
cloud blobs with their shadows and a cloud probability band (``MSK_CLDPRB``, exactly
0 where clear), cuts some scenes at a diagonal swath edge, and writes Cloud Optimized
GeoTIFFs plus a GeoJSON FeatureCollection of STAC 1.0 Items (``demo.json``).

Every random number comes from fixed seeds, so one machine always produces the same
bytes for the same :data:`DEMO_VERSION`. (Other CPUs or numpy builds may differ in the
last bit of some floating point operations; bump :data:`DEMO_VERSION` whenever the
output changes on purpose, so caches created by older versions are not reused.)

A pixel is "cloudy" when ``MSK_CLDPRB > 0``; this includes the faint halo around each
cloud and its shadow (low probabilities, 1..15), which keeps shadows out of a
``-MSK_CLDPRB`` best-pixel mosaic. ``eo:cloud_cover`` is the percentage of cloudy
pixels within the scene footprint. Every pixel is clear in at least one scene, so the
best-pixel mosaic is cloud free.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import pathlib
import shutil
import tempfile
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import platformdirs
import rasterio
import shapely
from rasterio.crs import CRS
from rasterio.transform import Affine
from rasterio.warp import transform as warp_transform
from rasterio.warp import transform_geom
from shapely.geometry import box, mapping
from shapely.geometry.polygon import orient

logger = logging.getLogger(__name__)

__all__ = [
    "DEMO_COLLECTION_ID",
    "DEMO_VERSION",
    "create_demo",
    "default_demo_dir",
    "ensure_demo",
]

DEMO_VERSION: str = "1"
"""Version of the generated data; part of the default cache directory name."""

DEMO_COLLECTION_ID = "demo"
"""Collection id of every demo item."""

FloatArray = npt.NDArray[np.float32]
BoolArray = npt.NDArray[np.bool_]

# --------------------------------------------------------------------------- grid

_EPSG = 32613
_CRS = CRS.from_epsg(_EPSG)
_CENTER_LONLAT = (-103.19, 40.14)
_SIZE = 1536  # pixels per side
_RES = 20.0  # metres
# Upper-left corner: the projected centre (654189.45, 4444866.36) minus half the
# extent, snapped to the 60 m Sentinel-2 grid.
_LEFT = 638820.0
_TOP = 4460220.0
_TRANSFORM = Affine(_RES, 0.0, _LEFT, 0.0, -_RES, _TOP)
_MGRS_TILE = "13TFE"  # the real MGRS tile containing the demo area

# Clouds and other smooth fields are made on a coarse grid and upsampled.
_LR_FACTOR = 8
_LR = _SIZE // _LR_FACTOR
_LR_PAD = 48  # coarse pixels around the crop, room for the shadow offset

_BANDS = ("B2", "B3", "B4", "B8")
_MASK_BAND = "MSK_CLDPRB"
_COMMON_NAMES = {"B2": "blue", "B3": "green", "B4": "red", "B8": "nir"}
_CENTER_WAVELENGTH = {"B2": 0.49, "B3": 0.56, "B4": 0.665, "B8": 0.842}
_REFLECTANCE_NODATA = 0
_MASK_NODATA = 255
_COG_MEDIA_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"

_STAC_EXTENSIONS = [
    "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
    "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
    "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
]

_RENDERS: dict[str, dict[str, Any]] = {
    "best": {
        "title": "Best pixel (least cloudy)",
        "quality": "-MSK_CLDPRB",
        "bands": ["B4", "B3", "B2"],
        "min": 0,
        "max": 4500,
    },
    "worst": {
        "title": "Worst pixel (cloudiest)",
        "quality": "MSK_CLDPRB",
        "bands": ["B4", "B3", "B2"],
        "min": 0,
        "max": 4500,
    },
    "greenest": {
        "title": "Greenest pixel (max NDVI)",
        "quality": "(B8-B4)/(B8+B4)",
        "bands": ["B4", "B3", "B2"],
        "min": 0,
        "max": 4500,
    },
    "false-color": {
        "title": "False colour, least cloudy",
        "quality": "-MSK_CLDPRB",
        "bands": ["B8", "B4", "B3"],
        "min": 0,
        "max": 5000,
    },
}
"""Named visualisations of the demo; the first one is the default."""

# ------------------------------------------------------------------------ scenes


@dataclass(frozen=True)
class _Scene:
    """Recipe of one synthetic acquisition.

    Attributes:
        date: Acquisition day.
        platform: ``"sentinel-2a"`` or ``"sentinel-2b"``.
        seconds: Seconds after 17:50:00 UTC of the acquisition time.
        cloud_target: Wanted cloudy share of the footprint in percent (100 = overcast).
        cloud_scale: Size of the largest cloud structures, in coarse pixels.
        edge_width: Width of the soft cloud edge, in standard deviations of the field.
        swath: ``None`` for a full scene, else ``(tilt_deg, covered_fraction, side)``
            where ``side`` is ``"east"`` or ``"west"``: the part that is kept.
        seed: Seed of the scene's clouds and noise.
    """

    date: dt.date
    platform: str
    seconds: int
    cloud_target: float
    cloud_scale: float
    edge_width: float
    swath: tuple[float, float, str] | None
    seed: int

    @property
    def item_id(self) -> str:
        """The STAC item id, e.g. ``S2A_13TFE_20200702_demo``."""
        sat = "S2A" if self.platform.endswith("a") else "S2B"
        return f"{sat}_{_MGRS_TILE}_{self.date:%Y%m%d}_demo"

    @property
    def datetime(self) -> dt.datetime:
        """The acquisition time (UTC)."""
        return dt.datetime(self.date.year, self.date.month, self.date.day, 17, 50, self.seconds)


def _make_scenes() -> list[_Scene]:
    """The 13 acquisitions: every 5 days, S2A and S2B alternating."""
    # (cloud %, cloud scale, soft edge, swath)
    recipes: list[tuple[float, float, float, tuple[float, float, str] | None]] = [
        (2.0, 10.0, 0.7, None),
        (30.0, 22.0, 0.8, (12.0, 0.62, "east")),
        (0.8, 8.0, 0.6, None),
        (75.0, 30.0, 0.9, None),
        (3.0, 10.0, 0.7, (-11.0, 0.55, "west")),
        (100.0, 40.0, 2.5, None),
        (1.5, 9.0, 0.6, None),
        (20.0, 18.0, 0.8, (13.0, 0.70, "east")),
        (65.0, 26.0, 0.9, None),
        (3.5, 12.0, 0.7, None),
        (85.0, 34.0, 1.0, (-12.0, 0.48, "west")),
        (0.4, 7.0, 0.6, None),
        (12.0, 16.0, 0.8, None),
    ]
    start = dt.date(2020, 7, 2)
    scenes = []
    for i, (cloud, scale, edge, swath) in enumerate(recipes):
        scenes.append(
            _Scene(
                date=start + dt.timedelta(days=5 * i),
                platform="sentinel-2a" if i % 2 == 0 else "sentinel-2b",
                seconds=(17 + 7 * i) % 41,
                cloud_target=cloud,
                cloud_scale=scale,
                edge_width=edge,
                swath=swath,
                seed=1000 + i,
            )
        )
    return scenes


_SCENES = _make_scenes()
_FIRST_DAY = _SCENES[0].date
_SEASON_DAYS = float((_SCENES[-1].date - _FIRST_DAY).days)

# --------------------------------------------------------------------- landscape

# Land-cover classes.
_RANGE, _STUBBLE, _FALLOW, _CORN, _ALFALFA, _WHEAT_CUT = 0, 1, 2, 3, 4, 5
_SUMMER_CROP, _RIPARIAN, _TOWN = 6, 7, 8
_N_CLASSES = 9

# Endmember reflectances (x 10000) for B2, B3, B4, B8.
_VEG = np.array([260.0, 560.0, 300.0, 4700.0], dtype=np.float32)
_SOIL = np.array([1050.0, 1500.0, 1950.0, 2550.0], dtype=np.float32)
_DRY_VEG = np.array([780.0, 1120.0, 1480.0, 2420.0], dtype=np.float32)
_ROOF = np.array([1500.0, 1550.0, 1600.0, 1900.0], dtype=np.float32)
_WATER = np.array([520.0, 640.0, 430.0, 180.0], dtype=np.float32)
_GRAVEL = np.array([1550.0, 1700.0, 1850.0, 2200.0], dtype=np.float32)
_ASPHALT = np.array([900.0, 980.0, 1060.0, 1400.0], dtype=np.float32)
_BALLAST = np.array([700.0, 760.0, 820.0, 1150.0], dtype=np.float32)
_CLOUD = np.array([8600.0, 8350.0, 8200.0, 8700.0], dtype=np.float32)
# Share of dry vegetation (rest: bare soil) under the green fraction, per class.
_DRY_SHARE = np.array([0.75, 0.85, 0.1, 0.35, 0.5, 0.6, 0.3, 0.5, 0.3], dtype=np.float32)

_QUARTER = 804.67  # quarter section (half a mile), metres
_SECTION = 2 * _QUARTER


@dataclass(frozen=True)
class _Landscape:
    """The fixed ground shared by all scenes.

    Attributes:
        cls: Land-cover class per pixel.
        vigor: Multiplier of the class greenness (field and in-field variation).
        phase: Alfalfa regrowth phase in days (0 outside alfalfa).
        base: Reflectance without green vegetation, shape (4, H, W).
        green_gain: Reflectance added per unit of green fraction, shape (4, H, W);
            the reflectance is ``base + green * green_gain``.
    """

    cls: npt.NDArray[np.uint8]
    vigor: FloatArray
    phase: FloatArray
    base: FloatArray
    green_gain: FloatArray


def _smooth_noise(rng: np.random.Generator, n: int, scale: float, beta: float) -> FloatArray:
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


def _upsample_index(n_out: int, factor: int, n_in: int) -> tuple[Any, Any, FloatArray]:
    """Indices and weights of a linear, pixel-centre aligned upsampling.

    Args:
        n_out: Output length.
        factor: Upsampling factor.
        n_in: Input length.

    Returns:
        Lower indices, upper indices and upper weights, each of length ``n_out``.
    """
    pos = (np.arange(n_out, dtype=np.float64) + 0.5) / factor - 0.5
    pos = np.clip(pos, 0.0, n_in - 1.0)
    lo = np.floor(pos).astype(np.intp)
    hi = np.minimum(lo + 1, n_in - 1)
    return lo, hi, (pos - lo).astype(np.float32)


_UP_LO, _UP_HI, _UP_W = _upsample_index(_SIZE, _LR_FACTOR, _LR)


def _upsample(coarse: FloatArray) -> FloatArray:
    """Bilinear upsampling of a coarse (_LR, _LR) field to the full grid.

    Args:
        coarse: Field on the coarse grid.

    Returns:
        Field on the full (_SIZE, _SIZE) grid.
    """
    w = _UP_W
    rows = coarse[_UP_LO] * (1.0 - w)[:, None] + coarse[_UP_HI] * w[:, None]
    out = rows[:, _UP_LO] * (1.0 - w)[None, :] + rows[:, _UP_HI] * w[None, :]
    return out.astype(np.float32, copy=False)


def _meridian_convergence() -> float:
    """Angle (radians) between grid north and true north at the demo centre."""
    lon, lat = _CENTER_LONLAT
    xs, ys = warp_transform("EPSG:4326", _CRS, [lon, lon], [lat, lat + 0.1])
    return float(np.arctan2(xs[1] - xs[0], ys[1] - ys[0]))


def _lonlat_to_pixel(lon: float, lat: float) -> tuple[float, float]:
    """Column and row (fractional) of a lon/lat point on the demo grid."""
    xs, ys = warp_transform("EPSG:4326", _CRS, [lon], [lat])
    col, row = ~_TRANSFORM * (xs[0], ys[0])
    return float(col), float(row)


def _line_cover(distance: FloatArray, width: float) -> FloatArray:
    """Approximate share of a pixel covered by a line of ``width`` metres.

    Args:
        distance: Distance of the pixel centre to the line centre, metres.
        width: Width of the line, metres.

    Returns:
        Coverage in [0, 1].
    """
    cover = (0.5 * (width + _RES) - distance) / _RES
    return np.clip(cover, 0.0, min(1.0, width / _RES)).astype(np.float32)


_Ground = tuple[
    npt.NDArray[np.uint8],
    FloatArray,
    FloatArray,
    FloatArray,
    FloatArray,
    FloatArray,
    list[tuple[FloatArray, FloatArray]],
]


def _paint_ground() -> _Ground:
    """Paint the land cover of the landscape.

    Returns:
        Class, vigor, alfalfa phase, soil brightness, roof brightness (0 off roofs),
        overlay share, and the overlays (share, reflectance per band) in paint order.
    """
    rng = np.random.default_rng(20200701)
    n = _SIZE
    half = n * _RES / 2.0
    # Local metric coordinates: x east, y north, origin at the grid centre ...
    x = ((np.arange(n, dtype=np.float32) + 0.5) * _RES - half)[None, :]
    y = (half - (np.arange(n, dtype=np.float32) + 0.5) * _RES)[:, None]
    # ... rotated to true north, since section lines follow meridians/parallels.
    gamma = _meridian_convergence()
    cg, sg = np.float32(np.cos(gamma)), np.float32(np.sin(gamma))
    u = x * cg - y * sg  # true east, (n, n)
    v = x * sg + y * cg  # true north

    # Quarter sections, each one field.
    off_u, off_v = 311.0, 157.0
    qu = np.floor((u + off_u) / _QUARTER).astype(np.int32)
    qv = np.floor((v + off_v) / _QUARTER).astype(np.int32)
    fu = (u + off_u) / _QUARTER - qu  # position inside the quarter, 0..1
    fv = (v + off_v) / _QUARTER - qv
    qu -= qu.min()
    qv -= qv.min()
    nq = int(max(qu.max(), qv.max())) + 1
    quarter = qv * nq + qu
    del qu, qv

    def at(table: npt.NDArray[Any]) -> npt.NDArray[Any]:
        """Per-pixel value of a per-quarter table."""
        return np.take(table.ravel(), quarter)

    # Large regions prefer rangeland (sandy hills), elsewhere farmland.
    region = _smooth_noise(rng, 64, 10.0, 2.0)[:nq, :nq]
    draw = rng.random((nq, nq))
    field_class = np.where(
        region > 0.6,
        np.where(draw < 0.75, _RANGE, np.where(draw < 0.9, _CORN, _STUBBLE)),
        np.select(
            [draw < 0.30, draw < 0.62, draw < 0.74, draw < 0.90],
            [-1, _STUBBLE, _RANGE, _SUMMER_CROP],  # -1: centre pivot
            default=_FALLOW,
        ),
    ).astype(np.int8)
    pivot_crop = rng.choice(
        np.array([_CORN, _ALFALFA, _WHEAT_CUT]), size=(nq, nq), p=[0.55, 0.27, 0.18]
    )
    pivot_crop2 = rng.choice(np.array([_CORN, _ALFALFA, _WHEAT_CUT, _FALLOW]), (nq, nq))
    pivot_crop, pivot_crop2 = pivot_crop.astype(np.uint8), pivot_crop2.astype(np.uint8)
    pivot_split = rng.random((nq, nq)) < 0.22
    split_angle = (rng.random((nq, nq)) * 2 * np.pi).astype(np.float32)
    pivot_corner = np.where(rng.random((nq, nq)) < 0.6, _RANGE, _STUBBLE).astype(np.uint8)
    strip_width = rng.choice(np.array([90.0, 120.0, 150.0, 200.0], np.float32), (nq, nq))
    strip_dir = rng.random((nq, nq)) < 0.5
    field_vigor = (0.85 + 0.25 * rng.random((nq, nq))).astype(np.float32)
    field_phase = (28.0 * rng.random((nq, nq))).astype(np.float32)

    fc = at(field_class)
    cls = fc.astype(np.uint8)
    # Centre pivots: circle inscribed in the quarter, corners dry.
    pivot = fc == -1
    du, dv = fu - 0.5, fv - 0.5
    radius = np.sqrt(du * du + dv * dv)
    inside = pivot & (radius < 0.485)
    angle = np.arctan2(dv, du) + np.float32(np.pi)
    second_half = at(pivot_split) & (((angle - at(split_angle)) % (2 * np.pi)) < np.pi)
    crop = np.where(second_half, at(pivot_crop2), at(pivot_crop))
    cls = np.where(inside, crop, cls)
    cls = np.where(pivot & ~inside, at(pivot_corner), cls)
    # Wheat-fallow strips, alternating, across the quarter.
    strips = fc == _STUBBLE
    coord = np.where(at(strip_dir), u, v)
    strip_index = np.floor(coord / at(strip_width)).astype(np.int32)
    cls = np.where(strips & (strip_index % 2 == 1), _FALLOW, cls).astype(np.uint8)
    # Pivot wheel tracks: faint concentric rings.
    rings = inside & (np.abs((radius * _QUARTER) % 55.0 - 27.5) < 3.0)
    del fu, fv, du, dv, radius, angle, second_half, crop, coord, strip_index, strips

    vigor = at(field_vigor) * (1.0 + 0.12 * _upsample(_smooth_noise(rng, _LR, 6.0, 1.6)))
    vigor = np.where(rings, vigor * 0.8, vigor).astype(np.float32)
    phase = np.where(cls == _ALFALFA, at(field_phase), 0.0).astype(np.float32)
    soil = 1.0 + 0.09 * _upsample(_smooth_noise(rng, _LR, 20.0, 1.8))

    overlay = np.zeros((n, n), dtype=np.float32)
    covers: list[tuple[FloatArray, FloatArray]] = []

    def add_overlay(cover: FloatArray, refl: FloatArray) -> None:
        """Lay ``refl`` over the still uncovered ``cover`` share of each pixel."""
        nonlocal overlay
        take = (cover * (1.0 - overlay)).astype(np.float32)
        covers.append((take, refl))
        overlay = overlay + take

    # River flowing west to east, with trees along it; and a reservoir.
    p1, p2, p3 = (rng.random(3) * 2 * np.pi).astype(np.float32)
    waves = ((900.0, 9000.0, p1), (380.0, 3100.0, p2), (140.0, 1150.0, p3))
    river_v = np.full_like(u, -7200.0)
    river_slope = np.zeros_like(u)
    for amplitude, length, shift in waves:
        k = np.float32(2 * np.pi / length)
        river_v += amplitude * np.sin(k * u + shift)
        river_slope += amplitude * k * np.cos(k * u + shift)
    river_d = (np.abs(v - river_v) / np.sqrt(1.0 + river_slope * river_slope)).astype(np.float32)
    del river_v, river_slope
    riparian = river_d < 160.0 + 60.0 * _upsample(_smooth_noise(rng, _LR, 4.0, 1.5))
    cls = np.where(riparian, _RIPARIAN, cls).astype(np.uint8)
    vigor = np.where(riparian, 0.75 + 0.25 * np.exp(-river_d / 80.0), vigor)
    lake_u, lake_v = 8200.0, -4300.0
    lake = ((u - lake_u) / 650.0) ** 2 + ((v - lake_v) / 330.0) ** 2
    lake_cover = np.clip((1.0 - lake) * 12.0, 0.0, 1.0).astype(np.float32)

    # A small town (Akron, Colorado) with a street grid, roofs and trees.
    col, row = _lonlat_to_pixel(-103.214, 40.160)
    tu = (col + 0.5) * _RES - half
    tv = half - (row + 0.5) * _RES
    town = (np.abs(u - tu) < 900.0) & (np.abs(v - tv) < 650.0)
    lots = rng.random((64, 64)).astype(np.float32)  # 30 m lots: house, garden, trees
    lot_u = np.clip(np.floor((u - tu + 960.0) / 30.0), 0, 63).astype(np.int32)
    lot_v = np.clip(np.floor((v - tv + 960.0) / 30.0), 0, 63).astype(np.int32)
    lot = np.take(lots.ravel(), lot_v * 64 + lot_u)
    del lot_u, lot_v
    cls = np.where(town, _TOWN, cls).astype(np.uint8)
    vigor = np.where(town, np.where(lot < 0.45, 0.8, 0.15 + 0.3 * lot), vigor)
    roof = town & (lot > 0.6)

    # Roads on most section lines, a highway and a railway.
    road = np.zeros((n, n), dtype=np.float32)
    for coord, offset, count in ((u, off_u, 8191), (v, off_v, 131071)):
        line = np.round((coord + offset) / _SECTION)
        dist = np.abs((coord + offset) - line * _SECTION)
        keep = ((line.astype(np.int64) * count) % 10) < 7
        road = np.maximum(road, np.where(keep, _line_cover(dist, 12.0), 0.0))
    street = town & (
        (np.abs((u - tu) % 120.0 - 60.0) > 52.0) | (np.abs((v - tv) % 120.0 - 60.0) > 52.0)
    )
    highway = _line_cover(np.abs(v - tv + 310.0), 22.0)
    rail_cos, rail_sin = float(np.cos(0.28)), float(np.sin(0.28))
    rail = _line_cover(np.abs((v - tv + 150.0) * rail_cos - (u - tu) * rail_sin), 12.0)

    add_overlay(highway, _ASPHALT)
    add_overlay(np.where(street, 0.8, 0.0).astype(np.float32), _ASPHALT)
    add_overlay(rail, _BALLAST)
    add_overlay(_line_cover(river_d, 24.0), _WATER)
    add_overlay(lake_cover, _WATER)
    add_overlay(road, _GRAVEL)

    roof_brightness = np.where(roof, 0.7 + 0.6 * lot, 0.0).astype(np.float32)
    return cls, vigor.astype(np.float32), phase, soil, roof_brightness, overlay, covers


def _landscape() -> _Landscape:
    """Paint the fixed landscape shared by every scene.

    Returns:
        The landscape layers.
    """
    cls, vigor, phase, soil, roof_brightness, overlay, covers = _paint_ground()
    n = _SIZE
    dry = _DRY_SHARE[cls]
    roof = roof_brightness > 0
    # Water, roads and railway lie over the ground: they hide part of each pixel.
    ground = 1.0 - overlay
    base = np.empty((len(_BANDS), n, n), dtype=np.float32)
    green_gain = np.empty((len(_BANDS), n, n), dtype=np.float32)
    for b in range(len(_BANDS)):
        background = dry * _DRY_VEG[b] + (1.0 - dry) * (_SOIL[b] * soil)
        background = np.where(roof, _ROOF[b] * roof_brightness, background)
        green_gain[b] = (_VEG[b] - background) * ground
        background *= ground
        for take, refl in covers:
            background += take * refl[b]
        base[b] = background
    return _Landscape(
        cls=cls,
        vigor=vigor,
        phase=phase,
        base=base,
        green_gain=green_gain,
    )


def _greenness(land: _Landscape, day: float) -> FloatArray:
    """Green vegetation fraction of every pixel on a day of the season.

    Args:
        land: The landscape.
        day: Days since the first acquisition.

    Returns:
        Green fraction in [0, 1].
    """
    t = day / _SEASON_DAYS
    lut = np.zeros(_N_CLASSES, dtype=np.float32)
    lut[_RANGE] = 0.26 - 0.10 * t  # shortgrass prairie drying out
    lut[_STUBBLE] = 0.05 + 0.05 * t  # harvested winter wheat, weeds coming up
    lut[_FALLOW] = 0.02
    lut[_CORN] = 0.62 + 0.28 * np.exp(-(((t - 0.45) / 0.45) ** 2))
    lut[_WHEAT_CUT] = 0.18 * np.exp(-t / 0.15) + 0.03
    lut[_SUMMER_CROP] = 0.2 + 0.35 * np.exp(-(((t - 0.6) / 0.3) ** 2))
    lut[_RIPARIAN] = 0.85
    lut[_TOWN] = 1.0
    green = lut[land.cls] * land.vigor
    # Alfalfa: cut every 28 days, then regrows.
    regrowth = ((day + land.phase) % 28.0) / 28.0
    green = np.where(land.cls == _ALFALFA, (0.12 + 0.75 * regrowth) * land.vigor, green)
    return np.clip(green, 0.0, 1.0).astype(np.float32)


# ------------------------------------------------------------------------ clouds


def _footprint(scene: _Scene, rows: FloatArray, cols: FloatArray) -> BoolArray:
    """Whether points (full-grid pixel coordinates) lie inside the scene swath.

    Args:
        scene: The scene.
        rows: Row coordinates (pixel centres are at ``i + 0.5``).
        cols: Column coordinates.

    Returns:
        Boolean mask, broadcast of ``rows`` and ``cols``.
    """
    if scene.swath is None:
        return np.ones(np.broadcast_shapes(rows.shape, cols.shape), dtype=bool)
    tilt, covered, side = scene.swath
    edge = _swath_edge(tilt, covered, side, rows)
    return cols >= edge if side == "east" else cols < edge


def _swath_edge(tilt: float, covered: float, side: str, rows: Any) -> Any:
    """Column of the swath edge at the given rows.

    Args:
        tilt: Angle of the edge from grid north, degrees.
        covered: Share of the grid inside the swath.
        side: ``"east"`` or ``"west"``: the kept side.
        rows: Row coordinates.

    Returns:
        Edge columns.
    """
    at_centre = _SIZE * (1.0 - covered) if side == "east" else _SIZE * covered
    return at_centre + np.tan(np.radians(tilt)) * (rows - _SIZE / 2.0)


def _footprint_polygon(scene: _Scene) -> shapely.Polygon:
    """The scene's valid-data polygon in the grid CRS.

    Args:
        scene: The scene.

    Returns:
        The polygon.
    """
    full = box(0.0, 0.0, float(_SIZE), float(_SIZE))  # pixel space, rows downward
    if scene.swath is not None:
        tilt, covered, side = scene.swath
        big = 10.0 * _SIZE
        top, bottom = -big, _SIZE + big
        e_top = float(_swath_edge(tilt, covered, side, top))
        e_bottom = float(_swath_edge(tilt, covered, side, bottom))
        far = big if side == "east" else -big
        half_plane = shapely.Polygon([(e_top, top), (e_bottom, bottom), (far, bottom), (far, top)])
        full = full.intersection(half_plane)
    a, b, c, d, e, f = _TRANSFORM[:6]
    return shapely.affinity.affine_transform(full, [a, b, d, e, c, f])


@dataclass(frozen=True)
class _Clouds:
    """One scene's clouds on the full grid.

    Attributes:
        valid: Pixels inside the footprint.
        opacity: Cloud opacity in [0, 1].
        thickness: Cloud thickness in [0, 1] (brightness of the cloud).
        shadow: Shadow strength in [0, 1].
        probability: ``MSK_CLDPRB`` values (255 outside the footprint).
    """

    valid: BoolArray
    opacity: FloatArray
    thickness: FloatArray
    shadow: FloatArray
    probability: npt.NDArray[np.uint8]


# Shadows fall north-west of the clouds (sun in the south-east at 10:50 local time).
_SHADOW_SHIFT = (5, 4)  # coarse pixels: rows to the south, columns to the east


def _cloud_plan(scene: _Scene) -> tuple[FloatArray, FloatArray]:
    """Coarse cloud and shadow fields of a scene, positive where cloudy.

    Args:
        scene: The scene.

    Returns:
        Cloud and shadow fields on the coarse grid, offset so that the share of the
        footprint where either is positive is the scene's cloud target.
    """
    rng = np.random.default_rng(scene.seed)
    n = _LR + 2 * _LR_PAD
    field = _smooth_noise(rng, n, scene.cloud_scale, 1.9)
    p = _LR_PAD
    sr, sc = _SHADOW_SHIFT
    cloud_lr = field[p : p + _LR, p : p + _LR]
    shadow_lr = field[p + sr : p + sr + _LR, p + sc : p + sc + _LR]
    if scene.cloud_target >= 100.0:
        threshold = float(cloud_lr.min()) - 0.05
    else:
        centres = (np.arange(_LR, dtype=np.float32) + 0.5) * _LR_FACTOR
        valid_lr = _footprint(scene, centres[:, None], centres[None, :])
        either = np.maximum(cloud_lr, shadow_lr)[valid_lr]
        threshold = float(np.quantile(either, 1.0 - scene.cloud_target / 100.0))
    offset = np.float32(threshold)
    return (
        np.ascontiguousarray(cloud_lr - offset),
        np.ascontiguousarray(shadow_lr - offset),
    )


def _clouds(scene: _Scene, plan: tuple[FloatArray, FloatArray]) -> _Clouds:
    """Cloud, shadow and cloud probability fields of a scene on the full grid.

    Args:
        scene: The scene.
        plan: The scene's coarse fields, from :func:`_cloud_plan`.

    Returns:
        The fields.
    """
    rows = (np.arange(_SIZE, dtype=np.float32) + 0.5)[:, None]
    cols = (np.arange(_SIZE, dtype=np.float32) + 0.5)[None, :]
    valid = _footprint(scene, rows, cols)
    edge = np.float32(scene.edge_width)
    cloud = _upsample(plan[0])
    shade = _upsample(plan[1])
    opacity = np.clip(cloud / edge, 0.0, 1.0)
    thickness = np.clip(cloud / (3.0 * edge), 0.0, 1.0)
    shadow = np.clip(shade / edge, 0.0, 1.0)
    # Probability 1..100 on clouds, 1..15 on shadows, exactly 0 elsewhere.
    prob = np.where(cloud > 0, np.maximum(np.ceil(opacity * 100.0), 1.0), 0.0)
    prob = np.maximum(prob, np.where(shade > 0, np.maximum(np.ceil(shadow * 15.0), 1.0), 0.0))
    probability = np.where(valid, prob, _MASK_NODATA).astype(np.uint8)
    return _Clouds(
        valid=valid,
        opacity=opacity,
        thickness=thickness,
        shadow=shadow,
        probability=probability,
    )


def _clear_somewhere(probabilities: list[npt.NDArray[np.uint8]]) -> list[BoolArray]:
    """Make every covered pixel clear in at least one scene.

    Where all scenes covering a pixel are cloudy, the least cloudy of them is cleared.
    With the built-in recipes this touches no or very few pixels; it is a guarantee.

    Args:
        probabilities: ``MSK_CLDPRB`` of every scene (255 = not covered); modified.

    Returns:
        Per scene, the pixels that were cleared.
    """
    stack = np.stack(probabilities)
    best = stack.argmin(axis=0)
    low = np.take_along_axis(stack, best[None], axis=0)[0]
    fix = (low > 0) & (low < _MASK_NODATA)
    cleared = []
    for i, prob in enumerate(probabilities):
        mask = fix & (best == i)
        prob[mask] = 0
        cleared.append(mask)
    if fix.any():
        logger.debug("demo: cleared %d always-cloudy pixels", int(fix.sum()))
    return cleared


# ----------------------------------------------------------------------- writing


def _render(
    scene: _Scene, land: _Landscape, clouds: _Clouds, cleared: BoolArray
) -> npt.NDArray[np.uint16]:
    """Surface reflectance (x 10000) of a scene.

    Args:
        scene: The scene.
        land: The landscape.
        clouds: The scene's clouds.
        cleared: Pixels forced clear by :func:`_clear_somewhere`.

    Returns:
        uint16 array of shape (4, H, W), 0 outside the footprint.
    """
    rng = np.random.default_rng(scene.seed + 500)
    day = float((scene.date - _FIRST_DAY).days)
    green = _greenness(land, day)
    # Per-scene atmosphere: slight gain and haze, strongest in blue.
    gain = 1.0 + 0.02 * (rng.random() - 0.5)
    haze = np.array([60.0, 35.0, 20.0, 5.0]) * rng.random()
    opacity = np.where(cleared, 0.0, clouds.opacity)
    shadow = np.where(cleared, 0.0, clouds.shadow)
    # ground * (1 - opacity) * shadow darkening + cloud * opacity, per band:
    # reflectance = (base + green * green_gain) * keep + haze * hazed + cloud * cloudy
    hazed = (1.0 - opacity) * (1.0 - 0.6 * shadow * (1.0 - opacity))
    keep = hazed * np.float32(gain)
    cloudy = opacity * (0.4 + 0.6 * clouds.thickness)
    out = np.empty((len(_BANDS), _SIZE, _SIZE), dtype=np.uint16)
    for b in range(len(_BANDS)):
        refl = land.green_gain[b] * green
        refl += land.base[b]
        refl *= keep
        refl += np.float32(haze[b]) * hazed + _CLOUD[b] * cloudy
        noise = rng.standard_normal(refl.shape, dtype=np.float32)
        noise *= 2.0 + 0.001 * refl
        refl += noise
        np.rint(refl, out=refl)
        np.clip(refl, 1, 65535, out=refl)
        out[b] = refl
    out[:, ~clouds.valid] = _REFLECTANCE_NODATA
    return out


def _write_cog(
    path: pathlib.Path, data: npt.NDArray[Any], nodata: int, resampling: str, level: int
) -> None:
    """Write one band as a Cloud Optimized GeoTIFF.

    Args:
        path: Output file.
        data: 2-D array.
        nodata: Nodata value stored in the file.
        resampling: Overview resampling (``"nearest"``, ``"average"``).
        level: Deflate level; 1 is as good as 6 on noisy reflectance, and much faster.
    """
    profile: dict[str, Any] = {
        "driver": "COG",
        "width": data.shape[1],
        "height": data.shape[0],
        "count": 1,
        "dtype": data.dtype.name,
        "crs": _CRS,
        "transform": _TRANSFORM,
        "nodata": nodata,
        "blocksize": 512,
        "compress": "deflate",
        "predictor": 2,
        "level": level,
        "overview_resampling": resampling,
        "num_threads": "all_cpus",
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data, 1)


def _round_coords(geometry: dict[str, Any]) -> dict[str, Any]:
    """Round the coordinates of a GeoJSON polygon to 7 decimals (~1 cm)."""
    rings = [
        [[round(float(x), 7), round(float(y), 7)] for x, y in ring]
        for ring in geometry["coordinates"]
    ]
    return {"type": geometry["type"], "coordinates": rings}


def _item(scene: _Scene, cloud_cover: float) -> dict[str, Any]:
    """The STAC item of a scene.

    Args:
        scene: The scene.
        cloud_cover: Cloudy share of the footprint, percent.

    Returns:
        A STAC 1.0 Item as a dict.
    """
    polygon = orient(_footprint_polygon(scene), sign=1.0)
    polygon = shapely.segmentize(polygon, 256 * _RES)
    geometry = _round_coords(transform_geom(_CRS, "EPSG:4326", mapping(polygon)))
    lons = [p[0] for p in geometry["coordinates"][0]]
    lats = [p[1] for p in geometry["coordinates"][0]]
    assets: dict[str, Any] = {}
    for band in (*_BANDS, _MASK_BAND):
        is_mask = band == _MASK_BAND
        eo_band: dict[str, Any] = {"name": band}
        if not is_mask:
            eo_band["common_name"] = _COMMON_NAMES[band]
            eo_band["center_wavelength"] = _CENTER_WAVELENGTH[band]
        assets[band] = {
            "href": f"{scene.item_id}/{band}.tif",
            "type": _COG_MEDIA_TYPE,
            "title": "Cloud probability (%)" if is_mask else f"{band} surface reflectance",
            "roles": ["data"],
            "raster:bands": [
                {
                    "nodata": _MASK_NODATA if is_mask else _REFLECTANCE_NODATA,
                    "data_type": "uint8" if is_mask else "uint16",
                    "spatial_resolution": int(_RES),
                }
            ],
            "eo:bands": [eo_band],
        }
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "stac_extensions": list(_STAC_EXTENSIONS),
        "id": scene.item_id,
        "collection": DEMO_COLLECTION_ID,
        "geometry": geometry,
        "bbox": [min(lons), min(lats), max(lons), max(lats)],
        "properties": {
            "datetime": scene.datetime.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "platform": scene.platform,
            "constellation": "sentinel-2",
            "instruments": ["msi"],
            "gsd": int(_RES),
            "eo:cloud_cover": cloud_cover,
            "proj:epsg": _EPSG,
            "proj:shape": [_SIZE, _SIZE],
            "proj:transform": [float(v) for v in _TRANSFORM[:6]],
        },
        "links": [],
        "assets": assets,
    }


def _generate(directory: pathlib.Path) -> None:
    """Write the whole demo into an existing, empty directory.

    Args:
        directory: Target directory.
    """
    land = _landscape()
    plans = [_cloud_plan(scene) for scene in _SCENES]
    probabilities = [
        _clouds(scene, plan).probability for scene, plan in zip(_SCENES, plans, strict=True)
    ]
    cleared = _clear_somewhere(probabilities)
    features = []
    # GDAL compresses in background threads while numpy paints the next scene.
    with ThreadPoolExecutor(max_workers=2) as pool:
        writes: list[Future[None]] = []
        for scene, plan, prob, fixed in zip(_SCENES, plans, probabilities, cleared, strict=True):
            clouds = _clouds(scene, plan)
            refl = _render(scene, land, clouds, fixed)
            item_dir = directory / scene.item_id
            item_dir.mkdir()
            for i, band in enumerate(_BANDS):
                path = item_dir / f"{band}.tif"
                writes.append(
                    pool.submit(_write_cog, path, refl[i], _REFLECTANCE_NODATA, "average", 1)
                )
            path = item_dir / f"{_MASK_BAND}.tif"
            writes.append(pool.submit(_write_cog, path, prob, _MASK_NODATA, "nearest", 6))
            valid = clouds.valid
            cover = round(100.0 * float((prob[valid] > 0).sum()) / float(valid.sum()), 2)
            features.append(_item(scene, cover))
            logger.debug("demo: painted %s (cloud cover %.2f %%)", scene.item_id, cover)
            # Keep at most about one scene queued, to bound memory.
            while len(writes) > 2 * (len(_BANDS) + 1):
                writes.pop(0).result()
        for write in writes:
            write.result()
    collection = {"type": "FeatureCollection", "features": features, "renders": _RENDERS}
    text = json.dumps(collection, indent=2, ensure_ascii=False) + "\n"
    (directory / "demo.json").write_text(text, encoding="utf-8")


def _commit(tmp: pathlib.Path, directory: pathlib.Path) -> None:
    """Move a finished temporary demo into place; ``demo.json`` goes last.

    Args:
        tmp: The complete temporary demo directory.
        directory: The final directory.
    """
    try:
        os.rename(tmp, directory)  # atomic; works if directory is missing or empty
        return
    except OSError:
        pass
    # The directory exists and holds something: move item folders one by one (each
    # atomically), then publish demo.json, which marks the demo as complete.
    for child in sorted(tmp.iterdir()):
        if child.name == "demo.json":
            continue
        target = directory / child.name
        try:
            os.rename(child, target)
        except OSError:
            if not target.is_dir():
                raise
            # Same version, same bytes: left by a concurrent or interrupted commit.
    os.replace(tmp / "demo.json", directory / "demo.json")
    shutil.rmtree(tmp, ignore_errors=True)


_STALE_SECONDS = 3600.0


def _remove_stale_temporaries(directory: pathlib.Path) -> None:
    """Delete temporary siblings of ``directory`` left by killed runs.

    Only those older than an hour go: a younger one may belong to a running
    generation.

    Args:
        directory: The demo directory.
    """
    if not directory.parent.is_dir():
        return
    now = time.time()
    for tmp in directory.parent.glob(f".{directory.name}.tmp-*"):
        try:
            if now - tmp.stat().st_mtime > _STALE_SECONDS:
                logger.debug("demo: removing stale %s", tmp)
                shutil.rmtree(tmp, ignore_errors=True)
        except OSError:
            pass


def default_demo_dir() -> pathlib.Path:
    """Where the demo is created by default: the user cache directory.

    Returns:
        ``<user cache>/qualitymosaic/demo-v<DEMO_VERSION>``.
    """
    return platformdirs.user_cache_path("qualitymosaic") / f"demo-v{DEMO_VERSION}"


def create_demo(directory: pathlib.Path) -> pathlib.Path:
    """Create the synthetic demo collection in ``directory`` unless it exists.

    The files are written into a temporary sibling directory which is renamed into
    place at the end, so an interrupted run never leaves a partial collection and
    concurrent runs do not interfere.

    Args:
        directory: Target directory (created if needed).

    Returns:
        The collection file, ``directory / "demo.json"``.
    """
    directory = pathlib.Path(directory)
    collection = directory / "demo.json"
    if collection.is_file():
        return collection
    _remove_stale_temporaries(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    tmp = pathlib.Path(tempfile.mkdtemp(prefix=f".{directory.name}.tmp-", dir=directory.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; the demo is not secret
    try:
        _generate(tmp)
        if collection.is_file():  # a concurrent run finished first
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            _commit(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info(
        "demo: created %d scenes in %s (%.1f s)",
        len(_SCENES),
        directory,
        time.perf_counter() - started,
    )
    return collection


def ensure_demo(directory: pathlib.Path | None = None) -> pathlib.Path:
    """Create the demo collection if needed and return its collection file.

    Args:
        directory: Target directory; :func:`default_demo_dir` when ``None``.

    Returns:
        The collection file ``demo.json``.
    """
    return create_demo(directory if directory is not None else default_demo_dir())
