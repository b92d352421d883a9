"""Rendering the scenes and writing them as COGs plus a collection of STAC items."""

from __future__ import annotations

import json
import logging
import pathlib
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import numpy.typing as npt
import rasterio
import shapely
from rasterio.warp import transform_geom
from shapely.geometry import mapping
from shapely.geometry.polygon import orient

from tiler.tools.demo.clouds import Clouds, clear_somewhere, cloud_plan, scene_clouds
from tiler.tools.demo.grid import (
    BANDS,
    DEMO_COLLECTION_ID,
    EPSG,
    GRID_CRS,
    MASK_BAND,
    MASK_NODATA,
    REFLECTANCE_NODATA,
    RES,
    BoolArray,
    Grid,
)
from tiler.tools.demo.landscape import Landscape, greenness, landscape
from tiler.tools.demo.scenes import FIRST_DAY, Scene, footprint_polygon

logger = logging.getLogger(__name__)

__all__ = ["RENDERS", "generate", "item", "render", "write_cog"]

_COMMON_NAMES = {"B2": "blue", "B3": "green", "B4": "red", "B8": "nir"}
_CENTER_WAVELENGTH = {"B2": 0.49, "B3": 0.56, "B4": 0.665, "B8": 0.842}
_COG_MEDIA_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"
# Reflectance (x 10000) of a thick cloud in B2, B3, B4, B8.
_CLOUD = np.array([8600.0, 8350.0, 8200.0, 8700.0], dtype=np.float32)

_STAC_EXTENSIONS = [
    "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
    "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
    "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
]

RENDERS: dict[str, dict[str, Any]] = {
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


def render(
    scene: Scene, land: Landscape, clouds: Clouds, cleared: BoolArray
) -> npt.NDArray[np.uint16]:
    """Surface reflectance (x 10000) of a scene.

    Args:
        scene: The scene.
        land: The landscape.
        clouds: The scene's clouds.
        cleared: Pixels forced clear by :func:`~tiler.tools.demo.clouds.clear_somewhere`.

    Returns:
        uint16 array of shape (4, H, W), 0 outside the footprint.
    """
    rng = np.random.default_rng(scene.seed + 500)
    day = float((scene.date - FIRST_DAY).days)
    green = greenness(land, day)
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
    out = np.empty((len(BANDS), *green.shape), dtype=np.uint16)
    for b in range(len(BANDS)):
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
    out[:, ~clouds.valid] = REFLECTANCE_NODATA
    return out


def write_cog(
    path: pathlib.Path,
    data: npt.NDArray[Any],
    grid: Grid,
    nodata: int,
    resampling: str,
    level: int,
) -> None:
    """Write one band as a Cloud Optimized GeoTIFF.

    Args:
        path: Output file.
        data: 2-D array.
        grid: The demo grid.
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
        "crs": GRID_CRS,
        "transform": grid.transform,
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


def item(scene: Scene, grid: Grid, cloud_cover: float) -> dict[str, Any]:
    """The STAC item of a scene.

    Args:
        scene: The scene.
        grid: The demo grid.
        cloud_cover: Cloudy share of the footprint, percent.

    Returns:
        A STAC 1.0 Item as a dict.
    """
    polygon = orient(footprint_polygon(scene, grid), sign=1.0)
    polygon = shapely.segmentize(polygon, 256 * RES)
    geometry = _round_coords(transform_geom(GRID_CRS, "EPSG:4326", mapping(polygon)))
    lons = [p[0] for p in geometry["coordinates"][0]]
    lats = [p[1] for p in geometry["coordinates"][0]]
    assets: dict[str, Any] = {}
    for band in (*BANDS, MASK_BAND):
        is_mask = band == MASK_BAND
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
                    "nodata": MASK_NODATA if is_mask else REFLECTANCE_NODATA,
                    "data_type": "uint8" if is_mask else "uint16",
                    "spatial_resolution": int(RES),
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
            "gsd": int(RES),
            "eo:cloud_cover": cloud_cover,
            "proj:epsg": EPSG,
            "proj:shape": [grid.size, grid.size],
            "proj:transform": [float(v) for v in grid.transform[:6]],
        },
        "links": [],
        "assets": assets,
    }


def generate(directory: pathlib.Path, grid: Grid, scenes: Sequence[Scene]) -> None:
    """Write a whole demo into an existing, empty directory.

    Args:
        directory: Target directory.
        grid: The demo grid.
        scenes: The scenes to paint, in time order.
    """
    land = landscape(grid)
    plans = [cloud_plan(scene, grid) for scene in scenes]
    probabilities = [
        scene_clouds(scene, plan, grid).probability
        for scene, plan in zip(scenes, plans, strict=True)
    ]
    cleared = clear_somewhere(probabilities)
    features = []
    # GDAL compresses in background threads while numpy paints the next scene.
    with ThreadPoolExecutor(max_workers=2) as pool:
        writes: list[Future[None]] = []
        for scene, plan, prob, fixed in zip(scenes, plans, probabilities, cleared, strict=True):
            clouds = scene_clouds(scene, plan, grid)
            refl = render(scene, land, clouds, fixed)
            item_dir = directory / scene.item_id
            item_dir.mkdir()
            for i, band in enumerate(BANDS):
                path = item_dir / f"{band}.tif"
                writes.append(
                    pool.submit(write_cog, path, refl[i], grid, REFLECTANCE_NODATA, "average", 1)
                )
            path = item_dir / f"{MASK_BAND}.tif"
            writes.append(pool.submit(write_cog, path, prob, grid, MASK_NODATA, "nearest", 6))
            valid = clouds.valid
            cover = round(100.0 * float((prob[valid] > 0).sum()) / float(valid.sum()), 2)
            features.append(item(scene, grid, cover))
            logger.debug("demo: painted %s (cloud cover %.2f %%)", scene.item_id, cover)
            # Keep at most about one scene queued, to bound memory.
            while len(writes) > 2 * (len(BANDS) + 1):
                writes.pop(0).result()
        for write in writes:
            write.result()
    collection = {"type": "FeatureCollection", "features": features, "renders": RENDERS}
    text = json.dumps(collection, indent=2, ensure_ascii=False) + "\n"
    (directory / "demo.json").write_text(text, encoding="utf-8")
