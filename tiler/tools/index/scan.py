"""Finding the GeoTIFF files to index and reading their metadata with rio-stac."""

from __future__ import annotations

import logging
import math
import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime as dt_datetime
from pathlib import Path
from typing import Any

import numpy
import pystac
import rasterio
from pystac.utils import str_to_datetime
from rasterio.enums import MaskFlags
from rasterio.errors import RasterioError
from rio_stac import create_stac_item

from tiler.tools.index.datetimes import as_utc
from tiler.tools.index.errors import IndexingError, NoFilesFoundError

logger = logging.getLogger(__name__)

__all__ = [
    "COG_MEDIA_TYPE",
    "GEOM_DENSIFY_PTS",
    "GEOM_PRECISION",
    "GEOTIFF_MEDIA_TYPE",
    "TIFF_SUFFIXES",
    "Scan",
    "Source",
    "discover",
    "scan_file",
]

GEOTIFF_MEDIA_TYPE = "image/tiff; application=geotiff"
COG_MEDIA_TYPE = f"{GEOTIFF_MEDIA_TYPE}; profile=cloud-optimized"
TIFF_SUFFIXES = frozenset({".tif", ".tiff"})

#: Points added to each edge of the bounds before reprojecting the footprint
#: (the value GDAL uses), and decimals kept in the WGS84 coordinates (~1 cm).
GEOM_DENSIFY_PTS = 21
GEOM_PRECISION = 7


@dataclass(frozen=True)
class Source:
    """A file to index, with the path its patterns are matched against."""

    path: Path
    """Absolute, resolved path of the file."""
    rel: str
    """Posix path relative to the folder it was found in (or its name)."""


@dataclass
class Scan:
    """What one read of a file tells about it."""

    source: Source
    count: int
    descriptions: tuple[str | None, ...]
    tag_datetime: dt_datetime | None
    media_type: str | None
    geometry: dict[str, Any]
    proj: dict[str, Any]
    raster_bands: list[dict[str, Any]]
    cloud_cover: float | None


def _is_hidden(parts: Iterable[str]) -> bool:
    return any(part.startswith(".") for part in parts)


def discover(paths: Iterable[str | Path]) -> list[Source]:
    """List the GeoTIFF files of ``paths``, without duplicates, in a stable order."""
    sources: dict[Path, Source] = {}
    given = 0
    for entry in paths:
        given += 1
        path = Path(entry).expanduser()
        if path.is_dir():
            root = path.resolve()
            found = sorted(
                p
                for p in root.rglob("*")
                if p.suffix.lower() in TIFF_SUFFIXES
                and p.is_file()
                and not _is_hidden(p.relative_to(root).parts)
            )
            if not found:
                logger.warning("No *.tif / *.tiff file under %s", path)
            for file in found:
                resolved = file.resolve()
                sources.setdefault(resolved, Source(resolved, file.relative_to(root).as_posix()))
        elif path.is_file():
            resolved = path.resolve()
            sources.setdefault(resolved, Source(resolved, path.name))
        else:
            raise IndexingError(f"{path} does not exist (or is not a file or folder)")
    if given == 0:
        raise NoFilesFoundError("no path given to index")
    if not sources:
        shown = ", ".join(str(p) for p in paths)
        raise NoFilesFoundError(f"no *.tif / *.tiff file found in: {shown}")
    return sorted(sources.values(), key=lambda s: str(s.path))


# --------------------------------------------------------------------------- reading


def scan_file(source: Source) -> Scan:
    """Read one file's metadata with rio-stac (one open per file)."""
    try:
        with rasterio.open(source.path) as src:
            if src.crs is None and not src.gcps[0]:
                raise IndexingError(f"{source.path} has no CRS: cannot compute its footprint")
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                item = create_stac_item(
                    src,
                    input_datetime=dt_datetime(2000, 1, 1, tzinfo=UTC),  # replaced later
                    with_proj=True,
                    with_raster=True,
                    with_eo=True,
                    geom_densify_pts=GEOM_DENSIFY_PTS,
                    geom_precision=GEOM_PRECISION,
                )
            for warning in caught:
                logger.debug("rio-stac on %s: %s", source.path, warning.message)
            raster_bands = [
                _clean_raster_band(b)
                for b in next(iter(item.assets.values())).extra_fields["raster:bands"]
            ]
            _fix_valid_percent(src, raster_bands)
            tag_datetime = _tag_datetime(src, source.path)
            media_type = _media_type(src, item)
            count = src.count
            descriptions = tuple(src.descriptions)
    except RasterioError as err:
        raise IndexingError(f"cannot read {source.path}: {err}") from err

    props = item.properties
    cloud = props.get("eo:cloud_cover")
    return Scan(
        source=source,
        count=count,
        descriptions=descriptions,
        tag_datetime=tag_datetime,
        media_type=media_type,
        geometry=item.geometry or {},
        proj={k: v for k, v in props.items() if k.startswith("proj:")},
        raster_bands=raster_bands,
        cloud_cover=float(cloud) if cloud is not None else None,
    )


