"""A synthetic Sentinel-2-L2A-like collection for the tile benchmark (deterministic, cached).

Two kinds of collections are made:

- **scenes** (``generate_scenes``): ``N`` scenes (default 24) over two summer months
  (2021-07-01..2021-08-31) on one UTM grid (EPSG:32613, ``size`` x ``size`` pixels of 10 m,
  default 4096 = 41 km, around lon -103.19, lat 40.14). Two relative orbits alternate; each
  covers a different, overlapping part of the area (a tilted swath edge, nodata outside), so
  tiles in the middle see every scene and tiles near the edges see about half. Cloud cover is
  skewed as in a real summer: about half the scenes nearly clear (< 5 %), a few fully
  cloudy, the rest in between; clouds are soft smooth blobs with shadows.
- **stack** (``generate_stack``): 64 hazy scenes that all cover the same small area, written
  once, and collections of their first 8, 16, 32 and 64 scenes, so the same tiles are
  covered by 8 .. 64 items. Haze keeps ``MSK_CLDPRB >= 1`` everywhere, so no quality reaches
  its bound 0 and a reader cannot stop early: the worst case for memory.
- **realistic** (``generate_scenes(..., realistic=True)``, ``--realistic``): as issue 19
  describes real Sentinel-2: every acquisition (datatake) is cut into two overlapping tiles
  (a north and a south raster, overlapping by an eighth of the area, smaller than the area)
  with **equal datetimes** and the same clouds; ``N`` items are ``N / 2`` datatakes of two
  alternating orbits whose swath edges leave nodata inside both rasters. Cloud cover per
  datatake: half of them under 10 %, a third 30-80 %, one ~100 % (two items), the rest
  10-30 %.

Per scene, one Cloud Optimized GeoTIFF per band (rasterio driver ``COG``: 512 px blocks,
deflate with predictor 2, internal overviews): ``B02 B03 B04 B08`` (10 m, uint16, nodata 0),
``SCL`` (20 m, uint8, nodata 0) and ``MSK_CLDPRB`` (20 m, uint8 0..100, exactly 0 where
clear, nodata 255), and a STAC FeatureCollection ``collection.json`` (relative hrefs,
``raster:bands`` nodata and data_type, footprints in lon/lat, ``eo:cloud_cover`` measured on
the data, ``renders.best``). As in real L2A products the 20 m bands are valid one 10 m pixel
beyond the 10 m bands along a swath edge.

A finished collection is kept: a marker file records the parameters and the generator
version, and a later call with the same parameters returns at once.

Run: ``python benchmarks/generate.py [--scenes 24] [--size 4096] [--realistic] [--stack]
[--dir DIR]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import math
import os
import shutil
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numexpr
import numpy
import numpy.typing as npt
import rasterio
from rasterio.crs import CRS
from rasterio.transform import Affine, from_origin
from rasterio.warp import transform, transform_geom
from shapely.geometry import Polygon, box, mapping

VERSION = "2"
COLLECTION_ID = "s2-synthetic"
CENTRE = (-103.19, 40.14)  # lon, lat (Earth Engine's seed example, eastern Colorado)
EPSG = 32613
RES = 10.0  # m, the 10 m bands; SCL and MSK_CLDPRB are 20 m
START = dt.datetime(2021, 7, 1, 17, 50, tzinfo=dt.UTC)
DAYS = 61.0  # 2021-07-01 .. 2021-08-31
STACK_COUNTS = (8, 16, 32, 64)
DEFAULT_DIR = Path(__file__).resolve().parent / "data"

BANDS_10M = ("B02", "B03", "B04", "B08")
COG_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"
RENDERS = {
    "best": {"quality": "-MSK_CLDPRB", "bands": ["B04", "B03", "B02"], "min": 0, "max": 4500},
}
# surface reflectance (DN = reflectance x 10000) of water, green vegetation, bare soil
SURFACE = {
    "B02": (350.0, 300.0, 900.0),
    "B03": (450.0, 650.0, 1200.0),
    "B04": (300.0, 400.0, 1550.0),
    "B08": (150.0, 3600.0, 2300.0),
}
CLOUD = {"B02": 6200.0, "B03": 6000.0, "B04": 5900.0, "B08": 6400.0}

F32 = npt.NDArray[numpy.float32]


@dataclass(frozen=True)
class SceneSpec:
    """What one scene looks like (everything needed to paint it in a worker process)."""

    index: int
    id: str
    datetime: str
    platform: str
    orbit: int  # relative orbit; 0 = the scene covers the whole area
    cover: float  # target cloud cover, 0..1
    haze: bool
    size: int
    seed: int
    part: int = 0  # 0: the whole grid; 1: the north tile of a datatake, 2: its south tile


# ---------------------------------------------------------------------------------- grid


def grid_origin(size: int) -> tuple[float, float]:
    """Upper-left corner (x, y) in EPSG:32613 of a size x size 10 m grid centred on CENTRE."""
    xs, ys = transform(CRS.from_epsg(4326), CRS.from_epsg(EPSG), [CENTRE[0]], [CENTRE[1]])
    half = size * RES / 2
    return round((xs[0] - half) / 20) * 20, round((ys[0] + half) / 20) * 20


def centre_square(size: int, pixels: int) -> tuple[float, float, float, float]:
    """A square of ``pixels`` at 10 m around the centre of the generated ``size`` grid."""
    x0, y0 = grid_origin(size)
    cx, cy = x0 + size * RES / 2, y0 - size * RES / 2
    half = pixels * RES / 2
    return (cx - half, cy - half, cx + half, cy + half)


def grid_transform(size: int, res: float) -> Affine:
    """Geotransform of the grid at resolution ``res``."""
    x0, y0 = grid_origin(size)
    return from_origin(x0, y0, res, res)


# ---------------------------------------------------------------------------------- noise


def _cubic_weights(n_out: int, n_in: int, cell: float) -> npt.NDArray[numpy.float32]:
    """Dense (n_out, n_in) cubic B-spline interpolation matrix (output px -> grid nodes)."""
    t = (numpy.arange(n_out) + 0.5) / cell  # position in grid cells
    nodes = numpy.arange(n_in)
    d = numpy.abs(t[:, None] - nodes[None, :] + 1.0)  # node j sits at cell j - 1
    w = numpy.where(
        d < 1,
        (4 - 6 * d**2 + 3 * d**3) / 6,
        numpy.where(d < 2, (2 - d) ** 3 / 6, 0.0),
    )
    return w.astype("float32")


def smooth_noise(rng: numpy.random.Generator, shape: tuple[int, int], cell: float) -> F32:
    """Smooth random field with features about ``cell`` pixels wide, mean 0, std 1."""
    h, w = shape
    gh, gw = math.ceil(h / cell) + 3, math.ceil(w / cell) + 3
    grid = rng.standard_normal((gh, gw)).astype("float32")
    field = _cubic_weights(h, gh, cell) @ grid @ _cubic_weights(w, gw, cell).T
    field -= field.mean()
    field /= field.std() or 1.0
    return field.astype("float32")


# ---------------------------------------------------------------------------------- landscape


@functools.lru_cache(maxsize=2)
def landscape(size: int, seed: int) -> tuple[F32, F32, F32, F32]:
    """Fractions of water, vegetation and bare soil (10 m grid), shared by every scene, and a
    sensor-noise field 64 px larger, of which each band of each scene takes a shifted window."""
    rng = numpy.random.default_rng([seed, 1])
    relief = 0.8 * smooth_noise(rng, (size, size), 300) + 0.4 * smooth_noise(rng, (size, size), 60)
    moisture = smooth_noise(rng, (size, size), 120)
    water = numpy.clip((relief - 1.9) * 4, 0, 1)
    veg = numpy.clip(0.5 + 0.6 * moisture, 0, 1) * (1 - water)
    # centre-pivot fields: green discs of 400 m radius
    radius = 40  # pixels
    for _ in range(size * size // 120_000):
        r0, c0 = (int(v) for v in rng.integers(radius, size - radius, 2))
        win = (slice(r0 - radius, r0 + radius), slice(c0 - radius, c0 + radius))
        rows, cols = numpy.ogrid[-radius:radius, -radius:radius]
        disc = rows**2 + cols**2 < radius**2
        veg[win] = numpy.where(disc, numpy.maximum(veg[win], 0.9 * (1 - water[win])), veg[win])
    bare = 1 - water - veg
    noise = rng.standard_normal((size + 64, size + 64), dtype="float32") * 25
    return water.astype("float32"), veg.astype("float32"), bare.astype("float32"), noise


def swath(spec: SceneSpec, shape: tuple[int, int], res: float) -> npt.NDArray[numpy.bool_]:
    """Valid-data mask of the scene's swath on a grid of ``shape`` pixels of ``res`` m."""
    if spec.orbit == 0:
        return numpy.ones(shape, dtype=bool)
    rows, cols = numpy.ogrid[: shape[0], : shape[1]]
    a, b = _edge(spec)
    x = (cols + 0.5) * res / RES  # in 10 m pixels
    y = (rows + 0.5) * res / RES
    edge = a + b * y
    return (x < edge) if spec.orbit % 2 else (x > edge)


