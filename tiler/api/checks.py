"""Checks of rendering and read parameters that libraries would otherwise fail on with a 500.

- ``colormap`` / ``colormap_name`` (titiler's names): the JSON is bounded in size, depth and
  entries, keys are integers, colours hex or 3-4 integers in 0..255;
- ``nodata``: a finite number, or ``nan``, that every band the request reads can hold (of
  the bands whose data type the catalogue recorded when it loaded).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from typing import Annotated, Any, Literal

from fastapi import Query
from rio_tiler.colormap import cmap as default_cmap
from rio_tiler.types import ColorMapType

from tiler.catalog.base import Catalog
from tiler.engine.io import nodata_fits, nodata_refused
from tiler.errors import InvalidNodata, InvalidVisualisation

#: longest ``colormap`` JSON, and most entries (a discrete colormap is applied entry by entry)
MAX_COLORMAP_LENGTH = 16384
MAX_COLORMAP_ENTRIES = 1024
#: matched whole (``fullmatch``: ``$`` would match before a trailing newline), ASCII digits only
_HEX = re.compile(r"#(?:[0-9a-fA-F]{3,4}|(?:[0-9a-fA-F]{2}){3,4})")
_KEY = re.compile(r"-?[0-9]{1,12}")
COLORMAP_FORMS = (
    'a JSON object of integer value -> colour, e.g. {"0": "#000000", "1": [255, 0, 0]}, or '
    'a JSON list of intervals [[[min, max], colour], ...], e.g. [[[0, 10], "#ff0000"]]; a '
    "colour is hex (#rgb, #rgba, #rrggbb, #rrggbbaa) or 3-4 integers in 0..255"
)

#: the colormap names rio-tiler knows (an enum in the OpenAPI document)
ColorMapName: Any = Literal[tuple(default_cmap.list())]


def _bad_colormap(why: str) -> InvalidVisualisation:
    return InvalidVisualisation(f"colormap: {why}; expected {COLORMAP_FORMS}")


def _colour(value: Any) -> tuple[int, int, int, int]:
    if isinstance(value, str):
        if not _HEX.fullmatch(value):
            raise _bad_colormap(f"colour {value[:40]!r} is not hex")
        digits = value[1:]
        if len(digits) in (3, 4):
            digits = "".join(ch * 2 for ch in digits)
        parts = [int(digits[i : i + 2], 16) for i in range(0, len(digits), 2)]
    elif isinstance(value, list) and len(value) in (3, 4):
        if not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255 for v in value):
            raise _bad_colormap(f"colour {str(value)[:60]} must be integers in 0..255")
        parts = list(value)
    else:
        raise _bad_colormap(f"colour {str(value)[:60]} is neither hex nor 3-4 integers")
    if len(parts) == 3:
        parts.append(255)
    return (parts[0], parts[1], parts[2], parts[3])


def nesting_depth(text: str, opening: str = "[{", closing: str = "]}") -> int:
    """How deeply brackets nest in untrusted ``text``, counted before any parser sees it."""
    depth = deepest = 0
    for ch in text:
        if ch in opening:
            depth += 1
            deepest = max(deepest, depth)
        elif ch in closing:
            depth -= 1
    return deepest


def _interval(entry: Any) -> tuple[tuple[float, float], tuple[int, int, int, int]]:
    if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], list)):
        raise _bad_colormap("an interval is [[min, max], colour]")
    bounds = entry[0]
    if len(bounds) != 2 or not all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in bounds
    ):
        raise _bad_colormap(f"interval bounds {str(bounds)[:60]} must be two finite numbers")
    return (float(bounds[0]), float(bounds[1])), _colour(entry[1])


def parse_colormap(text: str) -> ColorMapType:
    """A ``colormap`` parameter as rio-tiler's colormap.

    Raises:
        InvalidVisualisation: too long or deep, not JSON, or entries of another form.
    """
    if len(text) > MAX_COLORMAP_LENGTH:
        raise _bad_colormap(f"longer than {MAX_COLORMAP_LENGTH} characters")
    if nesting_depth(text) > 4:
        raise _bad_colormap("nested more than 4 deep")
    try:
        value = json.loads(text)
    except ValueError:
        raise _bad_colormap("not valid JSON") from None
    if not isinstance(value, dict | list) or not value:
        raise _bad_colormap("empty, or neither an object nor a list")
    if len(value) > MAX_COLORMAP_ENTRIES:
        raise _bad_colormap(f"more than {MAX_COLORMAP_ENTRIES} entries")
    if isinstance(value, list):
        return [_interval(entry) for entry in value]
    out: dict[int, tuple[int, int, int, int]] = {}
    for key, colour in value.items():
        if not _KEY.fullmatch(key):
            raise _bad_colormap(f"key {key[:40]!r} is not an integer")
        out[int(key)] = _colour(colour)
    return out


def ColorMapParams(  # noqa: N802 - titiler's name
    colormap_name: Annotated[
        ColorMapName | None, Query(description="Colormap name (single band).")
    ] = None,
    colormap: Annotated[
        str | None,
        Query(
            max_length=MAX_COLORMAP_LENGTH,
            description=f"JSON-encoded custom colormap (single band): {COLORMAP_FORMS}.",
        ),
    ] = None,
) -> ColorMapType | None:
    """Titiler's ``colormap_name`` / ``colormap`` parameters, checked (400 if malformed)."""
    if colormap_name and colormap:
        raise InvalidVisualisation("give colormap_name or colormap, not both")
    if colormap_name:
        named: ColorMapType = default_cmap.get(colormap_name)
        return named
    if colormap:
        return parse_colormap(colormap)
    return None


# ---------------------------------------------------------------------------------------
# nodata


def check_nodata_value(value: float | None) -> float | None:
    """A nodata override: a finite number or NaN (``1e400`` is infinite: refused).

    Raises:
        InvalidNodata: infinite.
    """
    if value is None:
        return None
    value = float(value)
    if math.isinf(value):
        raise InvalidNodata(
            f"nodata={value}: must be a finite number (within +-1.8e308) or nan, and one "
            "that the bands' data type can hold"
        )
    return value


def check_nodata(catalog: Catalog, value: float | None, bands: Iterable[str]) -> None:
    """Refuse a nodata override that a band the request reads cannot hold.

    The data types are those the catalogue recorded when it loaded
    (:attr:`~tiler.catalog.models.CollectionInfo.data_types`): no file is opened and no
    catalogue queried per request. A band of unknown type is left to the read, which
    refuses the override the same way against the file's own data type
    (:func:`~tiler.engine.io.check_nodata_fits`).

    Raises:
        InvalidNodata: e.g. nan or 300 for an 8-bit band.
    """
    if value is None:
        return
    types = catalog.info().data_types
    for name in dict.fromkeys(bands):
        dtype = types.get(name)
        if dtype is None:
            continue
        try:
            ok = nodata_fits(value, dtype)
        except TypeError:  # a data type numpy does not know: the read decides
            continue
        if not ok:
            raise nodata_refused(value, name, dtype)
