"""Faults that must not outlive their cause (issue 22), through GDAL and a real HTTP server.

1. A remote file whose read failed (500, a hang, a broken transfer, or the whole server
   down) is refused for a short back-off, with a reason that says when it is retried, and
   read again after it: GDAL's /vsicurl/ remembers a failed URL as "does not exist" for the
   life of the process unless told to forget it, which the reader does when the back-off
   is over (:class:`tiler.engine.io.FailedFiles`).
2. A tile over a server that does not answer waits one item timeout in all: its reads
   share one deadline (:class:`tiler.engine.schedule.ReadDeadline`), instead of one timeout
   per round of the doubling window or per pass.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import numpy
import pytest
from rasterio.errors import RasterioIOError
from support.engine import WAIT, Mosaicker
from support.engine import item as _item
from support.faults import (
    OUT,
    QUALITY,
    TIMEOUT,
    assert_equals_oracle,
    check_reason,
    footprint,
    local_reads,
    remote_copy,
)
from support.net import free_port
from support.oracle import days, naive_mosaic
from support.remote_servers import RangeServer, environ, restore

from tiler.catalog.filters import Search
from tiler.catalog.loaders import load_collection
from tiler.engine.jobs import FailedFiles, FileFailed, Job
from tiler.engine.schedule import Scheduler, fault_reason
from tiler.engine.service import Engine

BACKOFF = 1.0  # the engine's back-off in these tests (s)


@pytest.fixture(scope="module")
def full(synthetic, tile_reader, case) -> dict[str, Any]:
    """The oracle's tile of ``case`` with every item (the faulty one answers again)."""
    t = case["tile"]
    found = load_collection(synthetic["path"]).search(Search(), footprint(t))
    assert [it.id for it in found] == case["ids"]
    reads = [local_reads(tile_reader, it, t) for it in found]
    data, valid = naive_mosaic(reads, lambda v: v[QUALITY], [QUALITY], OUT, days(found))
    return {**case, "data": data, "valid": valid, "wins": numpy.zeros_like(valid)}


def _engine(timeout: float = TIMEOUT) -> Engine:
    return Engine(read_threads=4, item_timeout=timeout, retry_after=BACKOFF)


# ---------------------------------------------------------------------------------------
# 1. a failed file is retried after a short back-off


def test_failed_files_refuse_within_the_back_off_then_forget_and_retry():
    now = [100.0]
    forgotten: list[str] = []
    failed = FailedFiles(5.0, size=2, forget=forgotten.append, clock=lambda: now[0])
    href = "http://host/a.tif"
    failed.check(href)  # never failed: goes on
    raised = failed.fail(href, RasterioIOError("HTTP response code: 500"))
    assert isinstance(raised, FileFailed) and raised.retry_in == 5.0
    assert fault_reason(raised) == "RasterioIOError: server error (retried after 5 s)"
    now[0] += 3.2
    with pytest.raises(FileFailed) as err:
        failed.check(href)
    assert fault_reason(err.value) == "RasterioIOError: server error (retried after 2 s)"
    assert forgotten == []  # GDAL keeps the failure while the back-off runs
    now[0] += 1.8
    failed.check(href)  # over: GDAL forgets the URL and the read goes on
    assert forgotten == [href] and len(failed) == 0
    failed.check(href)  # forgotten once, not per read
    assert forgotten == [href]
    for name in "bcd":  # bounded: the oldest failure goes first
        failed.fail(f"http://host/{name}.tif", OSError("curl error"))
    assert len(failed) == 2
    failed.check("http://host/b.tif")
    with pytest.raises(FileFailed):
        failed.check("http://host/d.tif")


@pytest.mark.parametrize("fault", ["500", "hang", "truncate"])
def test_a_file_server_that_recovers_is_read_again_after_the_back_off(
    synthetic, full, tmp_path, fault
):
    """Fails -> skipped, saying when it is retried; within the back-off -> refused without
    asking the server; recovered and the back-off over -> read again, tile complete."""
    t, ids, k = full["tile"], full["ids"], full["faulty"]
    old = environ({"GDAL_HTTP_TIMEOUT": "1"})  # a hung request fails within the item timeout
    engine = _engine()
    try:
        with RangeServer(synthetic["root"]) as server:
            path, href = remote_copy(synthetic, tmp_path / "r.json", server, ids[k], "q", fault)
            key = href.removeprefix(server.url)
            m = Mosaicker(load_collection(path), engine)
            _, stats = m.tile(t, QUALITY, OUT)
            assert list(stats.skipped) == [ids[k]], stats.skipped
            reason = stats.skipped[ids[k]]
            check_reason(reason, "hang" if fault == "hang" else fault, href, full["root"])
            if fault == "hang":  # the curl timeout (1 s) ends the read, not the item timeout
                assert "retried after" in reason or reason == f"timed out after {TIMEOUT:g} s"
            else:
                assert reason.endswith(f"(retried after {BACKOFF:g} s)"), reason
            asked = server.asked[key]
            assert asked >= 1

            _, stats = m.tile(t, QUALITY, OUT)  # within the back-off: not asked again
            assert list(stats.skipped) == [ids[k]], stats.skipped
            assert "(retried after 1 s)" in stats.skipped[ids[k]]
            assert server.asked[key] == asked

            server.faults.clear()  # the server recovers
            time.sleep(BACKOFF)
            img, stats = m.tile(t, QUALITY, OUT)
            assert server.asked[key] > asked  # asked again: GDAL forgot the failure
    finally:
        engine.close()
        restore(old)
    assert stats.skipped == {}, stats.skipped
    assert ids[k] in stats.used
    assert_equals_oracle(img, full)