def _edge(spec: SceneSpec) -> tuple[float, float]:
    """Swath edge x = a + b * y (10 m pixels): orbit 1 keeps the west, orbit 2 the east."""
    tilt = math.tan(math.radians(12.0))
    if spec.orbit % 2:
        return 0.62 * spec.size - 0.5 * tilt * spec.size, tilt
    return 0.33 * spec.size - 0.5 * tilt * spec.size, tilt


def rows_of(spec: SceneSpec) -> tuple[int, int]:
    """The 10 m rows of the grid a scene's raster holds (a datatake's tile: a band of rows)."""
    if spec.part == 0:
        return 0, spec.size
    cut = spec.size // 32 * 2  # an even row: the 20 m grid is cut at the same place
    if spec.part == 1:
        return 0, spec.size // 2 + cut
    return spec.size // 2 - cut, spec.size


def footprint(spec: SceneSpec) -> Polygon:
    """Valid-data footprint in EPSG:32613 (40 m larger than the data, so it contains it)."""
    x0, y0 = grid_origin(spec.size)
    r0, r1 = rows_of(spec)
    full = box(x0, y0 - r1 * RES, x0 + spec.size * RES, y0 - r0 * RES)
    if spec.orbit == 0:
        return full
    a, b = _edge(spec)
    top, bottom = (x0 + a * RES, y0), (x0 + (a + b * spec.size) * RES, y0 - spec.size * RES)
    far = x0 - spec.size * RES if spec.orbit % 2 else x0 + 2 * spec.size * RES
    half = Polygon([top, bottom, (far, bottom[1]), (far, top[1])])
    return half.buffer(40.0, join_style="mitre").intersection(full)


