"""Small STAC collections for tests: COG files whose pixel values encode their source, the
STAC item and FeatureCollection documents around them, and where the shared real data are.

The fixtures of tests/conftest.py build on these; tests import them from here (never from a
conftest module, which is not importable reliably).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import morecantile
import numpy
import rasterio
from rasterio.transform import from_origin
from rasterio.warp import transform_bounds

WMQ = morecantile.tms.get("WebMercatorQuad")

#: the real data shared by the projects of this machine (skipped where absent)
SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"

# ---------------------------------------------------------------------------------------
# writing small STAC collections


def write_cog(
    path: Path,
    data: numpy.ndarray,
    *,
    transform,
    crs: str,
    nodata=None,
    descriptions: Sequence[str] | None = None,
) -> None:
    """Write a small tiled GeoTIFF with overviews (a COG for our purposes)."""
    if data.ndim == 2:
        data = data[None]
    profile = {
        "driver": "COG",
        "width": data.shape[2],
        "height": data.shape[1],
        "count": data.shape[0],
        "dtype": data.dtype.name,
        "crs": crs,
        "transform": transform,
        "nodata": nodata,
        "blocksize": 64,
        "overview_resampling": "nearest",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        if descriptions:
            for i, d in enumerate(descriptions):
                dst.set_band_description(i + 1, d)


def stac_item(
    item_id: str,
    when: str,
    files: dict[str, tuple[Path, float | None]],
    base: Path,
    properties: dict | None = None,
    multi: list[str] | None = None,
    collection: str = "test",
) -> dict[str, Any]:
    """A STAC item dict with one asset per band file (or one multi-band asset)."""
    first = next(iter(files.values()))[0]
    with rasterio.open(first) as src:
        b = transform_bounds(src.crs, "EPSG:4326", *src.bounds, densify_pts=21)
    assets = {}
    for key, (path, nodata) in files.items():
        asset: dict[str, Any] = {
            "href": str(path.relative_to(base)),
            "type": "image/tiff; application=geotiff",
            "roles": ["data"],
        }
        if multi:
            asset["eo:bands"] = [{"name": n} for n in multi]
        elif nodata is not None:
            asset["raster:bands"] = [{"nodata": nodata}]
        assets[key] = asset
    poly = [[b[0], b[1]], [b[2], b[1]], [b[2], b[3]], [b[0], b[3]], [b[0], b[1]]]
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": item_id,
        "collection": collection,
        "geometry": {"type": "Polygon", "coordinates": [poly]},
        "bbox": list(b),
        "properties": {"datetime": when, **(properties or {})},
        "links": [],
        "assets": assets,
    }


def write_collection(path: Path, items: list[dict], **extra: Any) -> Path:
    path.write_text(json.dumps({"type": "FeatureCollection", "features": items, **extra}))
    return path


# ---------------------------------------------------------------------------------------
# a synthetic collection: 7 items on a 64 x 64 UTM grid, values encode the source

CRS = "EPSG:32633"
ORIGIN = (500000.0, 5000640.0)  # ~15E 45.1N
RES = 10.0
SIZE = 64


def synthetic_collection(root: Path) -> dict[str, Any]:
    rng = numpy.random.default_rng(42)
    items = []
    specs = []
    n = 7
    for k in range(n):
        # item k covers a shifted window; items 5 and 6 are on shifted / coarser grids
        if k < 5:
            xoff, yoff, res, size = (k % 3) * 8 * RES, (k % 2) * 8 * RES, RES, SIZE
        elif k == 5:
            xoff, yoff, res, size = 3.3 * RES, -2.7 * RES, RES, SIZE
        else:
            xoff, yoff, res, size = -50.0, 40.0, 2 * RES, SIZE // 2 + 8
        transform = from_origin(ORIGIN[0] + xoff, ORIGIN[1] - yoff, res, res)
        # quality: small integers (many ties), NaN, inf and nodata holes
        q = rng.integers(0, 4, (size, size)).astype("float32")
        q[rng.random((size, size)) < 0.05] = numpy.nan
        q[rng.random((size, size)) < 0.02] = numpy.inf
        q[rng.random((size, size)) < 0.08] = -9999.0  # nodata
        # a: the source item, encoded; b: random with its own nodata holes
        a = numpy.full((size, size), (k + 1) * 100, dtype="uint16")
        a += rng.integers(0, 50, (size, size)).astype("uint16")
        b = rng.integers(1, 3000, (size, size)).astype("int16")
        b[rng.random((size, size)) < 0.1] = -1
        files = {}
        for name, arr, nodata in (("q", q, -9999.0), ("a", a, 0), ("b", b, -1)):
            p = root / f"item{k}" / f"{name}.tif"
            write_cog(p, arr, transform=transform, crs=CRS, nodata=nodata)
            files[name] = (p, nodata)
        when = dt.datetime(2021, 6, 1, tzinfo=dt.UTC) + dt.timedelta(days=3 * (k // 2))
        # items 0,1 / 2,3 / 4,5 share datetimes: the id breaks the tie
        item_id = f"it-{'abcdefg'[(k * 3) % n]}{k}"
        cloud = float((k * 37) % 100)
        platform = "sentinel-2a" if k % 2 == 0 else "sentinel-2b"
        items.append(
            stac_item(
                item_id,
                when.isoformat().replace("+00:00", "Z"),
                files,
                root,
                {"eo:cloud_cover": cloud, "platform": platform},
            )
        )
        specs.append({"id": item_id, "files": {k2: v[0] for k2, v in files.items()}})
    col = write_collection(
        root / "synthetic.json",
        items,
        renders={"default": {"quality": "q", "bands": ["a", "b", "q"]}},
    )
    return {"path": col, "items": items, "root": root}


# ---------------------------------------------------------------------------------------
# a cloudy series: uint8 cloud probability declared in raster:bands (quality -cld <= 0)


def cloudy_collection(root: Path) -> dict[str, Any]:
    rng = numpy.random.default_rng(7)
    items = []
    size = 64
    yy, xx = numpy.mgrid[0:size, 0:size]
    for k in range(12):
        transform = from_origin(ORIGIN[0] + (k % 3) * 40.0, ORIGIN[1], RES, RES)
        # soft blobs of cloud; items 0 and 1 are clear except a corner; many exact zeros
        cx, cy, r = rng.uniform(0, size, 2).tolist() + [rng.uniform(10, 40)]
        d = numpy.hypot(xx - cx, yy - cy)
        cld = numpy.clip((r - d) * 4, 0, 100).astype("uint8")
        if k < 2:
            cld[: size // 3 * (k + 1), : size // 3] = 60
        ref = numpy.full((size, size), 1000 + k, dtype="uint16")
        files = {}
        for name, arr, nodata in (("cld", cld, 255), ("ref", ref, 0)):
            p = root / f"c{k}" / f"{name}.tif"
            write_cog(p, arr, transform=transform, crs=CRS, nodata=nodata)
            files[name] = (p, nodata)
        when = dt.datetime(2020, 7, 1 + 2 * (k // 2), tzinfo=dt.UTC)
        it = stac_item(
            f"c-{k:02d}" if k % 2 else f"c-{k:02d}",
            when.isoformat(),
            files,
            root,
            {"eo:cloud_cover": float((cld > 0).mean() * 100)},
            collection="cloudy",
        )
        it["assets"]["cld"]["raster:bands"][0]["data_type"] = "uint8"
        it["assets"]["ref"]["raster:bands"][0]["data_type"] = "uint16"
        items.append(it)
    return {"path": write_collection(root / "cloudy.json", items)}


# ---------------------------------------------------------------------------------------
# real data


def shared_data(folder: str) -> Path | None:
    """A folder of the shared real data, None where it is not present."""
    path = SHARED / folder
    return path if path.is_dir() else None


def acquisition(path: Path) -> str:
    """The ACQUISITION_DATETIME tag of a file, as a STAC datetime."""
    with rasterio.open(path) as src:
        return str(src.tags()["ACQUISITION_DATETIME"]) + "Z"
