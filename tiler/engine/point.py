"""Every item's values at one point, and the quality mosaic's winner there."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy

from tiler.catalog.models import Item
from tiler.engine.budget import Budget
from tiler.engine.expression import Expression
from tiler.engine.grids import PointGrid
from tiler.engine.io import ItemReader, ReadOptions
from tiler.engine.jobs import Assembly, Job, jobs
from tiler.engine.method import NO_WINNER, QualityMosaicMethod
from tiler.engine.outputs import physical
from tiler.engine.passes import item_quality
from tiler.engine.schedule import Scheduler


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
    parts = Assembly()
    reads: list[Job] = []
    for i, item in enumerate(items):
        group = jobs(item, names)
        parts.expect(i, len(group))
        reads += group

    def read(job: Job) -> dict[str, numpy.ma.MaskedArray] | None:
        return reader.read(job.item, job.names, grid, opts)

    def skip(job: Job, reason: str) -> None:
        skipped[job.item.id] = reason
        parts.fail(position[job.item.id])

    for job, answer in scheduler.run(read, reads, skip, budget):
        i = position[job.item.id]
        if not parts.add(i, answer):
            continue
        arrays = parts.take(i)
        if arrays is None:
            continue
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