def clouds(spec: SceneSpec, valid: npt.NDArray[numpy.bool_]) -> npt.NDArray[numpy.uint8]:
    """Cloud probability 0..100 on the 20 m grid: soft blobs, exactly 0 where clear."""
    n = valid.shape[0]
    rng = numpy.random.default_rng([spec.seed, 2, spec.index])
    field = 0.75 * smooth_noise(rng, (n, n), 120) + 0.35 * smooth_noise(rng, (n, n), 25)
    if spec.cover >= 1:
        prob = 70 + 25 * numpy.tanh(field)
    elif spec.cover <= 0:
        prob = numpy.zeros((n, n), dtype="float32")
    else:
        thr = numpy.quantile(field[valid] if valid.any() else field, 1 - spec.cover)
        soft = numpy.clip((field - thr) / 0.8, 0, 1)
        prob = numpy.where(field > thr, numpy.maximum(100 * soft**0.7, 1), 0)
    if spec.haze:  # thin haze everywhere: 1..6, never exactly clear
        prob = numpy.maximum(prob, 3.5 + 2.5 * numpy.tanh(smooth_noise(rng, (n, n), 200)))
    return numpy.clip(numpy.ceil(prob), 0, 100).astype("uint8")


def _up2(a: npt.NDArray[Any], n: int) -> npt.NDArray[Any]:
    """20 m grid to the 10 m grid (each pixel into 2 x 2)."""
    return numpy.repeat(numpy.repeat(a, 2, axis=0), 2, axis=1)[:n, :n]


