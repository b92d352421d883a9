"""Baked layers for tests and benchmarks: an export run chunk by chunk in this process.

:func:`bake` runs the real export pieces (plan, chunk runner, part store, COG writer with
its tags and overview levels) without a Dask cluster, one chunk after another: what
``tiler export`` writes, minus the scheduling (tests/baked/test_baked_e2e.py runs the
command itself on Dask). :func:`compute_parts` stops before the COG, so that one set of
parts can be assembled with other overviews (benchmarks/baked_overviews.py).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tiler.export.chunks import ChunkRunner, ExportSpec
from tiler.export.cog import write_output
from tiler.export.parts import PartStore
from tiler.export.plan import MOSAIC, ExportPlan, Region, plan_export


def compute_parts(
    spec: ExportSpec,
    region: Region,
    output: Path,
    chunk: int = 32,
    block: int = 32,
    overviews: str = MOSAIC,
) -> tuple[ExportPlan, PartStore, list[float]]:
    """Plan the export to ``output`` and write every chunk's part, the overview levels' too
    (``overviews`` mosaic); the plan, the parts (remove them with ``store.remove()``) and
    the seconds each level's chunks took (the output's grid first)."""
    plan = plan_export(spec, region, chunk=chunk, block=block, overviews=overviews)
    grids = plan.levels()
    store = PartStore(output, plan.document(), plan.block)
    store.open(resume=False)
    seconds = [0.0] * len(grids)
    runner = ChunkRunner(plan.spec)
    try:
        for level, window in plan.tasks():
            t0 = time.perf_counter()
            grid = grids[level]
            result = runner.run(grid.chunk(window), window, plan.dtype, plan.positions)
            store.write(result, grid, level)
            seconds[level] += time.perf_counter() - t0
    finally:
        runner.close()
    return plan, store, seconds


def bake(spec: ExportSpec, region: Region, output: Path, **options: Any) -> ExportPlan:
    """Export ``spec`` over ``region`` to the COG ``output``, chunk by chunk; its plan.

    ``options``: those of :func:`compute_parts` (chunk, block, overviews).
    """
    plan, store, _ = compute_parts(spec, region, output, **options)
    write_output(plan, store, output)
    store.remove()
    return plan
