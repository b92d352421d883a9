"""Datetimes found in file names and paths, and parsed from ``datetime_pattern`` groups."""

from __future__ import annotations

import re
from datetime import UTC
from datetime import datetime as dt_datetime

from pystac.utils import str_to_datetime

from tiler.tools.index.errors import IndexingError

__all__ = ["as_utc", "find_date", "parse_date_group"]

_MIN_YEAR = 1970
_MAX_YEAR = 2100

# Dates recognised in item ids and paths; the earliest match in the string wins.
_AUTO_YMD = re.compile(
    r"(?<!\d)(?P<y>\d{4})(?P<m>\d{2})(?P<d>\d{2})"
    r"(?:T(?P<H>\d{2})(?P<M>\d{2})(?P<S>\d{2}))?(?!\d)"
)
_AUTO_ISO = re.compile(
    r"(?<!\d)(?P<y>\d{4})-(?P<m>\d{2})-(?P<d>\d{2})"
    r"(?:T(?P<H>\d{2}):?(?P<M>\d{2}):?(?P<S>\d{2}))?(?!\d)"
)
# Landsat pre-collection scene id: L + sensor + satellite + WRS path/row + YYYYDDD.
_AUTO_LANDSAT = re.compile(r"(?<![A-Za-z0-9])L[A-Z]\d(?:\d{6})(?P<y>\d{4})(?P<j>\d{3})(?!\d)")
# MODIS granule: .AYYYYDDD.
_AUTO_MODIS = re.compile(r"(?<![A-Za-z0-9])A(?P<y>\d{4})(?P<j>\d{3})(?![A-Za-z0-9])")


def as_utc(value: dt_datetime) -> dt_datetime:
    """Naive datetimes are UTC; aware ones are converted to UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _valid_year(year: int) -> bool:
    return _MIN_YEAR <= year <= _MAX_YEAR


def _date_from_match(match: re.Match[str]) -> dt_datetime | None:
    """Build a datetime from an auto-detection match, or None if not a valid date."""
    parts = match.groupdict()
    year = int(parts["y"])
    if not _valid_year(year):
        return None
    try:
        if parts.get("j") is not None:
            day = dt_datetime.strptime(f"{year:04d}{parts['j']}", "%Y%j")
            if day.year != year:
                return None
            return day.replace(tzinfo=UTC)
        hour, minute, second = (int(parts[k] or 0) for k in ("H", "M", "S"))
        return dt_datetime(year, int(parts["m"]), int(parts["d"]), hour, minute, second, tzinfo=UTC)
    except ValueError:
        return None


def find_date(text: str) -> dt_datetime | None:
    """The earliest date found in ``text`` by the automatic patterns."""
    best: tuple[int, dt_datetime] | None = None
    for regex in (_AUTO_YMD, _AUTO_ISO, _AUTO_LANDSAT, _AUTO_MODIS):
        for match in regex.finditer(text):
            value = _date_from_match(match)
            if value is not None:
                if best is None or match.start() < best[0]:
                    best = (match.start(), value)
                break
    return best[1] if best else None


def parse_date_group(text: str, fmt: str | None, origin: str) -> dt_datetime:
    """Parse the ``date`` group of ``datetime_pattern``."""
    if fmt is not None:
        try:
            return as_utc(dt_datetime.strptime(text, fmt))
        except ValueError as err:
            raise IndexingError(
                f"{origin}: date {text!r} does not fit datetime_format {fmt!r}: {err}"
            ) from err
    found = find_date(text)
    if found is not None:
        return found
    if re.fullmatch(r"\d{7}", text) and _valid_year(int(text[:4])):
        try:
            return dt_datetime.strptime(text, "%Y%j").replace(tzinfo=UTC)
        except ValueError:
            pass
    try:
        return as_utc(str_to_datetime(text))
    except (ValueError, OverflowError) as err:
        raise IndexingError(
            f"{origin}: cannot parse date {text!r}; give datetime_format (e.g. '%Y%m%d' or '%Y%j')"
        ) from err
