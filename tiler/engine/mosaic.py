"""The quality mosaic of items on a grid.

The mosaic reads in two passes: the quality bands of the candidate items first, then the
output bands only of the items that won at least one pixel, all of them at once. The
quality pass reads in collection order and leaves out an item that can no longer change
any pixel: where every pixel it can reach (its raster extent, once known) already holds
the quality bound (:func:`quality_bound`) from an earlier item. A winner whose bands
cannot be read is left out and its pixels are decided again among the others, so the
result is always the exact mosaic of the items that could be read.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy
from rio_tiler.models import ImageData

from tiler.catalog.models import Item
from tiler.engine.budget import Budget, current_budget
from tiler.engine.expression import Expression
from tiler.engine.extents import Raster, item_reach
from tiler.engine.grids import Grid
from tiler.engine.io import ItemReader, ReadOptions
from tiler.engine.jobs import Assembly, Job, ReadDeadline, jobs
from tiler.engine.method import NO_WINNER, QualityMosaicMethod
from tiler.engine.outputs import compose, physical, stack
from tiler.engine.schedule import Scheduler

_UNSIGNED = ("uint8", "uint16", "uint32", "uint64")


def item_quality(
    arrays: dict[str, numpy.ma.MaskedArray], expression: Expression
) -> numpy.ma.MaskedArray | None:
    """The quality of one item: masked where any band it reads is masked.

    Returns None when the item lacks one of the expression's bands.
    """
    if any(name not in arrays for name in expression.bands):
        return None
    mask = numpy.logical_or.reduce([numpy.ma.getmaskarray(arrays[n]) for n in expression.bands])
    value = expression.evaluate({n: numpy.ma.getdata(arrays[n]) for n in expression.bands})
    if value.shape != mask.shape:
        value = numpy.broadcast_to(value, mask.shape)
    return numpy.ma.MaskedArray(value, mask=mask)


@dataclass
class MosaicStats:
    """What a mosaic request did, for headers and logs."""

    considered: int = 0
    read: int = 0
    used: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    exited_early: bool = False
    #: times reads were given up for time (one deadline for all the request's reads: <= 1)
    expiries: int = 0


def quality_bound(items: Sequence[Item], expression: Expression, opts: ReadOptions) -> float | None:
    """An upper bound of the quality valid for every item, from declared band types.

    Only unsigned types give a finite range (``-MSK_CLDPRB <= 0``); a band whose type an
    item does not declare, a nodata override or ``unscale`` give no bound.
    """
    if opts.unscale or opts.nodata is not None or not items:
        return None
    ranges: dict[str, tuple[float, float]] = {}
    for name in expression.bands:
        for item in items:
            band = item.bands.get(name)
            if band is None or band.data_type not in _UNSIGNED:
                return None
        ranges[name] = (0.0, math.inf)
    return expression.upper_bound(ranges)


#: remote quality reads a tile starts with (then one more per answer): 4 measured faster than
#: 2 and as fast as 8 at 40 ms per round trip (benchmarks/remote.py)
FIRST_READS = 4

#: the tags of the two passes' reads
QUALITY_PASS, BANDS_PASS = "quality", "bands"

#: pixels of a grid whose reads get the scheduler's timeout; larger grids get more
TIMEOUT_PIXELS = 1024 * 1024


def read_timeout(scheduler: Scheduler, grid: Grid) -> float:
    """Seconds a read onto ``grid`` may run.

    The item timeout, scaled in proportion beyond :data:`TIMEOUT_PIXELS` (a large export's
    reads take longer than a tile's).
    """
    return scheduler.timeout * max(1.0, grid.width * grid.height / TIMEOUT_PIXELS)


def read_deadline(scheduler: Scheduler, grid: Grid) -> ReadDeadline:
    """One deadline for all the reads of a mosaic on ``grid`` (both passes, every round)."""
    return scheduler.deadline(read_timeout(scheduler, grid))


def quality_mosaic(
    items: Sequence[Item],
    expression: Expression,
    out_bands: Sequence[str],
    grid: Grid,
    opts: ReadOptions,
    reader: ItemReader,
    scheduler: Scheduler,
    budget: Budget | None = None,
) -> tuple[ImageData, MosaicStats]:
    """The exact quality mosaic of ``items`` (in collection order) on ``grid``.

    Args:
        items: candidate items in collection order (position = tie-break order).
        expression: the quality expression.
        out_bands: output band names (band names, ``quality``, ``_index``, ``_date``,
            ``_doy``).
        grid: output grid.
        opts: read options.
        reader: reads items' bands.
        scheduler: runs the reads.
        budget: the request's deadline and cancellation (default: the current one).

    Returns:
        The image (bands = ``out_bands``; a pixel is masked where no item is a candidate or
        the winner's value of any output band is masked) and what was done.
    """
    mosaic = _Mosaic(items, expression, grid, opts, reader, scheduler, budget)
    files = physical(out_bands)
    while True:
        method, lost = mosaic.run(files)
        if not lost:  # else: decide again without the winners whose bands failed
            break
    stats = mosaic.stats
    stats.used = [items[i].id for i in _winners(method)]
    return compose(out_bands, method, items, grid), stats


def _winners(method: QualityMosaicMethod, where: numpy.ndarray | None = None) -> list[int]:
    """Positions of the items that win a pixel (within ``where``)."""
    if method.winner is None:
        return []
    won = method.winner if where is None else method.winner[where]
    return [int(i) for i in numpy.unique(won) if i != NO_WINNER]


#: an item whose eo:cloud_cover is at least this is not worth a guess
GUESS_CLOUD_COVER = 80.0


def _promising(item: Item) -> bool:
    """Whether to read an item's bands before knowing it wins.

    Only the first candidate's, over the network: unless it says it is (nearly) all cloud.
    """
    cover = item.properties.get("eo:cloud_cover")
    return not isinstance(cover, int | float) or cover < GUESS_CLOUD_COVER


def _certain(method: QualityMosaicMethod, unread: int) -> numpy.ndarray | None:
    """Pixels whose winner is final.

    They hold the bound from an item before ``unread`` (the first item not read yet),
    which no later item can take.
    """
    if method.upper_bound is None or method.best is None or method.winner is None:
        return None
    final: numpy.ndarray = (method.best >= method.upper_bound) & (method.winner < unread)
    final &= method.winner != NO_WINNER
    return final


class _Mosaic:
    """The two passes of one mosaic, and the items left out so far (skipped ones)."""

    def __init__(
        self,
        items: Sequence[Item],
        expression: Expression,
        grid: Grid,
        opts: ReadOptions,
        reader: ItemReader,
        scheduler: Scheduler,
        budget: Budget | None,
    ) -> None:
        self.items = items
        self.expression = expression
        self.grid = grid
        self.opts = opts
        self.reader = reader
        self.scheduler = scheduler
        self.budget = budget or current_budget()
        self.deadline = read_deadline(scheduler, grid)
        self.bound = quality_bound(items, expression, opts)
        self.position = {item.id: i for i, item in enumerate(items)}
        self.left_out: set[int] = set()
        self.stats = MosaicStats(considered=len(items))

    def clock(self, name: str, seconds: float) -> None:
        timings = self.stats.timings
        timings[name] = timings.get(name, 0.0) + seconds * 1000

    def _read(self, job: Job) -> dict[str, numpy.ma.MaskedArray] | None:
        return self.reader.read(job.item, job.names, self.grid, self.opts)

    def run(self, files: Sequence[str]) -> tuple[QualityMosaicMethod, set[int]]:
        """Both passes as one stream of reads; the method and the winners whose bands failed.

        Quality reads go in collection order (:data:`FIRST_READS` remote ones at first, one
        more per answer). As soon as an item is certain to win a pixel (:func:`_certain`),
        its bands are read too, so the band reads of clear winners overlap the rest of the
        quality pass. Once no unread item can change a pixel, the quality reads still pending
        are dropped and the bands of the other winners are read, all at once.
        """
        items, names = self.items, list(self.expression.bands)
        method = QualityMosaicMethod(upper_bound=self.bound)
        done = [i in self.left_out for i in range(len(items))]
        qualities, bands_of = Assembly(), Assembly()
        bands: dict[int, dict[str, numpy.ma.MaskedArray]] = {}
        urgent: deque[Job] = deque()
        rasters: dict[Raster, numpy.ndarray | None] = {}
        reaches: dict[int, numpy.ndarray | None] = {}
        extents, options = self.reader.extents, self.opts.kwargs()
        deciding = [True]
        final: set[int] = set()  # the winners, once decided
        t0 = time.perf_counter()
        decided = [t0]  # when the quality pass ended

        def reachable(i: int) -> bool:
            if not method.can_change(i):
                return False
            if i not in reaches:
                reaches[i] = item_reach(items[i], names, self.grid, extents, options, rasters)
            where = reaches[i]
            return where is None or method.can_change(i, where)

        def candidates() -> Iterator[Job]:
            """Reads of the items that can still change a pixel, in collection order."""
            guess = True
            for i, item in enumerate(items):
                if not deciding[0]:
                    return
                if done[i] or not reachable(i):
                    done[i] = True
                    continue
                group = jobs(item, names, QUALITY_PASS)
                qualities.expect(i, len(group))
                if guess and group[0].remote and _promising(item):
                    guess = False  # one round trip saved if it wins somewhere, as it mostly does
                    want_bands([i])
                yield from group

        def want_bands(winners: Sequence[int]) -> None:
            for i in winners:
                if files and i not in bands_of.expected:
                    group = jobs(items[i], files, BANDS_PASS)
                    bands_of.expect(i, len(group))
                    urgent.extend(group)

        def settle() -> None:
            """After an item is decided: read the certain winners; end when all is decided."""
            if not deciding[0]:
                return
            # the first unread item that can change a pixel decides: usually at once
            if all(done[k] or not reachable(k) for k in range(len(items))):
                deciding[0] = False
                decided[0] = time.perf_counter()
                self.clock("quality", decided[0] - t0)
                final.update(_winners(method))
                want_bands(sorted(final))
                return
            unread = next((k for k in range(len(items)) if not done[k]), len(items))
            certain = _certain(method, unread)
            if certain is not None and certain.any():
                want_bands(_winners(method, certain))

        band_faults: dict[int, str] = {}

        def skip(job: Job, reason: str) -> None:
            i = self.position[job.item.id]
            if job.tag == BANDS_PASS:  # reported below if the item wins a pixel
                bands_of.fail(i)
                band_faults[i] = reason
                return
            self.stats.skipped[job.item.id] = reason
            self.left_out.add(i)
            if qualities.fail(i):
                done[i] = True
                settle()

        read = 0
        runs = self.scheduler.run(
            self._read,
            candidates(),
            skip,
            self.budget,
            start=FIRST_READS,
            urgent=urgent,
            drop=lambda job: (
                not deciding[0]
                and (job.tag == QUALITY_PASS or self.position[job.item.id] not in final)
            ),
            deadline=self.deadline,
        )
        for job, arrays in runs:
            i = self.position[job.item.id]
            if job.tag == BANDS_PASS:
                if bands_of.add(i, arrays):
                    bands[i] = bands_of.take(i) or {}
                continue
            if not deciding[0] or not qualities.add(i, arrays):
                continue
            got = qualities.take(i)
            read += 1
            quality = None if got is None else item_quality(got, self.expression)
            if quality is not None:
                method.decide(quality, i)
            done[i] = True
            settle()
        if deciding[0]:  # every quality read ended in a fault, or there were none
            deciding[0] = False
            decided[0] = time.perf_counter()
            self.clock("quality", decided[0] - t0)
        winners = _winners(method)
        missing = [i for i in winners if i not in bands_of.expected]
        if files and missing:  # decided at the very end: read their bands now
            want_bands(missing)
            for job, arrays in self.scheduler.run(
                self._read, [], skip, self.budget, urgent=urgent, deadline=self.deadline
            ):
                i = self.position[job.item.id]
                if bands_of.add(i, arrays):
                    bands[i] = bands_of.take(i) or {}
        shape = (self.grid.height, self.grid.width)
        for i in winners:
            if i in bands:
                method.fill(stack(bands[i], files, shape), i)
        # band reads of certain winners overlap the quality pass; this is the wait after it
        self.clock("bands", time.perf_counter() - decided[0])
        lost = bands_of.failed & set(winners)
        for i in lost:  # left out: its pixels are decided again among the others
            self.stats.skipped[items[i].id] = band_faults[i]
            self.left_out.add(i)
        self.stats.read += read
        self.stats.expiries = self.deadline.expiries
        self.stats.exited_early = read + len(self.left_out) < len(items)
        return method, lost