def paint(spec: SceneSpec) -> dict[str, tuple[npt.NDArray[Any], float]]:
    """Every band of a scene as (array, resolution); nodata outside the swath."""
    n, n20 = spec.size, spec.size // 2
    valid10 = swath(spec, (n, n), RES)
    valid20 = swath(spec, (n20, n20), 2 * RES)
    # a 20 m pixel is valid when any of its 10 m pixels is (the 20 m bands reach further)
    valid20 |= valid10.reshape(n20, 2, n20, 2).any(axis=(1, 3))
    prob = clouds(spec, valid20)
    prob[~valid20] = 255

    water, veg, bare, noise = landscape(n, spec.seed)
    day = (dt.datetime.fromisoformat(spec.datetime) - START).total_seconds() / 86400
    green = 1.0 - 0.25 * day / DAYS  # vegetation dries over the summer
    rng = numpy.random.default_rng([spec.seed, 3, spec.index])
    prob10 = _up2(numpy.where(prob == 255, 0, prob).astype("float32"), n)
    opacity = numexpr.evaluate("(p / 100) ** 0.8", local_dict={"p": prob10}).astype("float32")
    shadow = numpy.roll(opacity, (40, -60), axis=(0, 1))
    # surface light left: brightness, cloud shadow (where no cloud), cloud opacity
    factor = numexpr.evaluate(
        "bright * (1 - 0.55 * shadow * (1 - opacity)) * (1 - opacity)",
        local_dict={"bright": rng.uniform(0.96, 1.04), "shadow": shadow, "opacity": opacity},
    )
    out: dict[str, tuple[npt.NDArray[Any], float]] = {}
    for name in BANDS_10M:
        w_, v_, b_ = SURFACE[name]
        dy, dx = (int(v) for v in rng.integers(0, 64, 2))
        value = numexpr.evaluate(
            "(water * w_ + veg * v_ + bare * b_) * factor + cloud * opacity + noise + 0.5",
            local_dict={
                "water": water,
                "veg": veg,
                "bare": bare,
                "w_": w_,
                "v_": v_ * green + b_ * (1 - green),
                "b_": b_,
                "factor": factor,
                "cloud": CLOUD[name],
                "opacity": opacity,
                "noise": noise[dy : dy + n, dx : dx + n],
            },
        )
        band = numpy.clip(value, 1, 20000, out=value).astype("uint16")  # rounded: + 0.5
        band[~valid10] = 0
        out[name] = (band, RES)
    scl = numpy.full((n20, n20), 4, dtype="uint8")  # vegetation
    scl[(bare[::2, ::2] > 0.5)] = 5
    scl[(water[::2, ::2] > 0.5)] = 6
    scl[(shadow[::2, ::2] * (1 - opacity[::2, ::2]) > 0.2)] = 3
    scl[(prob > 0) & (prob <= 30)] = 10
    scl[(prob > 30) & (prob <= 65)] = 8
    scl[(prob > 65) & (prob <= 100)] = 9
    scl[~valid20] = 0
    out["SCL"] = (scl, 2 * RES)
    out["MSK_CLDPRB"] = (prob, 2 * RES)
    return out


# ---------------------------------------------------------------------------------- files


