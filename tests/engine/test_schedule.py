"""The read scheduler: fairness under a stuck file, budgets, skip reasons, open datasets.

Reads here are plain functions that block on ``threading.Event`` s, so the tests prove the
order of events (what ran, what was skipped, what never started), not timings.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import deque
from pathlib import Path
from typing import Any

import numpy
import pytest
import rasterio
from rasterio.errors import RasterioIOError
from rasterio.transform import from_origin
from shapely.geometry import box
from support.engine import WAIT
from support.engine import item as _item

from tiler.catalog.models import Band, Item
from tiler.engine.budget import Budget, budget_scope
from tiler.engine.io import DatasetCache, FileNotAnswering, StallGuard
from tiler.engine.jobs import Job, jobs
from tiler.engine.schedule import Scheduler, fault_reason
from tiler.errors import DeadlineExceeded, RequestCancelled


def _collect(scheduler, fn, items, budget=None):
    skipped: dict[str, str] = {}
    out = [
        (job.item.id, r)
        for job, r in scheduler.run(
            lambda job: fn(job.item),
            [Job(it, ("b",)) for it in items],
            lambda job, why: skipped.__setitem__(job.item.id, why),
            budget,
        )
    ]
    return out, skipped


def test_a_stuck_read_does_not_hold_the_slot_other_requests_need():
    """One read blocks (a file that does not answer); with a single read slot, another
    request's reads still all complete, none skipped, while it is still blocked."""
    scheduler = Scheduler(threads=1, timeout=60, slow_after=0.05)
    stuck_started, release = threading.Event(), threading.Event()

    def stuck(item):
        stuck_started.set()
        assert release.wait(WAIT)
        return "late"

    first = threading.Thread(target=_collect, args=(scheduler, stuck, [_item("stuck")]))
    first.start()
    try:
        assert stuck_started.wait(WAIT)
        others = [_item(f"healthy-{i}") for i in range(6)]
        out, skipped = _collect(scheduler, lambda it: it.id.upper(), others)
        assert not release.is_set()  # the stuck read is still running
        assert sorted(r for _, r in out) == sorted(it.id.upper() for it in others)
        assert skipped == {}
    finally:
        release.set()
        first.join(WAIT)
        scheduler.close()


def test_the_item_timeout_counts_a_reads_own_time_not_its_queueing():
    """A read queued behind another request's slow read for longer than the timeout is
    not skipped: only the slow read itself (which ran past the timeout) is."""
    scheduler = Scheduler(threads=1, timeout=0.2, spare=0)  # no spare: the slot stays held
    slow_started, release = threading.Event(), threading.Event()
    result: dict[str, dict[str, str]] = {}

    def slow(item):
        slow_started.set()
        assert release.wait(WAIT)
        return 1

    def first_request():
        result["first"] = _collect(scheduler, slow, [_item("slow")])[1]
        release.set()  # the slow read ends only after its request gave it up

    t = threading.Thread(target=first_request)
    t.start()
    try:
        assert slow_started.wait(WAIT)
        out, skipped = _collect(scheduler, lambda it: 2, [_item("queued")])
        t.join(WAIT)
        assert result["first"] == {"slow": "timed out after 0.2 s"}
        assert out == [("queued", 2)] and skipped == {}
    finally:
        release.set()
        scheduler.close()


def test_a_timed_out_item_is_logged_at_warning_with_its_files(caplog):
    scheduler = Scheduler(threads=1, timeout=0.1)
    release = threading.Event()
    try:
        out, skipped = _collect(
            scheduler, lambda it: release.wait(WAIT), [_item("slow", "/data/slow.tif")]
        )
    finally:
        release.set()
        scheduler.close()
    assert skipped == {"slow": "timed out after 0.1 s"}
    record = next(r for r in caplog.records if "slow" in r.getMessage())
    assert record.levelname == "WARNING" and "/data/slow.tif" in record.getMessage()


def test_a_file_whose_read_timed_out_is_skipped_at_once_until_it_answers():
    guard = StallGuard(after=0.0)
    inside, release = threading.Event(), threading.Event()

    def hold():
        with guard.reading("http://host/stuck.tif"):
            inside.set()
            release.wait(WAIT)

    t = threading.Thread(target=hold)
    t.start()
    assert inside.wait(WAIT)
    with pytest.raises(FileNotAnswering) as err, guard.reading("http://host/stuck.tif"):
        pass
    assert fault_reason(err.value) == "FileNotAnswering: timed out (file not answering)"
    with guard.reading("http://host/other.tif"):  # other files are not affected
        pass
    release.set()
    t.join(WAIT)
    with guard.reading("http://host/stuck.tif"):  # answered: read again
        pass


