"""Running an export on a Dask cluster: chunks as tasks, parts written as they finish.

The client submits the chunks not written yet as Dask tasks (:func:`run_chunk`), keeping
a bounded number in flight, and writes each one's part as soon as it finishes
(``as_completed``), so neither the client nor the workers ever hold more than a few
chunks. With mosaic overviews the overview levels' chunks follow the output's, each a
task of the same size on its level's grid. Dask recomputes the chunks of a worker that
dies. Once every part is written they become the output COG. Ctrl-C (or any failure)
cancels the tasks in flight; the parts already written stay, and ``resume`` computes only
the others.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dask.config
from distributed import Client, Future, LocalCluster, as_completed

from tiler.export.chunks import ChunkResult, run_chunk
from tiler.export.cog import write_output
from tiler.export.parts import PartStore, compute_part, part_key
from tiler.export.plan import ExportPlan

logger = logging.getLogger(__name__)


class ExportInterrupted(Exception):
    """The export was stopped (Ctrl-C) with ``done`` of ``total`` chunks written."""

    def __init__(self, done: int, total: int, parts: Path) -> None:
        super().__init__(
            f"interrupted: {done} of {total} chunks written in {parts}; run the same "
            "command with --resume to finish"
        )
        self.done = done
        self.total = total


@dataclass
class Progress:
    """Where an export is: chunks written (of all) and item reads so far."""

    done: int
    total: int
    item_reads: int


@dataclass
class Summary:
    """What an export did.

    Attributes:
        output: the COG written.
        pixels: pixels of the grid.
        chunks: chunks of the grid and of the overview levels computed as mosaics.
        computed: chunks computed by this run.
        resumed: chunks written by an earlier run and kept.
        item_reads: item quality reads, all chunks together (a chunk reads an item once).
        skipped: items skipped (missing, corrupt, too slow, refused) with the reason.
        seconds: wall time of this run.
        pixels_computed: pixels of the output grid's chunks computed by this run.
        cog_seconds: wall time of the COG step (after the last chunk, in the client).
        levels: overview levels computed as mosaics (0: none, or decimated by GDAL).
        level_chunks: chunks of those levels (of ``chunks``).
        task_seconds: the chunks' time on their workers, this run's, all levels.
        level_task_seconds: the same for the overview levels' chunks.
    """

    output: Path
    pixels: int
    chunks: int
    computed: int
    resumed: int
    item_reads: int
    skipped: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    pixels_computed: int = 0
    cog_seconds: float = 0.0
    levels: int = 0
    level_chunks: int = 0
    task_seconds: float = 0.0
    level_task_seconds: float = 0.0

    @property
    def pixels_per_second(self) -> float:
        """Pixels computed by this run per second of its wall time."""
        return self.pixels_computed / self.seconds if self.seconds > 0 else 0.0

    def lines(self) -> list[str]:
        """The summary as text lines."""
        levels = (
            f"; {self.level_chunks} of them for {self.levels} overview levels"
            if self.levels
            else ""
        )
        out = [
            f"{self.output}: {self.pixels:,} px in {self.chunks} chunks "
            f"({self.computed} computed, {self.resumed} resumed{levels})",
            f"item reads: {self.item_reads:,}; skipped items: {len(self.skipped)}",
            f"wall time: {self.seconds:.1f} s (the COG {self.cog_seconds:.1f} s); "
            f"{self.pixels_per_second:,.0f} px/s",
        ]
        out += [f"  skipped {item}: {reason}" for item, reason in sorted(self.skipped.items())]
        return out


@contextmanager
def connect(scheduler: str | None = None, workers: int | None = None) -> Iterator[Client]:
    """A Dask client: of the cluster at ``scheduler``, else of a new local cluster.

    Args:
        scheduler: ``tcp://host:port`` of a running scheduler (its workers need this
            project installed and the same access to the catalogue and files).
        workers: processes of the local cluster (default: one per core), one thread each
            (the engine reads with its own threads).
    """
    if scheduler is not None:
        client = Client(scheduler)
        try:
            yield client
        finally:
            client.close()
        return
    with local_cluster(workers) as cluster, Client(cluster) as client:
        yield client


#: malloc of a local cluster's workers: a chunk's arrays (tens of MB) reused from the heap.
#: Dask's default trim threshold (64 kB) and glibc's mmap threshold return them to the
#: kernel after every chunk, and the next chunk's arrays fault every page in again (most
#: of a worker's time went to the kernel); memory per worker stays bounded by the chunk.
WORKER_MALLOC = {"MALLOC_TRIM_THRESHOLD_": str(1 << 30), "MALLOC_MMAP_THRESHOLD_": str(1 << 25)}


def local_cluster(workers: int | None = None, dashboard_address: str | None = ":0") -> LocalCluster:
    """A local cluster of ``workers`` processes (default: one per core), one thread each.

    The engine reads with its own threads; the workers' malloc is :data:`WORKER_MALLOC`.
    """
    n = workers or os.cpu_count() or 1
    environ = {**dask.config.get("distributed.nanny.pre-spawn-environ", {}), **WORKER_MALLOC}
    with dask.config.set({"distributed.nanny.pre-spawn-environ": environ}):
        return LocalCluster(
            n_workers=n,
            threads_per_worker=1,
            processes=True,
            dashboard_address=dashboard_address,
        )


def dashboard(client: Client) -> str | None:
    """The link of the cluster's dashboard (None: it has none)."""
    link: str | None = None
    try:
        link = client.dashboard_link
    except KeyError:  # the scheduler serves no dashboard (bokeh not installed there)
        link = None
    return link


