"""Baked layers for tests and benchmarks: an export run chunk by chunk in this process.

:func:`bake` runs the real export pieces (plan, chunk runner, part store, COG writer with
its tags) without a Dask cluster, one chunk after another: what ``tiler export`` writes,
minus the scheduling (tests/baked/test_baked_e2e.py runs the command itself on Dask).
"""

from __future__ import annotations

from pathlib import Path

from tiler.export.chunks import ChunkRunner, ExportSpec
from tiler.export.cog import plan_tags, write_cog
from tiler.export.parts import PartStore
from tiler.export.plan import ExportPlan, Region, plan_export


def bake(
    spec: ExportSpec,
    region: Region,
    output: Path,
    chunk: int = 32,
    block: int = 32,
    overview_resampling: str | None = None,
) -> ExportPlan:
    """Export ``spec`` over ``region`` to the COG ``output``, chunk by chunk; its plan.

    Args:
        overview_resampling: GDAL's OVERVIEW_RESAMPLING instead of the export's (for the
            overview benchmark only).
    """
    plan = plan_export(spec, region, chunk=chunk, block=block)
    store = PartStore(output, plan.document(), plan.block)
    store.open(resume=False)
    runner = ChunkRunner(plan.spec)
    try:
        for window in plan.windows():
            result = runner.run(plan.grid.chunk(window), window, plan.dtype, plan.positions)
            store.write(result, plan.grid)
    finally:
        runner.close()
    vrt = store.vrt(plan.grid, plan.dtype, list(plan.spec.bands))
    if overview_resampling is None:
        write_cog(vrt, output, plan.block, tags=plan_tags(plan))
    else:
        write_cog(vrt, output, plan.block, tags=plan_tags(plan), resampling=overview_resampling)
    store.remove()
    return plan