def _held_reads() -> tuple[Any, list[str], threading.Event, threading.Event]:
    """A read that records its item, says it runs, and waits for ``release``: (read,
    called, running, release)."""
    called: list[str] = []
    running, release = threading.Event(), threading.Event()

    def read(item: Any) -> str:
        called.append(item.id)
        running.set()
        release.wait(WAIT)
        return item.id

    return read, called, running, release


def test_past_the_deadline_no_further_reads_are_scheduled():
    scheduler = Scheduler(threads=1, window=1)
    read, called, _, release = _held_reads()
    budget = Budget(timeout=0.1)
    try:
        with pytest.raises(DeadlineExceeded, match="limit of 0.1 s"):
            _collect(scheduler, read, [_item(f"i{k}") for k in range(5)], budget)
    finally:
        release.set()
        scheduler.close()
    assert called == ["i0"]


def test_cancelling_stops_the_reads_at_once_and_drops_queued_ones():
    """The current budget (as a request's middleware sets it) is obeyed; cancelling it
    from another thread ends the iteration while the running read is still blocked."""
    scheduler = Scheduler(threads=1, window=3, timeout=60)
    read, called, running, release = _held_reads()
    budget = Budget(timeout=None)
    threading.Thread(target=lambda: running.wait(WAIT) and budget.cancel()).start()
    try:
        with budget_scope(budget), pytest.raises(RequestCancelled):
            _collect(scheduler, read, [_item(f"i{k}") for k in range(5)])
        assert not release.is_set()
    finally:
        release.set()
        scheduler.close()
    assert called == ["i0"]  # i1 and i2 were queued (window 3) and dropped


def _write(path: Path) -> None:
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=8,
        height=8,
        count=1,
        dtype="uint8",
        crs="EPSG:32633",
        transform=from_origin(0, 80, 10, 10),
    ) as dst:
        dst.write(numpy.ones((1, 8, 8), "uint8"))


def test_skip_reasons_name_the_fault_not_the_path(tmp_path):
    secret = tmp_path / "secret-dir"
    secret.mkdir()
    (secret / "notes.tif").write_text("not a raster")
    faults = {}
    for name in ("missing.tif", "notes.tif"):
        with pytest.raises(RasterioIOError) as err:
            rasterio.open(secret / name)
        faults[name] = fault_reason(err.value)
    assert faults == {
        "missing.tif": "RasterioIOError: file not found",
        "notes.tif": "RasterioIOError: not a raster",
    }
    remote = {
        "HTTP response code: 404": "file not found",
        "HTTP response code: 403": "access denied",
        "HTTP response code: 503": "server error",
        "Could not resolve host: internal.example": "unreachable",
        "TIFFReadEncodedTile() failed.": "read failed",
    }
    for message, cause in remote.items():
        reason = fault_reason(
            RasterioIOError(f"/vsicurl/https://internal.example/a.tif: {message}")
        )
        assert reason == f"RasterioIOError: {cause}"
        assert "internal" not in reason


def test_open_datasets_are_bounded_for_all_threads_and_never_shared(tmp_path):
    paths = []
    for k in range(4):
        paths.append(tmp_path / f"f{k}.tif")
        _write(paths[-1])
    cache = DatasetCache(size=2)
    with cache.open(str(paths[0])) as a, cache.open(str(paths[0])) as b:
        assert a is not b  # the same file read twice at once: two handles
    assert len(cache) == 2
    with cache.open(str(paths[0])) as again:
        assert again in (a, b)  # reused
    for p in paths[1:]:
        with cache.open(str(p)):
            pass
    assert len(cache) == 2  # the least recently used were closed
    assert a.closed and b.closed
    cache.close()
    assert len(cache) == 0


def _remote(name: str) -> Item:
    return _item(name, f"http://127.0.0.1:9/{name}.tif")


