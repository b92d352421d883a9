"""tiler export on a local Dask cluster: wall time, px/s and peak worker RSS by workers and
size, side by side with a naive Dask quality mosaic (odc-stac load of every item + argmax).

Over a generated collection (``generate.py --realistic``: 24 band-per-file items of two
orbits with swath edges, datatakes cut into two overlapping tiles of equal datetimes; 10 m
reflectance, 20 m ``MSK_CLDPRB``), a square region of ``--region`` pixels at 10 m around the
area's centre is exported in the items' CRS (quality ``-MSK_CLDPRB``, bands ``B04,B03,B02``,
``--chunk`` px chunks), each run on a fresh ``LocalCluster`` of N worker processes with one
thread each. Runs of 1 and 2 workers alternate (``--repeats`` rounds) and medians are
reported, so that a change of the machine's load hits both alike. Per run: wall time (the
chunks, the overview levels' chunks and the COG; planning and cluster start excluded),
pixels per second, item reads, each worker's peak RSS (``ru_maxrss``), and the overview
levels' share of the wall time (their chunks' share of the chunks' worker time, applied to
the wall time before the COG step). ``--sizes``: 2-worker runs at other region sides,
to see that a worker's RSS is flat in the region's size. The outputs of all runs are
compared byte for byte.

The naive approach (:mod:`naive_dask`, needs ``odc-stac``): the same items in the same
order on the same grid, chunked alike, on the same cluster shape; its output is compared
with ours pixel by pixel (values and validity).

Run: ``python benchmarks/export.py [--region 8192] [--size 8192] [--scenes 24]
[--workers 1,2] [--repeats 3] [--sizes 4096] [--naive-workers 2] [--overviews mosaic]
[--quick]`` (``--overviews nearest``: the export with GDAL's decimated overviews, to compare).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import rasterio
from distributed import Client, LocalCluster
from generate import DEFAULT_DIR, EPSG, centre_square, generate_scenes
from rasterio.crs import CRS

from tiler.export.chunks import ExportSpec
from tiler.export.plan import MOSAIC, OVERVIEWS, ExportPlan, Region, plan_export
from tiler.export.run import export, local_cluster

QUALITY = "-MSK_CLDPRB"
BANDS = ("B04", "B03", "B02")


def _peak_rss_mb() -> float:
    """This process's peak RSS in MB: Linux's VmHWM, which starts afresh at exec (a worker
    spawned from the client would otherwise report the client's RSS at the fork: getrusage's
    ru_maxrss is kept across exec)."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return int(status.split("VmHWM:")[1].split()[0]) / 1024


def _reset_peak_rss() -> None:
    """Start this process's VmHWM afresh (Linux: clear_refs 5)."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def _usage() -> tuple[float, float]:
    """This process's peak RSS in MB and CPU seconds (user + system, all its threads)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return _peak_rss_mb(), r.ru_utime + r.ru_stime


def _cpu() -> float:
    return _usage()[1]


def _plan(
    collection: Path, size: int, pixels: int, chunk: int, overviews: str = MOSAIC
) -> ExportPlan:
    spec = ExportSpec((str(collection),), "s2-synthetic", QUALITY, BANDS)
    region = Region(centre_square(size, pixels), CRS.from_epsg(EPSG))
    return plan_export(spec, region, chunk=chunk, overviews=overviews)


def _cluster(workers: int) -> LocalCluster:
    return local_cluster(workers, dashboard_address=None)  # tiler export's local cluster


def run_ours(plan: ExportPlan, workers: int, out: Path) -> dict[str, Any]:
    """One ``tiler export`` on a fresh local cluster of ``workers`` processes."""
    with _cluster(workers) as cluster, Client(cluster) as client:
        before = client.run(_cpu)
        _reset_peak_rss()
        c0, t0 = _cpu(), time.perf_counter()
        summary = export(plan, out, client, parts_on_workers=True)  # as tiler export
        wall, client_cpu = time.perf_counter() - t0, _cpu() - c0
        usage = client.run(_usage)
        client_rss = _peak_rss_mb()
    px = plan.grid.width * plan.grid.height
    return {
        "pixels": px,
        "side": plan.grid.width,
        "chunks": summary.chunks,
        "wall": wall,
        "px_s": px / wall,
        "reads": summary.item_reads,
        "cog": summary.cog_seconds,
        "level_chunks": summary.level_chunks,
        # the overview levels' share of the chunks' worker time, applied to the chunks' wall
        "overview": (wall - summary.cog_seconds)
        * summary.level_task_seconds
        / max(summary.task_seconds, 1e-9),
        "rss": max(u[0] for u in usage.values()),
        "cores": (sum(u[1] - before[w] for w, u in usage.items()) + client_cpu) / wall,
        "client_cpu": client_cpu,
        "client_rss": client_rss,
    }


