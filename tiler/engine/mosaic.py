"""The quality mosaic of items on a grid, and the per-item series at a point.

The mosaic reads in two passes: the quality bands of every candidate item first, then the
output bands only of the items that won at least one pixel. Reads in collection order
stop early once no unread item can change any pixel (see :func:`quality_bound`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy
from rio_tiler.models import ImageData

from tiler.catalog.models import Item
from tiler.engine.budget import Budget, current_budget
from tiler.engine.expression import Expression
from tiler.engine.grids import Grid, PointGrid
from tiler.engine.io import ItemReader, ReadOptions
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
    stats = MosaicStats(considered=len(items))
    budget = budget or current_budget()
    method = QualityMosaicMethod()
    position = {item.id: i for i, item in enumerate(items)}

    def skip(item: Item, reason: str) -> None:
        stats.skipped[item.id] = reason

    def phase1(item: Item) -> numpy.ma.MaskedArray | None:
        arrays = reader.read(item, expression.bands, grid, opts)
        return None if arrays is None else item_quality(arrays, expression)

    method.upper_bound = quality_bound(items, expression, opts)
    fed = [False] * len(items)
    unfed = 0  # smallest position not fed yet
    t0 = time.perf_counter()
    for item, quality in scheduler.run(phase1, items, skip, budget):
        stats.read += 1
        i = position[item.id]
        if quality is not None:
            method.decide(quality, i)
        fed[i] = True
        while unfed < len(items) and fed[unfed]:
            unfed += 1
        # items are submitted in collection order, so every unread item comes after
        # `unfed`; once each pixel holds the bound from an earlier item, none can win
        method.note_pending(unfed if unfed < len(items) else None)
        if method.is_done:
            stats.exited_early = True
            break
    t1 = time.perf_counter()
    stats.timings["quality"] = (t1 - t0) * 1000

    files = physical(out_bands)
    winner = method.winner
    winners = [] if winner is None else [int(i) for i in numpy.unique(winner) if i != NO_WINNER]
    stats.used = [items[i].id for i in winners]
    if files and winners:

        def phase2(item: Item) -> dict[str, numpy.ma.MaskedArray] | None:
            return reader.read(item, files, grid, opts)

        chosen = [items[i] for i in winners]
        shape = (grid.height, grid.width)
        for item, arrays in scheduler.run(phase2, chosen, skip, budget):
            method.fill(stack(arrays or {}, files, shape), position[item.id])
        # a winner whose read failed leaves its pixels masked (never filled from another)
    stats.timings["bands"] = (time.perf_counter() - t1) * 1000
    return compose(out_bands, method, items, grid), stats


@dataclass
class PointSeries:
    """Per-item values at a point and the winner."""

    winner: int | None
    quality: list[float | None]
    values: list[dict[str, float | None]]
    skipped: dict[str, str]


def point_series(
    items: Sequence[Item],
    expression: Expression,
    out_bands: Sequence[str],
    grid: PointGrid,
    opts: ReadOptions,
    reader: ItemReader,
    scheduler: Scheduler,
    budget: Budget | None = None,
) -> PointSeries:
    """Every item's quality and band values at one point, and the mosaic's winner there."""
    files = physical(out_bands)
    names = list(dict.fromkeys([*expression.bands, *files]))
    quality: list[float | None] = [None] * len(items)
    values: list[dict[str, float | None]] = [dict.fromkeys(files) for _ in items]
    skipped: dict[str, str] = {}
    position = {item.id: i for i, item in enumerate(items)}
    method = QualityMosaicMethod()

    def read(item: Item) -> dict[str, numpy.ma.MaskedArray] | None:
        return reader.read(item, names, grid, opts)

    def skip(item: Item, reason: str) -> None:
        skipped[item.id] = reason

    for item, arrays in scheduler.run(read, items, skip, budget):
        if arrays is None:
            continue
        i = position[item.id]
        q = item_quality(arrays, expression)
        if q is not None:
            if not numpy.ma.getmaskarray(q)[0, 0] and numpy.isfinite(q.data[0, 0]):
                quality[i] = float(q.data[0, 0])
            method.decide(q, i)
        for name in files:
            if name in arrays and not numpy.ma.getmaskarray(arrays[name])[0, 0]:
                values[i][name] = float(arrays[name].data[0, 0])
    win = None
    if method.winner is not None and method.winner[0, 0] != NO_WINNER:
        win = int(method.winner[0, 0])
    return PointSeries(winner=win, quality=quality, values=values, skipped=skipped)
