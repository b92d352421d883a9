"""The demo's fixed landscape and its vegetation through the season.

Centre-pivot circles, dryland wheat/fallow strips, rangeland, a river with riparian
trees, a reservoir, section-line roads, a highway, a railway and a small town, laid
out in true-north aligned quarter sections around the centre of the grid.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from rasterio.warp import transform as warp_transform

from tiler.tools.demo.grid import (
    BANDS,
    CENTER_LONLAT,
    GRID_CRS,
    RES,
    FloatArray,
    Grid,
    smooth_noise,
)
from tiler.tools.demo.scenes import SEASON_DAYS

__all__ = ["Landscape", "greenness", "landscape"]

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
# Share of dry vegetation (rest: bare soil) under the green fraction, per class.
_DRY_SHARE = np.array([0.75, 0.85, 0.1, 0.35, 0.5, 0.6, 0.3, 0.5, 0.3], dtype=np.float32)

_QUARTER = 804.67  # quarter section (half a mile), metres
_SECTION = 2 * _QUARTER


@dataclass(frozen=True)
class Landscape:
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


def _meridian_convergence() -> float:
    """Angle (radians) between grid north and true north at the demo centre."""
    lon, lat = CENTER_LONLAT
    xs, ys = warp_transform("EPSG:4326", GRID_CRS, [lon, lon], [lat, lat + 0.1])
    return float(np.arctan2(xs[1] - xs[0], ys[1] - ys[0]))


def _lonlat_to_pixel(grid: Grid, lon: float, lat: float) -> tuple[float, float]:
    """Column and row (fractional) of a lon/lat point on the demo grid."""
    xs, ys = warp_transform("EPSG:4326", GRID_CRS, [lon], [lat])
    col, row = ~grid.transform * (xs[0], ys[0])
    return float(col), float(row)


def _line_cover(distance: FloatArray, width: float) -> FloatArray:
    """Approximate share of a pixel covered by a line of ``width`` metres.

    Args:
        distance: Distance of the pixel centre to the line centre, metres.
        width: Width of the line, metres.

    Returns:
        Coverage in [0, 1].
    """
    cover = (0.5 * (width + RES) - distance) / RES
    covered: FloatArray = np.clip(cover, 0.0, min(1.0, width / RES)).astype(np.float32)
    return covered


_Ground = tuple[
    npt.NDArray[np.uint8],
    FloatArray,
    FloatArray,
    FloatArray,
    FloatArray,
    FloatArray,
    list[tuple[FloatArray, FloatArray]],
]


def _paint_ground(grid: Grid) -> _Ground:
    """Paint the land cover of the landscape.

    Args:
        grid: The demo grid.

    Returns:
        Class, vigor, alfalfa phase, soil brightness, roof brightness (0 off roofs),
        overlay share, and the overlays (share, reflectance per band) in paint order.
    """
    rng = np.random.default_rng(20200701)
    n = grid.size
    half = n * RES / 2.0
    # Local metric coordinates: x east, y north, origin at the grid centre ...
    x = ((np.arange(n, dtype=np.float32) + 0.5) * RES - half)[None, :]
    y = (half - (np.arange(n, dtype=np.float32) + 0.5) * RES)[:, None]
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
    region = smooth_noise(rng, 64, 10.0, 2.0)[:nq, :nq]
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

    vigor = at(field_vigor) * (1.0 + 0.12 * grid.upsample(smooth_noise(rng, grid.coarse, 6.0, 1.6)))
    vigor = np.where(rings, vigor * 0.8, vigor).astype(np.float32)
    phase = np.where(cls == _ALFALFA, at(field_phase), 0.0).astype(np.float32)
    soil = 1.0 + 0.09 * grid.upsample(smooth_noise(rng, grid.coarse, 20.0, 1.8))

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
    riparian = river_d < 160.0 + 60.0 * grid.upsample(smooth_noise(rng, grid.coarse, 4.0, 1.5))
    cls = np.where(riparian, _RIPARIAN, cls).astype(np.uint8)
    vigor = np.where(riparian, 0.75 + 0.25 * np.exp(-river_d / 80.0), vigor)
    lake_u, lake_v = 8200.0, -4300.0
    lake = ((u - lake_u) / 650.0) ** 2 + ((v - lake_v) / 330.0) ** 2
    lake_cover = np.clip((1.0 - lake) * 12.0, 0.0, 1.0).astype(np.float32)

    # A small town (Akron, Colorado) with a street grid, roofs and trees.
    col, row = _lonlat_to_pixel(grid, -103.214, 40.160)
    tu = (col + 0.5) * RES - half
    tv = half - (row + 0.5) * RES
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


def landscape(grid: Grid) -> Landscape:
    """Paint the fixed landscape shared by every scene.

    Args:
        grid: The demo grid.

    Returns:
        The landscape layers.
    """
    cls, vigor, phase, soil, roof_brightness, overlay, covers = _paint_ground(grid)
    n = grid.size
    dry = _DRY_SHARE[cls]
    roof = roof_brightness > 0
    # Water, roads and railway lie over the ground: they hide part of each pixel.
    ground = 1.0 - overlay
    base = np.empty((len(BANDS), n, n), dtype=np.float32)
    green_gain = np.empty((len(BANDS), n, n), dtype=np.float32)
    for b in range(len(BANDS)):
        background = dry * _DRY_VEG[b] + (1.0 - dry) * (_SOIL[b] * soil)
        background = np.where(roof, _ROOF[b] * roof_brightness, background)
        green_gain[b] = (_VEG[b] - background) * ground
        background *= ground
        for take, refl in covers:
            background += take * refl[b]
        base[b] = background
    return Landscape(
        cls=cls,
        vigor=vigor,
        phase=phase,
        base=base,
        green_gain=green_gain,
    )


def greenness(land: Landscape, day: float) -> FloatArray:
    """Green vegetation fraction of every pixel on a day of the season.

    Args:
        land: The landscape.
        day: Days since the first acquisition.

    Returns:
        Green fraction in [0, 1].
    """
    t = day / SEASON_DAYS
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
    fraction: FloatArray = np.clip(green, 0.0, 1.0).astype(np.float32)
    return fraction
