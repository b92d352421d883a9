"""An item's bands from its STAC assets (SPEC section 3).

Single-band assets give a band named after the asset key; multi-band assets give one band
per ``eo:bands`` name (else the file's band descriptions). ``raster:bands`` gives nodata,
scale, offset and data type; ``eo:bands`` (STAC 1.0) or ``bands`` (STAC 1.1) the common
name (``common_name`` / ``eo:common_name``), which requests may use as an alias.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import rasterio

from tiler.catalog.models import Band

_SKIP_ROLES = {"thumbnail", "overview", "visual", "metadata"}
# renderings (RGB composites, previews) even where an asset declares no role, as Earth
# Search v0 items do ("visual": a 3-band TCI, "overview": its low-resolution copy)
_SKIP_KEYS = {"visual", "overview", "thumbnail", "preview", "rendered_preview"}
_RASTER_SUFFIXES = (".tif", ".tiff", ".vrt", ".jp2", ".img", ".nc")


#: GDAL's network file systems (``/vsis3/bucket/key`` has no ``://`` but is remote)
_REMOTE_PREFIXES = ("/vsicurl", "/vsis3", "/vsigs", "/vsiaz", "/vsiadls", "/vsioss", "/vsiswift")


def is_remote(href: str) -> bool:
    """Whether ``href`` is behind a network round trip, not a local path.

    URLs (``scheme://...``: ``https://``, ``s3://``, ...) and paths of GDAL's network file
    systems (``/vsicurl/...``, ``/vsis3/...``, ...). The one answer for the catalogue (which
    never opens a remote file while loading) and the engine (which reads remote files in
    their own pool and remembers their failures).
    """
    return "://" in href or href.startswith(_REMOTE_PREFIXES)


def resolve(href: str, base: Path) -> str:
    """An href as read: remote ones and absolute paths as they are, relative under ``base``."""
    if is_remote(href) or Path(href).is_absolute():
        return href
    return str((base / href).resolve())


def _band_descriptions(href: str) -> list[str]:
    try:
        with rasterio.open(href) as src:
            return [d or f"b{i + 1}" for i, d in enumerate(src.descriptions)]
    except rasterio.errors.RasterioIOError:
        return []


def _number(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}.get(value.lower(), value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _num(value: Any) -> float | None:
    t = type(value)
    if t is float or t is int:
        return float(value)
    return _number(value)


def common_name(entry: Any) -> str | None:
    """The common name of an ``eo:bands`` / ``bands`` entry, or None.

    STAC 1.0's ``eo:bands`` say ``common_name``, STAC 1.1's ``bands`` ``eo:common_name``.
    """
    if type(entry) is not dict:
        return None
    name = entry.get("common_name") or entry.get("eo:common_name")
    return name if type(name) is str and name else None


def _band(name: str, href: str, bidx: int, info: Any, common: str | None = None) -> Band:
    if type(info) is not dict or not info:
        return Band(name, href, bidx, common_name=common)
    get = info.get
    data_type = get("data_type")
    return Band(
        name,
        href,
        bidx,
        _num(get("nodata")),
        _num(get("scale")),
        _num(get("offset")),
        data_type if type(data_type) is str else None,
        common,
    )


def item_bands(
    assets: dict[str, dict[str, Any]], base: Path, layouts: dict[str, list[str]] | None = None
) -> dict[str, Band]:
    """Bands of an item from its asset dicts (single-band: name = asset key).

    Skipped: assets with a thumbnail, overview, visual or metadata role, renderings by
    key (``visual``, ``overview``, ``thumbnail``, ``preview``, ``rendered_preview``) and
    non-raster media. A local asset that declares neither ``raster:bands`` nor
    ``eo:bands`` is opened once per asset key (the first item's file) to learn its band
    count and descriptions; items of one collection share that layout through
    ``layouts``. A remote one (:func:`is_remote`) is never opened while loading: it is
    taken as single-band.

    Args:
        assets: the item's ``assets`` mapping (STAC dicts).
        base: folder against which relative hrefs are resolved.
        layouts: band names per undeclared asset key, filled and reused across items.

    Returns:
        Bands by name, single-band assets first, then bands of multi-band assets.
    """
    layouts = {} if layouts is None else layouts
    single: dict[str, Band] = {}
    multi: dict[str, Band] = {}
    for key, asset in assets.items():
        if key in _SKIP_KEYS or not isinstance(asset, dict):
            continue
        href = asset.get("href")
        if not href or not isinstance(href, str):
            continue
        roles = asset.get("roles")
        if roles and not _SKIP_ROLES.isdisjoint(roles):
            continue
        media = asset.get("type") or ""
        if not isinstance(media, str):
            media = str(media)
        if (
            "tiff" not in media
            and "jp2" not in media
            and not href.lower().endswith(_RASTER_SUFFIXES)
        ):
            continue
        remote = is_remote(href)
        path = href if remote else resolve(href, base)
        raster = asset.get("raster:bands") or ()
        eo = asset.get("eo:bands") or asset.get("bands") or ()
        count = len(raster) if len(raster) >= len(eo) else len(eo)
        described: list[str] = []
        if count == 0 and not remote:
            if key not in layouts:
                layouts[key] = _band_descriptions(path)
            described = layouts[key]
            count = len(described)
        if count <= 1:
            common = common_name(eo[0]) if type(eo) is list and len(eo) == 1 else None
            single[key] = _band(key, path, 1, raster[0] if raster else None, common)
            continue
        names = [b.get("name") if isinstance(b, dict) else None for b in eo] if eo else described
        if not names or not all(names):
            names = (None if remote else _band_descriptions(path)) or [
                f"{key}_b{i + 1}" for i in range(count)
            ]
        for i, name in enumerate(names):
            if str(name) not in multi:
                info = raster[i] if i < len(raster) else None
                common = common_name(eo[i]) if type(eo) is list and i < len(eo) else None
                multi[str(name)] = _band(str(name), path, i + 1, info, common)
    for name, band in multi.items():
        single.setdefault(name, band)
    return single


def asset_bands(item_assets: dict[str, Any]) -> dict[str, Band]:
    """Band names a collection's ``item_assets`` describe, as :func:`item_bands` names them.

    The hrefs are placeholders (``item-assets://KEY.tif``): only the names and the
    ``raster:bands`` values mean something.
    """
    assets = {
        key: {**asset, "href": f"item-assets://{key}.tif"}
        for key, asset in item_assets.items()
        if isinstance(asset, dict)
    }
    return item_bands(assets, Path("/"))