def test_remote_reads_wait_together_whatever_the_local_threads():
    """Eight remote reads that each wait for all the others (one round trip for all)
    complete with one local thread: they run in the I/O pool, all at once."""
    scheduler = Scheduler(threads=1, io_threads=8, timeout=60)
    barrier = threading.Barrier(8, timeout=WAIT)

    def read(item):
        barrier.wait()
        return item.id

    try:
        out, skipped = _collect(scheduler, read, [_remote(f"r{k}") for k in range(8)])
    finally:
        scheduler.close()
    assert sorted(i for i, _ in out) == [f"r{k}" for k in range(8)] and skipped == {}


def test_a_pass_that_may_stop_early_starts_with_two_remote_reads_and_doubles():
    scheduler = Scheduler(threads=1, io_threads=16, timeout=60)
    lock = threading.Lock()
    running: list[str] = []
    rounds: list[list[str]] = []
    release = {f"r{k}": threading.Event() for k in range(7)}

    def read(job):
        with lock:
            running.append(job.item.id)
        assert release[job.item.id].wait(WAIT)
        return job.item.id

    def until(count):
        for _ in range(2000):
            with lock:
                if len(running) >= count:
                    return list(running)
            threading.Event().wait(0.005)
        raise AssertionError(f"{count} reads never started: {running}")

    jobs = [Job(_remote(f"r{k}"), ("b",)) for k in range(7)]
    results = []
    t = threading.Thread(
        target=lambda: results.extend(scheduler.run(read, jobs, lambda j, w: None, None, 2))
    )
    t.start()
    try:
        rounds.append(until(2))
        threading.Event().wait(0.05)
        assert len(running) == 2  # not more before an answer
        for k in range(2):  # the first round trip ends: room for 2 + 2, so 4 more start
            release[f"r{k}"].set()
        rounds.append(until(6))
        threading.Event().wait(0.05)
        assert len(running) == 6
        for ev in release.values():
            ev.set()
        t.join(WAIT)
    finally:
        for ev in release.values():
            ev.set()
        scheduler.close()
    assert rounds[0] == ["r0", "r1"] and sorted(rounds[1]) == [f"r{k}" for k in range(6)]
    assert len(results) == 7


def test_an_items_files_are_separate_jobs():
    item = Item(
        id="x",
        datetime=dt.datetime(2020, 7, 1, tzinfo=dt.UTC),
        geometry=box(0, 0, 1, 1),
        properties={},
        bands={
            "a": Band(name="a", href="s3://b/a.tif"),
            "b": Band(name="b", href="s3://b/b.tif"),
            "c": Band(name="c", href="s3://b/a.tif", bidx=2),
        },
    )
    assert jobs(item, ["a", "b", "c"]) == [Job(item, ("a", "c")), Job(item, ("b",))]
    assert jobs(item, ["b"]) == [Job(item, ("b",))]
    assert jobs(item, ["missing"]) == [Job(item, ("missing",))]
    assert all(j.remote for j in jobs(item, ["a", "b"]))
    assert not Job(_item("local", "/data/x.tif"), ("b",)).remote


def test_urgent_jobs_start_beyond_the_window_and_dropped_ones_never_answer():
    """One local read slot in the window: a job the consumer marks urgent starts at once
    beside it; a job it no longer wants is dropped and its result never comes."""
    scheduler = Scheduler(threads=2, window=1, timeout=60)
    release = threading.Event()
    started: list[str] = []
    lock = threading.Lock()

    def read(job):
        with lock:
            started.append(job.item.id)
        if job.item.id == "slow":
            assert release.wait(WAIT)
        return job.item.id

    urgent: deque = deque()
    unwanted: set[str] = set()
    queue = [Job(_item("first"), ("b",)), Job(_item("slow"), ("b",))]
    queue += [Job(_item("never"), ("b",))]
    got = []
    try:
        for _job, result in scheduler.run(
            read,
            queue,
            lambda j, w: None,
            None,
            urgent=urgent,
            drop=lambda j: j.item.id in unwanted,
        ):
            got.append(result)
            if result == "first":  # the window holds "slow" next; "extra" goes beside it
                urgent.append(Job(_item("extra"), ("b",)))
            if result == "extra":
                unwanted.add("slow")  # "slow" is running: dropped, its answer ignored
                release.set()
    finally:
        release.set()
        scheduler.close()
    assert got[:2] == ["first", "extra"] and "slow" not in got
    assert "never" in got  # the window's next job started once "slow" was dropped
