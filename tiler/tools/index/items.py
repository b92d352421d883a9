"""Assembling STAC items from the scanned files of each group, and writing them."""

from __future__ import annotations

import json
import logging
import os
import re
from collections import Counter
from datetime import datetime as dt_datetime
from pathlib import Path
from typing import Any

import pystac
from pystac.utils import datetime_to_str
from shapely import union_all
from shapely.geometry import mapping, shape
from shapely.geometry.base import BaseGeometry
from shapely.geometry.polygon import orient

from tiler.tools.index.datetimes import find_date, parse_date_group
from tiler.tools.index.errors import DatetimeNotFoundError, IndexingError
from tiler.tools.index.grouping import DATA_ASSET, Group
from tiler.tools.index.scan import GEOM_PRECISION, Scan

logger = logging.getLogger(__name__)

__all__ = ["STAC_VERSION", "build_item", "write_json"]

STAC_VERSION = "1.0.0"
#: Tolerance (degrees) for dropping the points added along straight footprint edges.
SIMPLIFY_TOLERANCE = 1e-7


def _item_datetime(
    group: Group,
    first: Scan,
    date_re: re.Pattern[str] | None,
    fmt: str | None,
    fixed: dt_datetime | None,
) -> dt_datetime:
    """Determine an item's datetime from the configured sources, in order."""
    rel = first.source.rel
    if date_re is not None:
        for text in (rel, group.item_id):
            match = date_re.search(text)
            if match is not None and match.group("date"):
                return parse_date_group(match.group("date"), fmt, str(first.source.path))
        logger.warning(
            "datetime_pattern %r matches neither %r nor item id %r; trying other sources",
            date_re.pattern,
            rel,
            group.item_id,
        )
    if first.tag_datetime is not None:
        return first.tag_datetime
    for text in (group.item_id, rel):
        found = find_date(text)
        if found is not None:
            return found
    if fixed is not None:
        return fixed
    raise DatetimeNotFoundError(
        f"cannot determine the datetime of item {group.item_id!r} ({first.source.path}): "
        "no datetime tag and no YYYYMMDD / Landsat YYYYDDD date in its name; pass "
        "datetime_pattern (+ datetime_format) or a fixed datetime"
    )


def _natural_key(text: str) -> list[Any]:
    """Sort key putting B2 before B10."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", text)]


def _href(path: Path, base: Path) -> str:
    """Posix href of ``path`` relative to ``base`` (absolute URI if impossible)."""
    try:
        return Path(os.path.relpath(path, base)).as_posix()
    except ValueError:  # e.g. another drive on Windows
        return path.as_uri()


def _eo_bands(scan: Scan, key: str) -> list[dict[str, Any]]:
    """``eo:bands`` names: the asset key for one band, else descriptions or b1..bn."""
    bands: list[dict[str, Any]] = []
    for i in range(scan.count):
        desc = scan.descriptions[i] if i < len(scan.descriptions) else None
        name = key if scan.count == 1 and key != DATA_ASSET else desc or f"b{i + 1}"
        band: dict[str, Any] = {"name": name}
        if desc and desc != name:
            band["description"] = desc
        bands.append(band)
    return bands


def _round_coords(value: Any) -> Any:
    if isinstance(value, int | float):
        return round(float(value), GEOM_PRECISION)
    return [_round_coords(v) for v in value]


def _footprint(scans: list[Scan]) -> dict[str, Any]:
    """The first file's footprint, or the union of all when they differ."""
    geoms: list[BaseGeometry] = [shape(s.geometry) for s in scans]
    union = geoms[0]
    for geom in geoms[1:]:
        if not union.buffer(1e-9).contains(geom):
            union = union_all([union, geom])
    # Drop the densified points that lie on a straight line (within ~1 cm).
    union = union.simplify(SIMPLIFY_TOLERANCE, preserve_topology=True)
    if union.geom_type == "Polygon":
        union = orient(union, 1.0)
    elif union.geom_type == "MultiPolygon":
        union = type(union)([orient(p, 1.0) for p in union.geoms])
    geo = mapping(union)
    return {"type": geo["type"], "coordinates": _round_coords(geo["coordinates"])}


def _bbox(geometry: dict[str, Any]) -> list[float]:
    minx, miny, maxx, maxy = shape(geometry).bounds
    return [round(v, GEOM_PRECISION) for v in (minx, miny, maxx, maxy)]


def _grid_key(proj: dict[str, Any]) -> str:
    return json.dumps(proj, sort_keys=True)


def build_item(
    group: Group,
    *,
    collection: str,
    base: Path,
    date_re: re.Pattern[str] | None,
    datetime_format: str | None,
    fixed_datetime: dt_datetime | None,
    extra_properties: dict[str, Any],
) -> dict[str, Any]:
    """Assemble one STAC item dict from the scans of its files."""
    keys = sorted(group.assets, key=_natural_key)
    scans = [group.assets[k] for k in keys]
    first = min(scans, key=lambda s: str(s.source.path))
    when = _item_datetime(group, first, date_re, datetime_format, fixed_datetime)

    # Item-level projection = the most common grid; other assets carry their own.
    grids = Counter(_grid_key(s.proj) for s in scans)
    top = max(grids.values())
    item_proj = next(s.proj for s in scans if grids[_grid_key(s.proj)] == top)

    properties: dict[str, Any] = {"datetime": datetime_to_str(when)}
    properties.update(item_proj)
    clouds = [s.cloud_cover for s in scans if s.cloud_cover is not None]
    if clouds:
        properties["eo:cloud_cover"] = clouds[0]
    properties.update(extra_properties)

    geometry = _footprint(scans)
    item = pystac.Item(
        id=group.item_id,
        geometry=geometry,
        bbox=_bbox(geometry),
        datetime=when,
        properties=properties,
        collection=collection,
        stac_extensions=[
            "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
            "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
            "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
        ],
    )
    # The item schema allows "collection" only next to a rel="collection" link; like
    # rio-stac, point it at the collection id (no Collection document is written).
    item.add_link(
        pystac.Link(pystac.RelType.COLLECTION, collection, media_type=pystac.MediaType.JSON)
    )
    for key, scan in zip(keys, scans, strict=True):
        extra: dict[str, Any] = {
            k: v for k, v in scan.proj.items() if item_proj.get(k) != v and v is not None
        }
        extra["raster:bands"] = scan.raster_bands
        extra["eo:bands"] = _eo_bands(scan, key)
        item.add_asset(
            key,
            pystac.Asset(
                href=_href(scan.source.path, base),
                media_type=scan.media_type,
                roles=["data"],
                extra_fields=extra,
            ),
        )
    out = item.to_dict(include_self_link=False, transform_hrefs=False)
    out["stac_version"] = STAC_VERSION
    # The datetime property must be the string written above, whatever pystac did.
    out["properties"]["datetime"] = properties["datetime"]
    logger.debug("item %s: %d asset(s), %s", group.item_id, len(keys), properties["datetime"])
    return out


def write_json(data: dict[str, Any], output: Path) -> None:
    """Write pretty JSON atomically (temporary file + rename)."""
    output.parent.mkdir(parents=True, exist_ok=True)
    try:
        text = json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    except ValueError as err:  # NaN / inf sneaking in from metadata
        raise IndexingError(f"cannot write {output}: {err}") from err
    tmp = output.with_name(f".{output.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, output)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
