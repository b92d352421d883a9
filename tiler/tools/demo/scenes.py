"""The demo's acquisitions: dates, platforms, cloud recipes and swath footprints."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from shapely.geometry import box

from tiler.tools.demo.grid import MGRS_TILE, BoolArray, FloatArray, Grid

__all__ = [
    "FIRST_DAY",
    "SCENES",
    "SEASON_DAYS",
    "Scene",
    "footprint",
    "footprint_polygon",
]


@dataclass(frozen=True)
class Scene:
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
        return f"{sat}_{MGRS_TILE}_{self.date:%Y%m%d}_demo"

    @property
    def datetime(self) -> dt.datetime:
        """The acquisition time (UTC)."""
        return dt.datetime(self.date.year, self.date.month, self.date.day, 17, 50, self.seconds)


def _make_scenes() -> tuple[Scene, ...]:
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
            Scene(
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
    return tuple(scenes)


SCENES = _make_scenes()
"""Every acquisition of the full demo, in time order."""
FIRST_DAY = SCENES[0].date
SEASON_DAYS = float((SCENES[-1].date - FIRST_DAY).days)
"""Length of the season the vegetation follows (also in a demo with fewer scenes)."""


def footprint(scene: Scene, grid: Grid, rows: FloatArray, cols: FloatArray) -> BoolArray:
    """Whether points (pixel coordinates) lie inside the scene swath.

    Args:
        scene: The scene.
        grid: The demo grid.
        rows: Row coordinates (pixel centres are at ``i + 0.5``).
        cols: Column coordinates.

    Returns:
        Boolean mask, broadcast of ``rows`` and ``cols``.
    """
    if scene.swath is None:
        return np.ones(np.broadcast_shapes(rows.shape, cols.shape), dtype=bool)
    tilt, covered, side = scene.swath
    edge = _swath_edge(grid, tilt, covered, side, rows)
    inside: BoolArray = cols >= edge if side == "east" else cols < edge
    return inside


def _swath_edge(grid: Grid, tilt: float, covered: float, side: str, rows: Any) -> Any:
    """Column of the swath edge at the given rows.

    Args:
        grid: The demo grid.
        tilt: Angle of the edge from grid north, degrees.
        covered: Share of the grid inside the swath.
        side: ``"east"`` or ``"west"``: the kept side.
        rows: Row coordinates.

    Returns:
        Edge columns.
    """
    size = grid.size
    at_centre = size * (1.0 - covered) if side == "east" else size * covered
    return at_centre + np.tan(np.radians(tilt)) * (rows - size / 2.0)


def footprint_polygon(scene: Scene, grid: Grid) -> shapely.Polygon:
    """The scene's valid-data polygon in the grid CRS.

    Args:
        scene: The scene.
        grid: The demo grid.

    Returns:
        The polygon.
    """
    size = grid.size
    full = box(0.0, 0.0, float(size), float(size))  # pixel space, rows downward
    if scene.swath is not None:
        tilt, covered, side = scene.swath
        big = 10.0 * size
        top, bottom = -big, size + big
        e_top = float(_swath_edge(grid, tilt, covered, side, top))
        e_bottom = float(_swath_edge(grid, tilt, covered, side, bottom))
        far = big if side == "east" else -big
        half_plane = shapely.Polygon([(e_top, top), (e_bottom, bottom), (far, bottom), (far, top)])
        full = full.intersection(half_plane)
    a, b, c, d, e, f = grid.transform[:6]
    return shapely.affinity.affine_transform(full, [a, b, d, e, c, f])