def test_a_file_server_that_was_down_is_read_again_once_it_is_back(synthetic, full, tmp_path):
    t, ids = full["tile"], full["ids"]
    port = free_port()  # nothing listens yet: connections are refused
    base = f"http://127.0.0.1:{port}/~{port}"  # a prefix the server strips
    doc = json.loads(Path(synthetic["path"]).read_text())
    for feature in doc["features"]:
        for asset in feature["assets"].values():
            asset["href"] = f"{base}/{asset['href']}"
    path = tmp_path / "down.json"
    path.write_text(json.dumps(doc))
    engine = _engine()
    try:
        m = Mosaicker(load_collection(path), engine)
        img, stats = m.tile(t, QUALITY, OUT)
        assert sorted(stats.skipped) == sorted(ids), stats.skipped
        for reason in stats.skipped.values():
            assert "unreachable" in reason and "(retried after 1 s)" in reason, reason
        assert img.array.mask.all()
        with RangeServer(synthetic["root"], port=port) as server:  # back up
            time.sleep(BACKOFF)
            img, stats = m.tile(t, QUALITY, OUT)
            assert server.requests > 0
    finally:
        engine.close()
    assert stats.skipped == {}, stats.skipped
    assert_equals_oracle(img, full)


# ---------------------------------------------------------------------------------------
# 2. one deadline for all the reads of a tile


def test_hanging_reads_share_one_deadline_not_one_timeout_per_round():
    """13 remote reads that never answer, 4 at first (the doubling window): the window
    opens once a read waits, and all are given up together at one deadline."""
    scheduler = Scheduler(threads=2, timeout=0.5, slow_after=1.0)
    release = threading.Event()
    started: list[str] = []
    items = [_item(f"i{n}", f"http://host/{n}.tif") for n in range(13)]
    deadline = scheduler.deadline()
    skipped: dict[str, str] = {}

    def hang(job: Job) -> None:
        started.append(job.item.id)
        assert release.wait(WAIT)

    try:
        out = list(
            scheduler.run(
                hang,
                [Job(it, ("b",)) for it in items],
                lambda job, why: skipped.__setitem__(job.item.id, why),
                start=4,
                deadline=deadline,
            )
        )
        assert sorted(started) == sorted(it.id for it in items)  # all started before it
    finally:
        release.set()
        scheduler.close()
    assert out == []
    assert skipped == {it.id: "timed out after 0.5 s" for it in items}
    assert deadline.mark == 0.25  # half the timeout: every read starts before the deadline
    assert deadline.at is not None and deadline.expiries == 1


def test_a_later_run_of_the_same_request_gets_no_new_timeout():
    """A second run with the deadline of the first (the bands after the quality pass):
    past the deadline, a read may run ``mark`` seconds, not a fresh timeout; one that
    answers at once is used."""
    scheduler = Scheduler(threads=2, timeout=60.0, slow_after=0.05)
    deadline = scheduler.deadline()
    deadline.waiting(time.monotonic() - 60.0)  # an earlier run waited: the deadline is past
    release = threading.Event()
    skipped: dict[str, str] = {}

    def read(job: Job) -> str:
        if job.item.id == "hangs":
            assert release.wait(WAIT)
        return job.item.id

    start = time.monotonic()
    try:
        out = list(
            scheduler.run(
                read,
                [Job(_item(n, f"http://host/{n}.tif"), ("b",)) for n in ("hangs", "answers")],
                lambda job, why: skipped.__setitem__(job.item.id, why),
                deadline=deadline,
            )
        )
    finally:
        release.set()
        scheduler.close()
    assert [job.item.id for job, _ in out] == ["answers"]
    assert skipped == {"hangs": "timed out after 60 s"}
    assert time.monotonic() - start < 30  # not the 60 s timeout again (mark: 0.05 s)


def test_a_tile_over_a_hanging_server_waits_one_item_timeout_in_all(synthetic, tmp_path):
    """Every file of 21 items hangs (three copies of the collection under fresh URLs):
    every item is skipped as timed out, given up at one deadline (not 6 rounds of 4)."""
    timeout = 0.5
    doc = json.loads(Path(synthetic["path"]).read_text())
    engine = _engine(timeout)
    with RangeServer(synthetic["root"]) as server:
        server.faults[".tif"] = "hang"
        features = []
        for copy in range(3):
            base = server.fresh()
            for feature in json.loads(json.dumps(doc["features"])):
                feature["id"] = f"{feature['id']}-{copy}"
                for asset in feature["assets"].values():
                    asset["href"] = f"{base}/{asset['href']}"
                features.append(feature)
        path = tmp_path / "hanging.json"
        path.write_text(json.dumps({**doc, "features": features}))
        catalog = load_collection(path)
        m = Mosaicker(catalog, engine)
        w, s, e, n = catalog.info().bounds
        t = next(m.tms.tiles(w, s, e, n, [12]))
        items = m.items(t)
        assert len(items) == 21
        try:
            img, stats = m.tile(t, QUALITY, OUT)
        finally:
            engine.close()
    assert stats.skipped == {it.id: f"timed out after {timeout:g} s" for it in items}
    assert stats.expiries == 1  # one deadline for the whole tile
    assert img.array.mask.all() and stats.used == []