def write_cog(
    path: Path, array: npt.NDArray[Any], res: float, size: int, nodata: int, row0: int = 0
) -> None:
    """One band as a COG: 512 px blocks, deflate + predictor 2, internal overviews; its first
    row is the grid's 10 m row ``row0``."""
    categorical = array.dtype == numpy.uint8
    profile = {
        "driver": "COG",
        "width": array.shape[1],
        "height": array.shape[0],
        "count": 1,
        "dtype": str(array.dtype),
        "crs": CRS.from_epsg(EPSG),
        "transform": grid_transform(size, res) * Affine.translation(0, row0 * RES / res),
        "nodata": nodata,
        "blocksize": 512,
        "compress": "deflate",
        "predictor": 2,
        "overview_resampling": "nearest" if categorical else "average",
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(array, 1)


def _asset(href: str, dtype: str, nodata: int, res: float) -> dict[str, Any]:
    return {
        "href": href,
        "type": COG_TYPE,
        "roles": ["data"],
        "raster:bands": [{"nodata": nodata, "data_type": dtype, "spatial_resolution": res}],
    }


def write_scene(spec: SceneSpec, root: Path) -> dict[str, Any]:
    """Paint and write one scene; return its STAC item (hrefs relative to ``root``)."""
    numexpr.set_num_threads(1)  # one scene per process
    folder = root / "scenes" / spec.id
    folder.mkdir(parents=True, exist_ok=True)
    bands = paint(spec)
    r0, r1 = rows_of(spec)
    if spec.part:  # a datatake's tile: its rows of the painted grid
        bands = {
            name: (array[int(r0 * RES / res) : int(r1 * RES / res)], res)
            for name, (array, res) in bands.items()
        }
    assets: dict[str, Any] = {}
    for name, (array, res) in bands.items():
        nodata = 255 if name == "MSK_CLDPRB" else 0
        write_cog(folder / f"{name}.tif", array, res, spec.size, nodata, r0)
        href = f"scenes/{spec.id}/{name}.tif"
        assets[name] = _asset(href, str(array.dtype), nodata, res)
    prob = bands["MSK_CLDPRB"][0]
    valid = prob != 255
    cover = 100.0 * float(((prob > 0) & valid).sum()) / max(int(valid.sum()), 1)
    geom = transform_geom(
        CRS.from_epsg(EPSG), CRS.from_epsg(4326), mapping(footprint(spec).segmentize(500.0))
    )
    ring = numpy.asarray(geom["coordinates"][0])
    bbox = [*ring.min(axis=0).tolist(), *ring.max(axis=0).tolist()]
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "stac_extensions": [
            "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
            "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
            "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
        ],
        "id": spec.id,
        "collection": COLLECTION_ID,
        "geometry": geom,
        "bbox": [round(v, 7) for v in bbox],
        "properties": {
            "datetime": spec.datetime,
            "platform": spec.platform,
            "constellation": "sentinel-2",
            "instruments": ["msi"],
            "eo:cloud_cover": round(cover, 2),
            "proj:epsg": EPSG,
            "sat:relative_orbit": {0: 0, 1: 56, 2: 98}[spec.orbit],
            **({"s2:datatake_id": spec.id.rsplit("_", 2)[0]} if spec.part else {}),
        },
        "assets": assets,
        "links": [],
    }


def _write_scene_job(args: tuple[SceneSpec, Path]) -> dict[str, Any]:
    return write_scene(*args)


# ---------------------------------------------------------------------------------- plans


def cloud_covers(n: int, rng: numpy.random.Generator) -> list[float]:
    """Skewed covers: ~half nearly clear (< 5 %), a few fully cloudy, the rest in between."""
    n_clear = round(n / 2)
    n_full = max(1, round(n / 10))
    covers = [float(rng.uniform(0.0, 0.04)) if i % 3 else 0.0 for i in range(n_clear)]
    covers += [1.0] * n_full
    covers += [float(rng.uniform(0.1, 0.9)) for _ in range(n - n_clear - n_full)]
    rng.shuffle(covers)
    return covers


def realistic_covers(n: int, rng: numpy.random.Generator) -> list[float]:
    """Per datatake: half under 10 % (a third of them 0 %), a third 30-80 %, one ~100 %,
    the rest 10-30 %."""
    n_clear, n_mid, n_full = round(n / 2), round(n / 3), 1
    covers = [float(rng.uniform(0.0, 0.08)) if i % 3 else 0.0 for i in range(n_clear)]
    covers += [float(rng.uniform(0.3, 0.8)) for _ in range(n_mid)]
    covers += [1.0] * n_full
    covers += [float(rng.uniform(0.1, 0.3)) for _ in range(n - n_clear - n_mid - n_full)]
    rng.shuffle(covers)
    return covers