def run_naive(
    collection: Path, plan: ExportPlan, workers: int, out: Path, chunk: int
) -> dict[str, Any]:
    """The naive odc-stac mosaic of the same items on the same grid, same cluster shape."""
    from naive_dask import naive_export  # odc-stac: only when asked for

    ids = sorted(plan.positions, key=plan.positions.__getitem__)
    grid = plan.grid
    with _cluster(workers) as cluster, Client(cluster) as client:
        before = client.run(_cpu)
        _reset_peak_rss()
        c0, t0 = _cpu(), time.perf_counter()
        naive_export(
            collection, ids, grid.crs, grid.transform, (grid.height, grid.width), out, client, chunk
        )
        wall, client_cpu = time.perf_counter() - t0, _cpu() - c0
        usage = client.run(_usage)
        client_rss = _peak_rss_mb()
    px = grid.width * grid.height
    return {
        "pixels": px,
        "wall": wall,
        "px_s": px / wall,
        "rss": max(u[0] for u in usage.values()),
        "cores": (sum(u[1] - before[w] for w, u in usage.items()) + client_cpu) / wall,
        "client_cpu": client_cpu,
        "client_rss": client_rss,
    }


def compare(ours: Path, naive: Path) -> dict[str, int]:
    """Pixels where the two outputs differ (any band or the validity), block by block."""
    counts = {"pixels": 0, "differ": 0, "validity": 0, "values": 0}
    with rasterio.open(ours) as a, rasterio.open(naive) as b:
        if (a.width, a.height, a.count, a.transform) != (b.width, b.height, b.count, b.transform):
            raise SystemExit(f"the naive output's grid differs: {b.profile} vs {a.profile}")
        for _, window in a.block_windows(1):
            x, y = a.read(window=window), b.read(window=window)
            counts["pixels"] += x.shape[1] * x.shape[2]
            counts["differ"] += int((x != y).any(axis=0).sum())
            counts["validity"] += int((x[-1] != y[-1]).sum())
            both = (x[-1] == 255) & (y[-1] == 255)
            counts["values"] += int(((x[:-1] != y[:-1]).any(axis=0) & both).sum())
    return counts


def _have_odc_stac() -> bool:
    try:
        import odc.stac  # noqa: F401
    except ImportError:
        return False
    return True