def _media_type(src: Any, item: pystac.Item) -> str | None:
    """GeoTIFF media type, with the COG profile for tiled files with overviews."""
    if src.driver != "GTiff":
        auto = next(iter(item.assets.values())).media_type
        return str(auto) if auto else None
    layout = src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT", "").upper()
    if layout == "COG" or (src.profile.get("tiled") and src.overviews(1)):
        return COG_MEDIA_TYPE
    return GEOTIFF_MEDIA_TYPE


def _clean_raster_band(band: dict[str, Any]) -> dict[str, Any]:
    """Keep rio-stac's band info minus the histogram, identity scale/offset and NaNs."""
    out: dict[str, Any] = {}
    for key, value in band.items():
        if (
            key == "histogram"
            or (key == "scale" and value == 1)
            or (key == "offset" and value == 0)
        ):
            continue
        if key == "statistics":
            value = {
                k: v for k, v in value.items() if isinstance(v, int | float) and math.isfinite(v)
            }
            if not value:
                continue
        out[key] = value
    return out


def _fix_valid_percent(src: Any, bands: list[dict[str, Any]]) -> None:
    """Correct ``statistics.valid_percent`` of bands without any mask.

    rio-stac 0.12 computes it as ``count_nonzero(~arr.mask) / size``; when nothing
    is masked (no nodata, no NaN) ``arr.mask`` is the scalar ``False`` and the result
    is one pixel's worth (e.g. 0.027 % of a 61x61 band) instead of 100 %.
    """
    for index, band in zip(src.indexes, bands, strict=True):
        stats = band.get("statistics")
        if not stats or "valid_percent" not in stats:
            continue
        if src.mask_flag_enums[index - 1] != [MaskFlags.all_valid]:
            continue  # nodata / mask band: rio-stac's masked array is a full array
        if numpy.issubdtype(numpy.dtype(src.dtypes[index - 1]), numpy.floating):
            height, width = _stats_shape(src.height, src.width)
            data = src.read(index, out_shape=(height, width))
            stats["valid_percent"] = float(numpy.isfinite(data).mean() * 100)
        else:
            stats["valid_percent"] = 100.0


def _stats_shape(height: int, width: int, max_size: int = 1024) -> tuple[int, int]:
    """The decimated shape rio-stac reads statistics at (its ``raster_max_size``)."""
    if max(width, height) <= max_size:
        return height, width
    ratio = height / width
    if ratio > 1:
        return max_size, math.ceil(max_size / ratio)
    return math.ceil(max_size * ratio), max_size


def _tag_datetime(src: Any, path: Path) -> dt_datetime | None:
    """Datetime from the acquisition / TIFF datetime tags, if present and valid."""
    tags = src.tags()
    candidates = [
        ("ACQUISITION_DATETIME", tags.get("ACQUISITION_DATETIME")),
        ("IMAGERY:ACQUISITIONDATETIME", src.get_tag_item("ACQUISITIONDATETIME", "IMAGERY")),
        ("TIFFTAG_DATETIME", tags.get("TIFFTAG_DATETIME")),
    ]
    for name, value in candidates:
        if not value:
            continue
        text = value.strip()
        try:
            if re.fullmatch(r"\d{4}:\d{2}:\d{2} \d{2}:\d{2}:\d{2}", text):
                return dt_datetime.strptime(text, "%Y:%m:%d %H:%M:%S").replace(tzinfo=UTC)
            return as_utc(str_to_datetime(text))
        except (ValueError, OverflowError):
            logger.warning("%s: cannot parse %s=%r, ignoring it", path, name, value)
    return None
