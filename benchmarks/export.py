"""tiler export on a local Dask cluster: wall time, px/s and peak worker RSS by workers and size.

Over the generated scene collection (``generate.py``: 24 scenes, one COG per band, two orbits
with swath edges), a square region of ``--region`` pixels at 10 m around the collection's
centre is exported (quality ``-MSK_CLDPRB``, bands ``B04,B03,B02``, the default 1024 px
chunks) with 1 and 2 worker processes (one thread each), each export on a fresh
``LocalCluster``. Per run: wall time (plan excluded, the COG included), pixels per second,
item reads, and each worker's peak RSS (``ru_maxrss``) at the end. With ``--sizes`` the
2-worker run is repeated at several region sizes, to see that a worker's RSS is flat in the
region's size. The outputs of the 1- and 2-worker runs are compared byte for byte.

Run: ``python benchmarks/export.py [--region 4096] [--workers 1,2] [--sizes 2048,4096]
[--scenes 24] [--size 4096] [--quick]``.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import rasterio
from distributed import Client, LocalCluster
from generate import DEFAULT_DIR, generate_scenes

from tiler.export.chunks import ExportSpec
from tiler.export.plan import Region, plan_export
from tiler.export.run import export


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _region(collection: Path, pixels: int) -> tuple[tuple[float, float, float, float], object]:
    """A square of ``pixels`` at 10 m around the centre of the collection's grid."""
    first = next(collection.parent.glob("scenes/*/B04.tif"))
    with rasterio.open(first) as src:
        left, bottom, right, top = src.bounds
        crs = src.crs
    cx, cy = (left + right) / 2, (bottom + top) / 2
    half = pixels * 10 / 2
    return (cx - half, cy - half, cx + half, cy + half), crs


def run(collection: Path, pixels: int, workers: int, out: Path, chunk: int) -> dict[str, float]:
    """One export on a fresh local cluster of ``workers`` processes."""
    bbox, crs = _region(collection, pixels)
    spec = ExportSpec((str(collection),), "s2-synthetic", "-MSK_CLDPRB", ("B04", "B03", "B02"))
    plan = plan_export(spec, Region(bbox, crs), chunk=chunk)  # type: ignore[arg-type]
    with (
        LocalCluster(n_workers=workers, threads_per_worker=1, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        t0 = time.perf_counter()
        summary = export(plan, out, client)
        wall = time.perf_counter() - t0
        rss = client.run(_peak_rss_mb)
    px = plan.grid.width * plan.grid.height
    return {
        "pixels": px,
        "side": plan.grid.width,
        "chunks": summary.chunks,
        "wall": wall,
        "px_s": px / wall,
        "reads": summary.item_reads,
        "rss_max": max(rss.values()),
    }


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    ap.add_argument("--scenes", type=int, default=24)
    ap.add_argument("--size", type=int, default=4096, help="scene side in 10 m pixels")
    ap.add_argument("--region", type=int, default=4096, help="exported square side in pixels")
    ap.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    ap.add_argument("--sizes", default="", help="region sides for the RSS check (2 workers)")
    ap.add_argument("--chunk", type=int, default=1024)
    ap.add_argument("--quick", action="store_true", help="4 small scenes, a 1024 px region")
    args = ap.parse_args(argv)
    if args.quick:
        args.scenes, args.size, args.region, args.sizes = 4, 1024, 1024, ""
    collection = generate_scenes(args.dir, args.scenes, args.size)
    print(f"collection {collection}: {args.scenes} scenes of {args.size} px")
    outputs = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in [int(w) for w in args.workers.split(",")]:
            out = Path(tmp) / f"w{n}.tif"
            r = run(collection, args.region, n, out, args.chunk)
            outputs[n] = out.read_bytes()
            print(
                f"workers {n}: {r['side']} px square ({r['pixels']:,} px, {r['chunks']} chunks) "
                f"in {r['wall']:.1f} s = {r['px_s']:,.0f} px/s; {r['reads']} item reads; "
                f"peak worker RSS {r['rss_max']:.0f} MB"
            )
        if len(set(outputs.values())) > 1:
            raise SystemExit("the outputs of different worker counts differ")
        print("outputs identical across worker counts")
        for side in [int(s) for s in args.sizes.split(",") if s]:
            r = run(collection, side, 2, Path(tmp) / f"s{side}.tif", args.chunk)
            print(
                f"region {r['side']} px, 2 workers: {r['wall']:.1f} s, {r['px_s']:,.0f} px/s, "
                f"peak worker RSS {r['rss_max']:.0f} MB"
            )


if __name__ == "__main__":
    main()