class Exporter:
    """Runs an :class:`~tiler.export.plan.ExportPlan` to a COG at ``output``.

    Args:
        plan: the export.
        output: the COG to write.
        client: the Dask client.
        on_progress: called after each part is written (in the client).
        in_flight: chunks submitted at once (default: two per worker thread, and two).
        parts_on_workers: the workers write the chunks' parts themselves (their file system
            is the client's, as on a local cluster), instead of sending the pixels to the
            client to write.
    """

    def __init__(
        self,
        plan: ExportPlan,
        output: Path,
        client: Client,
        on_progress: Callable[[Progress], None] | None = None,
        in_flight: int | None = None,
        parts_on_workers: bool = False,
    ) -> None:
        self.plan = plan
        self.parts_on_workers = parts_on_workers
        self.output = output
        self.client = client
        self.on_progress = on_progress
        threads = sum(client.nthreads().values()) or 1
        self.in_flight = in_flight or 2 * threads + 2
        self.store = PartStore(output, plan.document(), plan.block)

    def run(self, resume: bool = False) -> Summary:
        """Compute the chunks not written yet, then write the COG.

        Raises:
            ExportInterrupted: Ctrl-C; the parts written are kept for ``resume``.
            ExportError: the parts of another export are in the way of ``resume``.
        """
        t0 = time.perf_counter()
        plan = self.plan
        grids = plan.levels()
        kept = dict(self.store.open(resume))
        tasks = plan.tasks()
        todo = [(k, w) for k, w in tasks if part_key(k, w) not in kept]
        reads = sum(int(r["read"]) for r in kept.values())
        skipped: dict[str, str] = {}
        for record in kept.values():
            for item, reason in record["skipped"].items():
                skipped.setdefault(item, reason)
        [positions] = self.client.scatter([plan.positions], broadcast=True, hash=False)
        queue = iter(todo)
        futures = as_completed()
        pending: dict[Future[ChunkResult], int] = {}
        seconds = [0.0, 0.0]  # all chunks, the overview levels'

        def submit() -> None:
            task = next(queue, None)
            if task is None:
                return
            level, window = task
            args: tuple[Any, ...] = (plan.spec, grids[level].chunk(window), window)
            args += (plan.dtype, positions)
            if self.parts_on_workers:
                task_function: Callable[..., ChunkResult] = compute_part
                args += (self.store.part(window, level).absolute(), plan.block)
            else:
                task_function = run_chunk
            future = self.client.submit(
                task_function,
                *args,
                # a fresh key: never a cancelled task's
                key=f"chunk-{part_key(level, window)}-{uuid.uuid4().hex}",
                pure=False,
            )
            pending[future] = level
            futures.add(future)

        for _ in range(self.in_flight):
            submit()
        done, finished = len(kept), False
        try:
            for future in futures:
                result: ChunkResult = future.result()
                level = pending.pop(future)
                future.release()
                submit()
                self.store.write(result, grids[level], level)
                done += 1
                reads += result.read
                seconds[0] += result.seconds
                seconds[1] += result.seconds if level else 0.0
                for item, reason in result.skipped.items():
                    skipped.setdefault(item, reason)
                if self.on_progress is not None:
                    self.on_progress(Progress(done, len(tasks), reads))
            finished = True
        except KeyboardInterrupt:
            raise ExportInterrupted(done, len(tasks), self.store.folder) from None
        finally:
            if not finished:
                self.client.cancel(list(pending))
            positions.release()
        t_cog = time.perf_counter()
        write_output(plan, self.store, self.output)
        self.store.remove()
        computed = sum(w.width * w.height for k, w in todo if k == 0)
        return Summary(
            output=self.output,
            pixels=plan.grid.width * plan.grid.height,
            chunks=len(tasks),
            computed=len(todo),
            resumed=len(kept),
            item_reads=reads,
            skipped=skipped,
            seconds=time.perf_counter() - t0,
            pixels_computed=computed,
            cog_seconds=time.perf_counter() - t_cog,
            levels=len(grids) - 1,
            level_chunks=sum(1 for k, _ in tasks if k),
            task_seconds=seconds[0],
            level_task_seconds=seconds[1],
        )


def export(
    plan: ExportPlan,
    output: Path,
    client: Client,
    resume: bool = False,
    on_progress: Callable[[Progress], None] | None = None,
    **options: Any,
) -> Summary:
    """Run ``plan`` to ``output`` on ``client`` (see :class:`Exporter`)."""
    return Exporter(plan, output, client, on_progress, **options).run(resume)
