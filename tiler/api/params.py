"""Numbers in HTTP parameters: comma-separated finite numbers and an export's extent.

The routers' parsers of number lists (``min``/``max``/``gamma`` in :mod:`tiler.api.deps`,
the point of :mod:`tiler.api.point`) and of the exports' extent (:mod:`tiler.api.export`).
The four numbers of a bbox are read by :func:`tiler.catalog.filters.bbox_numbers`, in the
catalogue layer: the STAC ``bbox`` of a search needs them too, and every layer above it
(the api, the export command, the CLI) may import it there.
"""

from __future__ import annotations

import math

from tiler.catalog.filters import Bounds, bbox_numbers
from tiler.errors import BadRequest, quoted

__all__ = ["parse_extent", "parse_floats"]


def parse_floats(
    name: str,
    value: str,
    error: type[BadRequest] = BadRequest,
    expected: str = "a number or comma-separated numbers",
) -> tuple[float, ...]:
    """Comma-separated finite numbers.

    Args:
        name: the parameter's name, for the message.
        value: the text.
        error: the exception to raise.
        expected: what the message says is expected.

    Raises:
        BadRequest: (or ``error``) a value that is not a finite number.
    """
    try:
        out = tuple(float(v) for v in value.split(","))
    except ValueError:
        raise error(f"{name}={quoted(value)}: expected {expected}") from None
    if not all(math.isfinite(v) for v in out):
        raise error(f"{name}={quoted(value)}: numbers must be finite")
    return out


def parse_extent(value: str, name: str = "bbox") -> Bounds:
    """An export's ``minx,miny,maxx,maxy`` in any CRS: an area (min < max on both axes).

    Raises:
        BadRequest: empty, not 4 finite numbers, or not an area.
    """
    if value == "":
        raise BadRequest(f"{name} is empty: expected minx,miny,maxx,maxy")
    minx, miny, maxx, maxy = bbox_numbers(value, name, BadRequest)
    if minx >= maxx or miny >= maxy:
        raise BadRequest(f"{name} {quoted(value)}: min must be less than max")
    return minx, miny, maxx, maxy
