"""The quality mosaic of items on a grid.

The mosaic reads in two passes: the quality bands of the candidate items first, then the
output bands only of the items that won at least one pixel, all of them at once. The
quality pass reads in collection order and leaves out an item that can no longer change
any pixel: where every pixel it can reach (its raster extent, once known) already holds
the quality bound (:func:`quality_bound`) from an earlier item. A winner whose bands
cannot be read is left out and its pixels are decided again among the others, so the
result is always the exact mosaic of the items that could be read. The passes themselves
run in :mod:`tiler.engine.passes`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from rio_tiler.models import ImageData

from tiler.catalog.models import Item
from tiler.engine.budget import Budget, current_budget
from tiler.engine.expression import Expression
from tiler.engine.grids import Grid
from tiler.engine.io import ItemReader, ReadOptions
from tiler.engine.jobs import ReadDeadline
from tiler.engine.outputs import compose, physical
from tiler.engine.passes import MosaicPasses, MosaicStats, winners
from tiler.engine.schedule import Scheduler

__all__ = ["MosaicStats", "quality_bound", "quality_mosaic", "read_deadline", "read_timeout"]

_UNSIGNED = ("uint8", "uint16", "uint32", "uint64")


def quality_bound(items: Sequence[Item], expression: Expression, opts: ReadOptions) -> float | None:
    """An upper bound of the quality valid for every item, from declared band types.

    A band that every item declares of an unsigned type ranges over ``[0, inf)``
    (``-MSK_CLDPRB <= 0``); any other band (undeclared, signed or float) over the whole
    line, so an expression whose bound does not depend on it still gets one: the
    built-in SCL ranking (a ``where()`` of constants) is bounded by its highest rank
    whether or not its items declare SCL's data type (Planetary Computer's do not). A
    nodata override or ``unscale`` give no bound.
    """
    if opts.unscale or opts.nodata is not None or not items:
        return None
    ranges: dict[str, tuple[float, float]] = {}
    for name in expression.bands:
        unsigned = all(
            (band := item.bands.get(name)) is not None and band.data_type in _UNSIGNED
            for item in items
        )
        ranges[name] = (0.0, math.inf) if unsigned else (-math.inf, math.inf)
    return expression.upper_bound(ranges)


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
    mosaic = MosaicPasses(
        items,
        expression,
        grid,
        opts,
        reader,
        scheduler,
        budget=budget or current_budget(),
        deadline=read_deadline(scheduler, grid),
        bound=quality_bound(items, expression, opts),
    )
    files = physical(out_bands)
    while True:
        method, lost = mosaic.run(files)
        if not lost:  # else: decide again without the winners whose bands failed
            break
    stats = mosaic.stats
    stats.used = [items[i].id for i in winners(method)]
    return compose(out_bands, method, items, grid), stats
