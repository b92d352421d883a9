"""What a STAC Collection document says about a collection, read leniently.

The one reader of a collection document for every catalogue: a collection file's top
document (its title, description and ``renders``), and the documents of PgSTAC and STAC
API collections, whose :class:`~tiler.catalog.models.CollectionInfo` comes from them (the
extent, the summaries, and the band names ``tiler load`` writes in order). A field that is
missing or malformed reads as absent, never as an error: the document only describes.
"""

from __future__ import annotations

from typing import Any, TypedDict

from tiler.catalog.assets import asset_bands, common_name
from tiler.catalog.models import CollectionInfo, band_aliases, declared_data_types

#: the bounds of a collection whose document has no valid spatial extent
WORLD = (-180.0, -90.0, 180.0, 90.0)
#: the band names in order, written by ``tiler load`` (a database's JSON keeps no key order)
BANDS_KEY = "qualitymosaic:bands"


class Described(TypedDict):
    """The descriptive fields of a collection document (keyword arguments of a catalogue)."""

    title: str | None
    description: str | None
    renders: dict[str, dict[str, Any]]


def described(doc: dict[str, Any]) -> Described:
    """The title, description and named visualisations (STAC ``renders``) of a document."""
    return Described(
        title=doc.get("title"),
        description=doc.get("description"),
        renders=dict(doc.get("renders") or {}),
    )


def declared_bands(doc: dict[str, Any]) -> list[str] | None:
    """The band names the document declares in order (``qualitymosaic:bands``), or None."""
    declared = doc.get(BANDS_KEY)
    if isinstance(declared, list) and all(isinstance(b, str) for b in declared):
        return list(declared)
    return None


def extent_bounds(doc: dict[str, Any]) -> tuple[float, float, float, float]:
    """The first bbox of the spatial extent (the whole world when there is none)."""
    try:
        w, s, e, n = (float(v) for v in doc["extent"]["spatial"]["bbox"][0][:4])
    except (KeyError, IndexError, TypeError, ValueError):
        return WORLD
    return (w, s, e, n)


def extent_interval(doc: dict[str, Any]) -> tuple[str | None, str | None]:
    """The first interval of the temporal extent ((None, None) when there is none)."""
    try:
        start, end = doc["extent"]["temporal"]["interval"][0]
    except (KeyError, IndexError, TypeError, ValueError):
        return (None, None)
    return (start, end)


def declared_aliases(doc: dict[str, Any], bands: list[str]) -> dict[str, list[str]]:
    """Common names of the bands, from ``item_assets`` and the ``eo:bands`` summary.

    A summary entry counts only where its name is a band name (``B04`` on Planetary
    Computer); see :func:`~tiler.catalog.models.band_aliases`.
    """
    item_assets = doc.get("item_assets")
    pairs: list[tuple[str, str | None]] = []
    if isinstance(item_assets, dict):
        pairs += [(b.name, b.common_name) for b in asset_bands(item_assets).values()]
    summaries = doc.get("summaries")
    listed = summaries.get("eo:bands") if isinstance(summaries, dict) else None
    if isinstance(listed, list):
        for entry in listed:
            name = entry.get("name") if isinstance(entry, dict) else None
            if isinstance(name, str):
                pairs.append((name, common_name(entry)))
    return band_aliases(pairs, bands)


def declared_types(doc: dict[str, Any], bands: list[str]) -> dict[str, str]:
    """The bands' data types that ``item_assets`` declare (``raster:bands`` ``data_type``).

    ``tiler load`` copies the first item's assets there; a STAC API's collection may
    declare them too (Earth Search v1 does). Bands it does not declare are left out.
    """
    item_assets = doc.get("item_assets")
    if not isinstance(item_assets, dict):
        return {}
    return declared_data_types(asset_bands(item_assets).values(), bands)


def collection_info(
    doc: dict[str, Any], collection_id: str, bands: list[str], item_count: int | None
) -> CollectionInfo:
    """A collection's description from its STAC Collection document.

    Args:
        doc: the collection document.
        collection_id: the collection id (the catalogue's, which the document may lack).
        bands: the band names, in order (:func:`declared_bands`, else the catalogue's
            reading of its items).
        item_count: how many items the collection has (None: unknown).
    """
    return CollectionInfo(
        id=collection_id,
        **described(doc),
        bounds=extent_bounds(doc),
        interval=extent_interval(doc),
        bands=bands,
        item_count=item_count,
        summaries=dict(doc.get("summaries") or {}),
        aliases=declared_aliases(doc, bands),
        data_types=declared_types(doc, bands),
    )
