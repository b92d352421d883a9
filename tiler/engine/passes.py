"""The two passes of one mosaic as one stream of reads.

The quality pass reads the quality bands of the candidate items in collection order and
leaves out an item that can no longer change any pixel; the bands pass reads the output
bands of the items that won at least one pixel, those certain to win as soon as they are,
the others all at once when the quality pass ends. :class:`MosaicPasses` holds what lasts
across runs (the items left out); a :class:`_Run` holds the state of one run, its steps
as methods.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy

from tiler.catalog.models import Item
from tiler.engine.budget import Budget
from tiler.engine.expression import Expression
from tiler.engine.extents import Raster, item_reach
from tiler.engine.grids import Grid
from tiler.engine.io import ItemReader, ReadOptions
from tiler.engine.jobs import Assembly, Job, Pass, ReadDeadline, jobs
from tiler.engine.method import NO_WINNER, QualityMosaicMethod
from tiler.engine.outputs import stack
from tiler.engine.schedule import Scheduler

#: remote quality reads a tile starts with (then one more per answer): 4 measured faster than
#: 2 and as fast as 8 at 40 ms per round trip (benchmarks/remote.py)
FIRST_READS = 4


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


def winners(method: QualityMosaicMethod, where: numpy.ndarray | None = None) -> list[int]:
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


class MosaicPasses:
    """The two passes of one mosaic, and the items left out so far (skipped ones).

    Args:
        items: candidate items in collection order.
        expression: the quality expression.
        grid: the output grid.
        opts: read options.
        reader: reads items' bands.
        scheduler: runs the reads.
        budget: the request's deadline and cancellation.
        deadline: the one deadline of all the mosaic's reads.
        bound: an upper bound of the quality (None: none known).
    """

    def __init__(
        self,
        items: Sequence[Item],
        expression: Expression,
        grid: Grid,
        opts: ReadOptions,
        reader: ItemReader,
        scheduler: Scheduler,
        budget: Budget,
        deadline: ReadDeadline,
        bound: float | None,
    ) -> None:
        self.items = items
        self.expression = expression
        self.grid = grid
        self.opts = opts
        self.reader = reader
        self.scheduler = scheduler
        self.budget = budget
        self.deadline = deadline
        self.bound = bound
        self.position = {item.id: i for i, item in enumerate(items)}
        self.left_out: set[int] = set()
        self.stats = MosaicStats(considered=len(items))

    def clock(self, name: str, seconds: float) -> None:
        """Add ``seconds`` to the timing ``name`` (in milliseconds)."""
        timings = self.stats.timings
        timings[name] = timings.get(name, 0.0) + seconds * 1000

    def read(self, job: Job) -> dict[str, numpy.ma.MaskedArray] | None:
        """The scheduler's read: the job's bands of its item onto the grid."""
        return self.reader.read(job.item, job.names, self.grid, self.opts)

    def run(self, files: Sequence[str]) -> tuple[QualityMosaicMethod, set[int]]:
        """Both passes as one stream of reads; the method and the winners whose bands failed.

        Quality reads go in collection order (:data:`FIRST_READS` remote ones at first, one
        more per answer). As soon as an item is certain to win a pixel (:func:`_certain`),
        its bands are read too, so the band reads of clear winners overlap the rest of the
        quality pass. Once no unread item can change a pixel, the quality reads still pending
        are dropped and the bands of the other winners are read, all at once.
        """
        return _Run(self, files).run()


class _Run:
    """One run of both passes of :class:`MosaicPasses`: the state its steps share.

    Attributes:
        method: the per-pixel decision.
        done: per item, whether it is decided (read, left out or unable to change a pixel).
        qualities: the quality reads' answers, per item.
        bands_of: the band reads' answers, per item.
        bands: the output bands of the items read so far.
        urgent: band reads to start at once.
        deciding: whether the quality pass still runs.
        final: the winners, once the quality pass has ended.
        band_faults: why an item's band read failed.
        read: items whose quality was read.
    """

    def __init__(self, mosaic: MosaicPasses, files: Sequence[str]) -> None:
        self.mosaic = mosaic
        self.files = files
        self.items = mosaic.items
        self.names = list(mosaic.expression.bands)
        self.method = QualityMosaicMethod(upper_bound=mosaic.bound)
        self.done = [i in mosaic.left_out for i in range(len(self.items))]
        self.qualities = Assembly()
        self.bands_of = Assembly()
        self.bands: dict[int, dict[str, numpy.ma.MaskedArray]] = {}
        self.urgent: deque[Job] = deque()
        self.rasters: dict[Raster, numpy.ndarray | None] = {}
        self.reaches: dict[int, numpy.ndarray | None] = {}
        self.options = mosaic.opts.kwargs()
        self.deciding = True
        self.final: set[int] = set()
        self.band_faults: dict[int, str] = {}
        self.read = 0
        self.started = time.perf_counter()
        self.decided = self.started  # when the quality pass ended

    def run(self) -> tuple[QualityMosaicMethod, set[int]]:
        """Read, decide, read the winners' bands; the method and the winners lost."""
        mosaic = self.mosaic
        answers = mosaic.scheduler.run(
            mosaic.read,
            self.candidates(),
            self.skip,
            mosaic.budget,
            start=FIRST_READS,
            urgent=self.urgent,
            drop=self.unwanted,
            deadline=mosaic.deadline,
        )
        for job, arrays in answers:
            self.answer(job, arrays)
        if self.deciding:  # every quality read ended in a fault, or there were none
            self.end_quality_pass()
        if self.urgent:  # winners decided at the very end: read their bands now
            for job, arrays in mosaic.scheduler.run(
                mosaic.read,
                [],
                self.skip,
                mosaic.budget,
                urgent=self.urgent,
                deadline=mosaic.deadline,
            ):
                self.answer(job, arrays)
        return self.finish()

    def reachable(self, i: int) -> bool:
        """Whether item ``i`` can still change a pixel (its raster's reach, once known)."""
        method = self.method
        if not method.can_change(i):
            return False
        if i not in self.reaches:
            mosaic = self.mosaic
            self.reaches[i] = item_reach(
                self.items[i],
                self.names,
                mosaic.grid,
                mosaic.reader.extents,
                self.options,
                self.rasters,
            )
        where = self.reaches[i]
        return where is None or method.can_change(i, where)

    def candidates(self) -> Iterator[Job]:
        """Reads of the items that can still change a pixel, in collection order."""
        guess = True
        for i, item in enumerate(self.items):
            if not self.deciding:
                return
            if self.done[i] or not self.reachable(i):
                self.done[i] = True
                continue
            group = jobs(item, self.names, Pass.QUALITY)
            self.qualities.expect(i, len(group))
            if guess and group[0].remote and _promising(item):
                guess = False  # one round trip saved if it wins somewhere, as it mostly does
                self.want_bands([i])
            yield from group

    def want_bands(self, winners: Sequence[int]) -> None:
        """Read the output bands of ``winners`` (once each), at once."""
        for i in winners:
            if self.files and i not in self.bands_of.expected:
                group = jobs(self.items[i], self.files, Pass.BANDS)
                self.bands_of.expect(i, len(group))
                self.urgent.extend(group)

    def settle(self) -> None:
        """After an item is decided: read the certain winners; end when all is decided."""
        if not self.deciding:
            return
        count = len(self.items)
        # the first unread item that can change a pixel decides: usually at once
        if all(self.done[k] or not self.reachable(k) for k in range(count)):
            self.end_quality_pass()
            return
        unread = next((k for k in range(count) if not self.done[k]), count)
        certain = _certain(self.method, unread)
        if certain is not None and certain.any():
            self.want_bands(winners(self.method, certain))

    def end_quality_pass(self) -> None:
        """No unread item can change a pixel: the winners are final, their bands wanted."""
        self.deciding = False
        self.decided = time.perf_counter()
        self.mosaic.clock("quality", self.decided - self.started)
        self.final.update(winners(self.method))
        self.want_bands(sorted(self.final))

    def unwanted(self, job: Job) -> bool:
        """Whether a pending read is no longer needed (the quality pass is over)."""
        if self.deciding:
            return False
        return job.tag is Pass.QUALITY or self.mosaic.position[job.item.id] not in self.final

    def skip(self, job: Job, reason: str) -> None:
        """A read failed: its item is left out (a band read: only if the item wins)."""
        mosaic = self.mosaic
        i = mosaic.position[job.item.id]
        if job.tag is Pass.BANDS:  # reported in finish() if the item wins a pixel
            self.bands_of.fail(i)
            self.band_faults[i] = reason
            return
        mosaic.stats.skipped[job.item.id] = reason
        mosaic.left_out.add(i)
        if self.qualities.fail(i):
            self.done[i] = True
            self.settle()

    def answer(self, job: Job, arrays: dict[str, numpy.ma.MaskedArray] | None) -> None:
        """A read's answer (None: the item is outside the grid)."""
        i = self.mosaic.position[job.item.id]
        if job.tag is Pass.BANDS:
            if self.bands_of.add(i, arrays):
                self.bands[i] = self.bands_of.take(i) or {}
            return
        if not self.deciding or not self.qualities.add(i, arrays):
            return
        got = self.qualities.take(i)
        self.read += 1
        quality = None if got is None else item_quality(got, self.mosaic.expression)
        if quality is not None:
            self.method.decide(quality, i)
        self.done[i] = True
        self.settle()

    def finish(self) -> tuple[QualityMosaicMethod, set[int]]:
        """Fill the winners' bands; leave out the winners whose bands failed."""
        mosaic, method = self.mosaic, self.method
        won = winners(method)
        shape = (mosaic.grid.height, mosaic.grid.width)
        for i in won:
            if i in self.bands:
                method.fill(stack(self.bands[i], self.files, shape), i)
        # band reads of certain winners overlap the quality pass; this is the wait after it
        mosaic.clock("bands", time.perf_counter() - self.decided)
        lost = self.bands_of.failed & set(won)
        for i in lost:  # left out: its pixels are decided again among the others
            mosaic.stats.skipped[self.items[i].id] = self.band_faults[i]
            mosaic.left_out.add(i)
        stats = mosaic.stats
        stats.read += self.read
        stats.expiries = mosaic.deadline.expiries
        stats.exited_early = self.read + len(mosaic.left_out) < len(self.items)
        return method, lost
