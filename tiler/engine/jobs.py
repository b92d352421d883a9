"""Reads as jobs: the bands of an item grouped by file, and put back together per item.

A :class:`Job` reads some bands of one item, those stored in one file, so the files of an
item (band-per-file collections) are read at once rather than one after the other;
:class:`Assembly` collects the answers of an item's jobs until the item is complete.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy

from tiler.catalog.models import Item

_REMOTE_PREFIXES = ("/vsicurl", "/vsis3", "/vsigs", "/vsiaz", "/vsiadls", "/vsioss", "/vsiswift")


def is_remote(href: str) -> bool:
    """True for files behind a network round trip (URLs and GDAL's network file systems)."""
    return "://" in href or href.startswith(_REMOTE_PREFIXES)


@dataclass(frozen=True, slots=True)
class Job:
    """One read: bands ``names`` of ``item`` (those of one file, see :func:`jobs`).

    ``tag`` says what the read is for (the caller's label, e.g. which pass).
    """

    item: Item
    names: tuple[str, ...]
    tag: str = ""

    @property
    def hrefs(self) -> list[str]:
        """The files the read opens."""
        bands = self.item.bands
        return sorted({bands[n].href for n in self.names if n in bands})

    @property
    def remote(self) -> bool:
        """True if a file of the read is remote (:func:`is_remote`)."""
        return any(is_remote(h) for h in self.hrefs)


def jobs(item: Item, names: Sequence[str], tag: str = "") -> list[Job]:
    """The reads of bands ``names`` of ``item``: one per file (one job if it has none)."""
    by_file: dict[str, list[str]] = {}
    for name in names:
        band = item.bands.get(name)
        if band is not None:
            by_file.setdefault(band.href, []).append(name)
    if len(by_file) <= 1:
        return [Job(item, tuple(names), tag)]
    return [Job(item, tuple(group), tag) for group in by_file.values()]


class Assembly:
    """The answers of items' jobs, put together per item (by position).

    An item is complete once each of its jobs has answered. A job that found the item
    outside the grid makes the item empty; a job that failed makes it fail.
    """

    def __init__(self) -> None:
        self._left: dict[int, int] = {}
        self._arrays: dict[int, dict[str, numpy.ma.MaskedArray]] = {}
        self._outside: set[int] = set()
        self.failed: set[int] = set()
        self.expected: set[int] = set()

    def expect(self, index: int, count: int) -> None:
        """Item ``index`` is read by ``count`` jobs."""
        self.expected.add(index)
        self._left[index] = count
        self._arrays[index] = {}

    def add(self, index: int, arrays: dict[str, numpy.ma.MaskedArray] | None) -> bool:
        """Add one job's answer (None: outside the grid); True once the item is complete."""
        if index in self.failed:
            return False
        if arrays is None:
            self._outside.add(index)
        else:
            self._arrays[index].update(arrays)
        self._left[index] -= 1
        return self._left[index] == 0

    def take(self, index: int) -> dict[str, numpy.ma.MaskedArray] | None:
        """The bands of a complete item (None: it is outside the grid)."""
        del self._left[index]
        bands = self._arrays.pop(index)
        return None if index in self._outside else bands

    def fail(self, index: int) -> bool:
        """A job of item ``index`` failed; True the first time."""
        if index in self.failed:
            return False
        self.failed.add(index)
        self._left.pop(index, None)
        self._arrays.pop(index, None)
        return True
