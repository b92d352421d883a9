"""Helpers of the hostile-input suite: the demo's coordinates, a check of refusals, and a
child process that runs the cases able to crash, exhaust or freeze a process (so that a guard
that regresses fails its cases instead of killing or hanging the test run)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]

#: the demo's centre, inside every scene of the small demo
LON, LAT = -103.19, 40.14
#: a small area around it, in lon/lat and in EPSG:3857
BBOX = "-103.195,40.135,-103.185,40.145"
BBOX_3857 = "-11487600,4885600,-11486500,4887000"


#: seconds within which a refusal must come (issue 11: "answers 4xx within a second"); the
#: refusals take milliseconds, the margin is for a busy machine
DEADLINE = 1.0


def refused(response: Any, status: int, *fragments: str, deadline: float = DEADLINE) -> None:
    """``response`` is a JSON ``status`` whose detail contains every fragment, answered
    within ``deadline`` seconds (httpx's ``elapsed``: request sent to body read)."""
    assert response.status_code == status, response.text[:500]
    assert response.elapsed.total_seconds() < deadline, response.elapsed
    assert response.headers["content-type"].startswith("application/json")
    detail = response.json()["detail"]
    assert isinstance(detail, str)
    for fragment in fragments:
        assert fragment in detail, detail


# ---------------------------------------------------------------------------------------
# a child process for the cases that crashed, exhausted or froze the server

_CHILD = """
import json, resource, sys, time
# a guard that regresses must not take the machine's memory with it (1,000 NOTs: > 23 GB)
resource.setrlimit(resource.RLIMIT_AS, (6 * 2**30, 6 * 2**30))
from fastapi.testclient import TestClient
from tiler.app import create_app
from tiler.settings import Settings
path, cases = json.loads(sys.stdin.read())
with TestClient(create_app(Settings(collections=[path], read_threads=2))) as client:
    client.get("/collections/demo/point/0,100")  # warm-up, as tests/hostile/conftest.py
    for name, url, params in cases:
        print(json.dumps(["start", name]), flush=True)
        t0 = time.perf_counter()
        r = client.get(url, params=params)
        seconds = time.perf_counter() - t0
        health = client.get("/healthz").status_code
        body = r.text[:2000]
        print(json.dumps(["done", name, r.status_code, r.headers["content-type"], body, health,
                          seconds]), flush=True)
"""


def run_in_child(
    demo: Path, cases: list[tuple[str, str, dict[str, str]]], timeout: float = 120
) -> dict[str, dict[str, Any]]:
    """Run GET ``cases`` (name, url, params) against a fresh app in a child process.

    Returns:
        Per case: status, content type, body, seconds to the answer, and the /healthz
        status right after; a case still running at the timeout, or that killed the child,
        has status "hung" or "killed".
    """
    results: dict[str, dict[str, Any]] = {}
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _CHILD],
            input=json.dumps([str(demo), cases]),
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=ROOT,
        )
        out, ended = proc.stdout, f"killed (exit {proc.returncode}): {proc.stderr[-500:]}"
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
        ended = "hung (still running at the timeout)"
    for line in out.splitlines():
        event = json.loads(line)
        if event[0] == "start":
            results[event[1]] = {"status": ended}
        else:
            _, name, status, ctype, body, health, seconds = event
            results[name] = {
                "status": status,
                "type": ctype,
                "body": body,
                "health": health,
                "seconds": seconds,
            }
    return results