def plan_realistic(n: int, size: int, seed: int) -> list[SceneSpec]:
    """``n`` (even) items: ``n / 2`` datatakes of two tiles each with equal datetimes."""
    rng = numpy.random.default_rng([seed, 1])
    takes = n // 2
    covers = realistic_covers(takes, rng)
    specs = []
    for i in range(takes):
        when = START + dt.timedelta(days=int(i * DAYS / takes), minutes=int(rng.integers(0, 20)))
        platform = "sentinel-2a" if i % 2 == 0 else "sentinel-2b"
        orbit = 1 + i % 2
        for part, mgrs in ((1, "13TEF"), (2, "13TEE")):
            sid = f"S2{platform[-1].upper()}_{when:%Y%m%dT%H%M%S}_R{orbit:03d}_{mgrs}_L2A"
            specs.append(
                SceneSpec(
                    index=i,  # both tiles of a datatake: the same painting, clouds included
                    id=sid,
                    datetime=when.isoformat().replace("+00:00", "Z"),
                    platform=platform,
                    orbit=orbit,
                    cover=covers[i],
                    haze=False,
                    size=size,
                    seed=seed,
                    part=part,
                )
            )
    return specs


def plan_scenes(n: int, size: int, seed: int, stack: bool = False) -> list[SceneSpec]:
    """Scene specs in acquisition order: two alternating orbits over the two months."""
    rng = numpy.random.default_rng([seed, 0])
    covers = cloud_covers(n, rng)
    if stack:  # hazy scenes, partly cloudy: every item can win somewhere
        covers = [float(rng.uniform(0.05, 0.6)) for _ in range(n)]
    specs = []
    step = DAYS / n
    for i in range(n):
        # whole days apart; the minute keeps two scenes of one day (64 scenes) apart
        minutes = 10 * (i % 2) + int(rng.integers(0, 10))
        when = START + dt.timedelta(days=int(i * step), minutes=minutes)
        platform = "sentinel-2a" if i % 2 == 0 else "sentinel-2b"
        orbit = 0 if stack else 1 + i % 2
        sid = f"S2{platform[-1].upper()}_13TEE_{when:%Y%m%dT%H%M%S}_R{orbit:03d}_L2A"
        specs.append(
            SceneSpec(
                index=i,
                id=sid,
                datetime=when.isoformat().replace("+00:00", "Z"),
                platform=platform,
                orbit=orbit,
                cover=covers[i],
                haze=stack,
                size=size,
                seed=seed,
            )
        )
    return specs


def _feature_collection(items: Sequence[dict[str, Any]], title: str) -> dict[str, Any]:
    return {
        "type": "FeatureCollection",
        "title": title,
        "description": "Synthetic Sentinel-2 L2A-like scenes for benchmarks/tiles.py.",
        "renders": RENDERS,
        "features": list(items),
    }


def _write_scenes(specs: Sequence[SceneSpec], root: Path, workers: int) -> list[dict[str, Any]]:
    jobs = [(s, root) for s in specs]
    if workers <= 1:
        return [_write_scene_job(j) for j in jobs]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(_write_scene_job, jobs))


def _cached(root: Path, params: dict[str, Any]) -> bool:
    marker = root / "complete.json"
    return marker.is_file() and json.loads(marker.read_text()) == params


def _start(root: Path) -> None:
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)


def generate_scenes(
    directory: Path = DEFAULT_DIR,
    scenes: int = 24,
    size: int = 4096,
    seed: int = 20210701,
    workers: int | None = None,
    realistic: bool = False,
) -> Path:
    """Generate (or reuse) the scene collection; return the path of its collection.json.

    ``realistic``: datatakes of two tiles with equal datetimes, issue 19's cloud covers
    (``scenes`` must be even).
    """
    if not 1 <= scenes <= 64:
        raise ValueError("scenes must be in 1..64")
    if size % 512:
        raise ValueError("size must be a multiple of 512")
    if realistic and scenes % 2:
        raise ValueError("a realistic collection has two tiles per datatake: scenes must be even")
    kind = "realistic" if realistic else "scenes"
    params = {"version": VERSION, "kind": kind, "scenes": scenes, "size": size, "seed": seed}
    root = Path(directory) / f"{kind}-{scenes}x{size}-{seed}"
    if _cached(root, params):
        return root / "collection.json"
    _start(root)
    plan = plan_realistic if realistic else plan_scenes
    items = _write_scenes(plan(scenes, size, seed), root, workers or os.cpu_count() or 1)
    how = "datatakes of two tiles" if realistic else "scenes"
    doc = _feature_collection(items, f"{scenes} synthetic Sentinel-2 {how}, two orbits")
    (root / "collection.json").write_text(json.dumps(doc, indent=1))
    (root / "complete.json").write_text(json.dumps(params))
    return root / "collection.json"


