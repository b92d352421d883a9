"""The errors of the indexer."""

from __future__ import annotations

from tiler.errors import TilerError

__all__ = [
    "DatetimeNotFoundError",
    "IndexingError",
    "InvalidPatternError",
    "NoFilesFoundError",
]


class IndexingError(TilerError, ValueError):
    """The files or options given to the indexer cannot produce an ItemCollection."""


class NoFilesFoundError(IndexingError):
    """No GeoTIFF file was found in the given paths."""


class InvalidPatternError(IndexingError):
    """A regular expression option does not compile or lacks a required group."""


class DatetimeNotFoundError(IndexingError):
    """No datetime could be determined for an item."""