def _line(name: str, runs: list[dict[str, Any]]) -> str:
    walls = [r["wall"] for r in runs]
    wall = statistics.median(walls)
    r = runs[0]
    return (
        f"{name}: {r.get('side', '')} px square ({r['pixels']:,} px"
        + (f", {r['chunks']} chunks" if "chunks" in r else "")
        + f"): median {wall:.1f} s of {[round(w, 1) for w in walls]} = "
        f"{r['pixels'] / wall:,.0f} px/s"
        + (f"; {r['reads']} item reads" if "reads" in r else "")
        + (f"; COG step {statistics.median(x['cog'] for x in runs):.1f} s" if "cog" in r else "")
        + f"; peak worker RSS {max(x['rss'] for x in runs):.0f} MB"
        + f"; cores busy {statistics.median(x['cores'] for x in runs):.2f}"
        + f" (client {statistics.median(x['client_cpu'] for x in runs):.1f} CPU s"
        + f", peak RSS {max(x['client_rss'] for x in runs):.0f} MB)"
    )


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    ap.add_argument("--scenes", type=int, default=24, help="items (even)")
    ap.add_argument("--size", type=int, default=8192, help="area side in 10 m pixels")
    ap.add_argument("--region", type=int, default=8192, help="exported square side in pixels")
    ap.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    ap.add_argument("--repeats", type=int, default=3, help="alternating rounds (medians)")
    ap.add_argument("--sizes", default="4096", help="other region sides for RSS (2 workers)")
    ap.add_argument("--chunk", type=int, default=1024)
    ap.add_argument("--naive-workers", type=int, default=2, help="0: no naive run")
    ap.add_argument(
        "--overviews", choices=OVERVIEWS, default=MOSAIC, help="tiler export --overviews"
    )
    ap.add_argument(
        "--quick", action="store_true", help="4 small items, a 1024 px region, one round"
    )
    args = ap.parse_args(argv)
    if args.quick:
        args.scenes, args.size, args.region, args.sizes, args.repeats = 4, 1024, 1024, "", 1
    collection = generate_scenes(args.dir, args.scenes, args.size, realistic=True)
    load = os.getloadavg()
    print(f"collection {collection}: {args.scenes} items over {args.size} px; load {load}")
    plan = _plan(collection, args.size, args.region, args.chunk, args.overviews)
    counts = [int(w) for w in args.workers.split(",")]
    runs: dict[int, list[dict[str, Any]]] = {n: [] for n in counts}
    with tempfile.TemporaryDirectory() as tmp:
        outputs: set[bytes] = set()
        for k in range(args.repeats):
            for n in counts if k % 2 == 0 else counts[::-1]:
                out = Path(tmp) / f"w{n}.tif"
                runs[n].append(run_ours(plan, n, out))
                outputs.add(out.read_bytes())
                print(f"  round {k + 1}, {n} workers: {runs[n][-1]['wall']:.1f} s")
        for n in counts:
            print(_line(f"tiler export, {n} workers", runs[n]))
            overview = statistics.median(r["overview"] for r in runs[n])
            wall = statistics.median(r["wall"] for r in runs[n])
            if runs[n][0]["level_chunks"]:
                print(
                    f"  overview levels ({runs[n][0]['level_chunks']} of "
                    f"{runs[n][0]['chunks']} chunks, the quality mosaic per level): "
                    f"~{overview:.1f} s = {overview / wall:.0%} of the wall time (their share "
                    "of the chunks' worker time)"
                )
        if len(outputs) > 1:
            raise SystemExit("the outputs of different runs differ")
        print("outputs identical across runs and worker counts")
        if len(counts) > 1:
            base = statistics.median(r["wall"] for r in runs[counts[0]])
            for n in counts[1:]:
                speedup = base / statistics.median(r["wall"] for r in runs[n])
                print(f"{n} workers / {counts[0]}: {speedup:.2f}x")
        for side in [int(s) for s in args.sizes.split(",") if s]:
            side_plan = _plan(collection, args.size, side, args.chunk, args.overviews)
            r = run_ours(side_plan, 2, Path(tmp) / "s.tif")
            print(_line("tiler export, 2 workers", [r]))
        if args.naive_workers and not _have_odc_stac():
            print("naive run skipped: odc-stac is not installed (pip install -e '.[bench]')")
        elif args.naive_workers:
            ours = Path(tmp) / f"w{args.naive_workers}.tif"
            if args.naive_workers not in runs:
                runs[args.naive_workers] = [run_ours(plan, args.naive_workers, ours)]
            naive = Path(tmp) / "naive.tif"
            r = run_naive(collection, plan, args.naive_workers, naive, args.chunk)
            print(_line(f"naive odc-stac + argmax, {args.naive_workers} workers", [r]))
            mine = runs[args.naive_workers]
            wall = statistics.median(x["wall"] for x in mine)
            rss = max(x["rss"] for x in mine)
            print(
                f"tiler export vs naive ({args.naive_workers} workers): "
                f"{r['wall'] / wall:.2f}x faster, peak worker RSS {rss:.0f} vs {r['rss']:.0f} MB"
            )
            c = compare(ours, naive)
            share = c["differ"] / c["pixels"]
            print(
                f"pixels differing from the naive output: {c['differ']:,} of {c['pixels']:,} "
                f"({share:.2%}): validity {c['validity']:,}, values where both valid "
                f"{c['values']:,}"
            )
    print(f"load average at the end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
