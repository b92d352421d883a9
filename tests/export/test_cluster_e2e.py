"""tiler export on real Dask clusters: a local one, and a scheduler with two worker processes
on loopback started here (one killed mid-run); the same bytes each time."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import rasterio
from click.testing import CliRunner
from distributed import Client

from tiler.cli import cli

pytestmark = pytest.mark.e2e

#: the synthetic collection at 0.5 m: 2000 x 1800 px, 4 x 4 chunks of 512, and overview
#: levels of 1000 x 900 px (2 x 2 chunks) and 500 x 450 px (one chunk)
CHUNKS = 16 + 4 + 1
ARGS = [
    "--collection",
    "test",
    "--bbox",
    "499900,4999800,500900,5000700",
    "--bbox-crs",
    "EPSG:32633",
    "--resolution",
    "0.5",
    "--quality",
    "q",
    "--bands",
    "a,_index",
    "--chunk",
    "512",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Cluster:
    address: str
    scheduler: subprocess.Popen[bytes]
    workers: list[subprocess.Popen[bytes]]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    """``dask scheduler`` and two ``dask worker`` processes on loopback ports."""
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    dask = [sys.executable, "-m", "dask"]
    log = (tmp_path / "cluster.log").open("wb")
    scheduler = subprocess.Popen(
        [*dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    workers = [
        subprocess.Popen(
            [*dask, "worker", address, "--nthreads", "1", "--no-dashboard"]
            + ["--host", "127.0.0.1", "--no-nanny"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        for _ in range(2)
    ]
    try:
        with Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=120)
        yield Cluster(address, scheduler, workers)
    finally:
        for proc in [*workers, scheduler]:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in [*workers, scheduler]:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        log.close()


@pytest.fixture(scope="module")
def reference(synthetic, tmp_path_factory) -> bytes:
    """The export on a local cluster of two worker processes (``--workers 2``)."""
    out = tmp_path_factory.mktemp("reference") / "local.tif"
    result = CliRunner().invoke(
        cli, ["export", str(synthetic["path"]), *ARGS, "--workers", "2", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "dashboard: http" in result.output
    assert f"{CHUNKS} computed, 0 resumed; 5 of them for 2 overview levels" in result.output
    assert "px/s" in result.output
    assert "overviews: 2 levels computed as the quality mosaic (5 chunks more)" in result.output
    return out.read_bytes()


def test_export_on_a_scheduler_with_two_workers_is_identical(
    synthetic, cluster, reference, tmp_path
):
    out = tmp_path / "out.tif"
    result = CliRunner().invoke(
        cli,
        ["export", str(synthetic["path"]), *ARGS, "--scheduler", cluster.address, "-o", str(out)],
    )
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == reference


def _start_export(
    collection: Path, scheduler: str, out: Path
) -> tuple[subprocess.Popen[bytes], Path]:
    """``tiler export`` in a process on ``scheduler``, once its first part is written (or it
    ended, or 120 s passed); the process and the parts' manifest."""
    command = [sys.executable, "-m", "tiler.cli", "export", str(collection), *ARGS]
    command += ["--scheduler", scheduler, "-o", str(out)]
    run = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    manifest = out.with_name(out.name + ".parts") / "done.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and run.poll() is None:
        if manifest.exists() and manifest.read_text().strip():
            break
        time.sleep(0.01)
    return run, manifest


def test_a_worker_killed_mid_run_leaves_the_output_complete_and_identical(
    synthetic, cluster, reference, tmp_path
):
    out = tmp_path / "out.tif"
    run, manifest = _start_export(synthetic["path"], cluster.address, out)
    assert run.poll() is None, "the export ended before a worker could be killed"
    written = len(manifest.read_text().splitlines())
    os.kill(cluster.workers[0].pid, signal.SIGKILL)
    output, _ = run.communicate(timeout=300)
    assert run.returncode == 0, output.decode()
    assert written < CHUNKS
    assert out.read_bytes() == reference


def test_ctrl_c_stops_and_resume_finishes(synthetic, cluster, reference, tmp_path):
    out = tmp_path / "out.tif"
    run, manifest = _start_export(synthetic["path"], cluster.address, out)
    run.send_signal(signal.SIGINT)
    output, _ = run.communicate(timeout=120)
    if run.returncode == 0:
        pytest.skip("the export finished before Ctrl-C reached it")
    assert run.returncode == 130, output.decode()
    assert b"--resume" in output
    records = [json.loads(line) for line in manifest.read_text().splitlines()]
    done = {(r["level"], json.dumps(r["window"])) for r in records}
    result = CliRunner().invoke(
        cli,
        ["export", str(synthetic["path"]), *ARGS, "--scheduler", cluster.address]
        + ["-o", str(out), "--resume"],
    )
    assert result.exit_code == 0, result.output
    assert f"{CHUNKS - len(done)} computed, {len(done)} resumed" in result.output
    assert out.read_bytes() == reference


def test_overviews_nearest_on_the_command_line(synthetic, tmp_path):
    out = tmp_path / "nearest.tif"
    result = CliRunner().invoke(
        cli,
        ["export", str(synthetic["path"]), *ARGS, "--workers", "1", "--overviews", "nearest"]
        + ["-o", str(out)],
    )
    assert result.exit_code == 0, result.output
    assert "16 computed, 0 resumed)" in result.output
    assert "decimated from the output by nearest neighbour" in result.output
    with rasterio.open(out) as src:
        assert src.overviews(1) == [2, 4]
