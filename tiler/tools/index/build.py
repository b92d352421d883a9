"""``build_item_collection``: index GeoTIFF files into a STAC ItemCollection file."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from datetime import datetime as dt_datetime
from pathlib import Path
from typing import Any

from pystac.utils import str_to_datetime

from tiler.tools.index.datetimes import as_utc
from tiler.tools.index.errors import IndexingError, InvalidPatternError
from tiler.tools.index.grouping import default_groups, groups_from_pattern, match_group_pattern
from tiler.tools.index.items import build_item, write_json
from tiler.tools.index.scan import discover, scan_file

logger = logging.getLogger(__name__)

__all__ = ["build_item_collection"]


def build_item_collection(
    paths: Sequence[str | Path],
    *,
    output: Path,
    collection_id: str | None = None,
    group_pattern: str | None = None,
    datetime_pattern: str | None = None,
    datetime_format: str | None = None,
    datetime: str | None = None,
    properties: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Index GeoTIFF files into a STAC ItemCollection and write it to ``output``.

    Args:
        paths: Files and/or folders. Folders are searched recursively for
            ``*.tif`` / ``*.tiff`` (any case); hidden files and folders are skipped.
        output: Where the FeatureCollection JSON is written. Asset hrefs are
            relative (posix) to ``output.parent``. Parent folders are created.
        collection_id: Value of ``collection`` on every item; defaults to the
            stem of ``output``.
        group_pattern: Regular expression searched in each file's posix path
            relative to the folder it was found in (or its name, for a file given
            directly). The named group ``item`` is the item id, the optional
            named group ``band`` is the asset key. Files with the same ``item``
            form one item; files that do not match are skipped with a warning.
        datetime_pattern: Regular expression with a named group ``date``,
            searched in the relative path of an item's first file and then in its
            id.
        datetime_format: :func:`~datetime.datetime.strptime` format of the
            ``date`` group (e.g. ``"%Y%j"`` for Landsat ``YYYYDDD``). Without it
            the group may be ISO 8601, ``YYYYMMDD[THHMMSS]`` or ``YYYYDDD``.
        datetime: Fixed RFC 3339 datetime used for items whose datetime cannot be
            determined otherwise.
        properties: Extra properties for every item (they override the computed
            ones, except ``datetime`` which they must not contain); must be
            JSON-serialisable.

    Returns:
        The FeatureCollection, items sorted by datetime then id.

    Raises:
        NoFilesFoundError: No GeoTIFF in ``paths`` (or none matches
            ``group_pattern``).
        InvalidPatternError: A pattern does not compile or lacks its group.
        DatetimeNotFoundError: An item's datetime cannot be determined.
        IndexingError: Any other bad input: missing path, unreadable file, file
            without CRS, duplicate item ids or asset keys, bad options.
    """
    if isinstance(paths, str | Path):
        paths = [paths]
    output = Path(output)
    collection = collection_id if collection_id is not None else output.stem
    if not collection:
        raise IndexingError("collection_id must not be empty")

    group_re = _compile(group_pattern, "group_pattern", required="item", optional="band")
    date_re = _compile(datetime_pattern, "datetime_pattern", required="date")
    if datetime_format is not None and date_re is None:
        raise IndexingError(
            "datetime_format needs datetime_pattern (a regex with a named group 'date')"
        )
    fixed_datetime = _parse_fixed_datetime(datetime) if datetime is not None else None
    extra_properties = _check_properties(properties)

    sources = discover(paths)
    if group_re is not None:
        matched = match_group_pattern(sources, group_re)
        logger.info("Indexing %d file(s) into collection %r", len(matched), collection)
        scans = {src.path: scan_file(src) for src, _, _ in matched}
        groups = groups_from_pattern(matched, scans, group_re.pattern)
    else:
        logger.info("Indexing %d file(s) into collection %r", len(sources), collection)
        groups = default_groups([scan_file(src) for src in sources])

    base = output.parent.resolve()
    items = [
        build_item(
            group,
            collection=collection,
            base=base,
            date_re=date_re,
            datetime_format=datetime_format,
            fixed_datetime=fixed_datetime,
            extra_properties=extra_properties,
        )
        for group in groups
    ]
    items.sort(key=lambda item: (str_to_datetime(item["properties"]["datetime"]), item["id"]))

    fc: dict[str, Any] = {"type": "FeatureCollection", "features": items}
    write_json(fc, output)
    logger.info("Wrote %d item(s) to %s", len(items), output)
    return fc


# --------------------------------------------------------------------------- options


def _compile(
    pattern: str | None, option: str, *, required: str, optional: str | None = None
) -> re.Pattern[str] | None:
    """Compile a regex option and check its named groups."""
    if pattern is None:
        return None
    try:
        regex = re.compile(pattern)
    except re.error as err:
        raise InvalidPatternError(f"{option} {pattern!r} is not a valid regex: {err}") from err
    if required not in regex.groupindex:
        wanted = f"(?P<{required}>...)"
        if optional:
            wanted += f" and optionally (?P<{optional}>...)"
        raise InvalidPatternError(
            f"{option} {pattern!r} has no named group '{required}'; use {wanted}"
        )
    return regex


def _parse_fixed_datetime(value: str) -> dt_datetime:
    """Parse the fixed ``datetime`` option (RFC 3339; a bare date is midnight UTC)."""
    try:
        return as_utc(str_to_datetime(value))
    except (ValueError, OverflowError) as err:
        raise IndexingError(f"datetime {value!r} is not an RFC 3339 datetime: {err}") from err


def _check_properties(properties: dict[str, Any] | None) -> dict[str, Any]:
    """Check the extra properties are a JSON-serialisable mapping."""
    if properties is None:
        return {}
    if not isinstance(properties, dict):
        raise IndexingError(f"properties must be a dict, not {type(properties).__name__}")
    if "datetime" in properties:
        raise IndexingError(
            "properties must not contain 'datetime': use datetime_pattern or datetime"
        )
    try:
        json.dumps(properties, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise IndexingError(f"properties are not JSON-serialisable: {err}") from err
    return dict(properties)
