"""Baked layers for tests and benchmarks: an export run chunk by chunk in this process.

:func:`bake` runs the real export pieces (plan, chunk runner, part store, COG writer with
its tags) without a Dask cluster, one chunk after another: what ``tiler export`` writes,
minus the scheduling (tests/baked/test_baked_e2e.py runs the command itself on Dask).
:func:`compute_parts` stops before the COG, so that one set of parts can be assembled with
other overviews (benchmarks/baked_overviews.py).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from affine import Affine

from tiler.export.chunks import ChunkRunner, ExportSpec
from tiler.export.cog import plan_tags, write_cog
from tiler.export.grid import OutputGrid
from tiler.export.parts import PartStore
from tiler.export.plan import ExportPlan, Region, plan_export


def compute_parts(
    spec: ExportSpec,
    region: Region,
    output: Path,
    chunk: int = 32,
    block: int = 32,
    scale: int = 1,
) -> tuple[ExportPlan, PartStore, Path]:
    """Plan the export to ``output`` and write every chunk's part; the plan, the parts and
    their VRT (remove the parts with ``store.remove()``).

    ``scale``: the planned grid's pixels ``scale`` times larger, as GDAL sizes an overview
    of that factor (the same origin; sides rounded up), the selection unchanged.
    """
    plan = plan_export(spec, region, chunk=chunk, block=block)
    if scale > 1:
        g = plan.grid
        grid = OutputGrid(
            g.crs, g.transform * Affine.scale(scale), -(-g.width // scale), -(-g.height // scale)
        )
        plan = dataclasses.replace(plan, grid=grid)
    store = PartStore(output, plan.document(), plan.block)
    store.open(resume=False)
    runner = ChunkRunner(plan.spec)
    try:
        for window in plan.windows():
            result = runner.run(plan.grid.chunk(window), window, plan.dtype, plan.positions)
            store.write(result, plan.grid)
    finally:
        runner.close()
    return plan, store, store.vrt(plan.grid, plan.dtype, list(plan.spec.bands))


def bake(
    spec: ExportSpec, region: Region, output: Path, chunk: int = 32, block: int = 32
) -> ExportPlan:
    """Export ``spec`` over ``region`` to the COG ``output``, chunk by chunk; its plan."""
    plan, store, vrt = compute_parts(spec, region, output, chunk, block)
    write_cog(vrt, output, plan.block, tags=plan_tags(plan))
    store.remove()
    return plan