def generate_stack(
    directory: Path = DEFAULT_DIR,
    counts: Sequence[int] = STACK_COUNTS,
    size: int = 1024,
    seed: int = 20210701,
    workers: int | None = None,
) -> dict[int, Path]:
    """Generate (or reuse) 64 hazy scenes that all cover one area, and a collection of the
    first ``n`` scenes for each ``n`` in ``counts`` (1..64).

    Returns:
        The collection.json path for each count.
    """
    if not all(1 <= c <= 64 for c in counts):
        raise ValueError("counts must be in 1..64")
    params = {"version": VERSION, "kind": "stack", "scenes": 64, "size": size, "seed": seed}
    root = Path(directory) / f"stack-64x{size}-{seed}"
    if not _cached(root, params):
        _start(root)
        specs = plan_scenes(64, size, seed, stack=True)
        items = _write_scenes(specs, root, workers or os.cpu_count() or 1)
        (root / "items.json").write_text(json.dumps(items))
        (root / "complete.json").write_text(json.dumps(params))
    items = json.loads((root / "items.json").read_text())
    paths = {}
    for c in counts:
        paths[c] = root / f"collection-{c}.json"
        if not paths[c].is_file():
            doc = _feature_collection(items[:c], f"{c} hazy synthetic scenes over one area")
            paths[c].write_text(json.dumps(doc, indent=1))
    return paths


def describe(path: Path) -> dict[str, Any]:
    """Summary of a generated collection: item count, cloud covers, files, bytes."""
    doc = json.loads(path.read_text())
    covers = sorted(f["properties"]["eo:cloud_cover"] for f in doc["features"])
    files = list((path.parent / "scenes").rglob("*.tif"))
    times = [f["properties"]["datetime"] for f in doc["features"]]
    return {
        "items": len(doc["features"]),
        "equal datetimes": len(times) - len(set(times)),
        "clear (<5 %)": sum(c < 5 for c in covers),
        "<10 %": sum(c < 10 for c in covers),
        "30-80 %": sum(30 <= c <= 80 for c in covers),
        "full (>99 %)": sum(c > 99 for c in covers),
        "covers": covers,
        "files": len(files),
        "MB": round(sum(f.stat().st_size for f in files) / 1e6, 1),
    }


def main(argv: Sequence[str] | None = None) -> None:
    """Command line."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="cache folder")
    ap.add_argument("--scenes", type=int, default=24, help="scenes (1..64), default 24")
    ap.add_argument("--size", type=int, default=4096, help="pixels per side at 10 m")
    ap.add_argument("--seed", type=int, default=20210701)
    ap.add_argument("--workers", type=int, default=None, help="processes (default: CPUs)")
    ap.add_argument(
        "--realistic",
        action="store_true",
        help="datatakes of two tiles with equal datetimes, issue 19's cloud covers",
    )
    ap.add_argument(
        "--stack",
        action="store_true",
        help="also make the 8/16/32/64-items-per-tile stack (1024 px, hazy)",
    )
    args = ap.parse_args(argv)
    t = time.perf_counter()
    path = generate_scenes(
        args.dir, args.scenes, args.size, args.seed, args.workers, args.realistic
    )
    print(f"{path}  ({time.perf_counter() - t:.1f} s)  {describe(path)}")
    if args.stack:
        t = time.perf_counter()
        paths = generate_stack(args.dir, seed=args.seed, workers=args.workers)
        print(f"{paths[max(paths)]}  ({time.perf_counter() - t:.1f} s)")


if __name__ == "__main__":
    main()
