"""The container recipe keeps the properties the deployment relies on."""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_multi_stage_node_then_python():
    stages = [rest for word, rest in _instructions() if word == "FROM"]
    assert stages[0].startswith("node:") and stages[-1].startswith("python:")


def test_runs_as_non_root_with_healthcheck_and_exec_cmd():
    ins = _instructions()
    users = [rest for word, rest in ins if word == "USER"]
    assert users and users[-1] not in ("root", "0")
    health = [rest for word, rest in ins if word == "HEALTHCHECK"]
    assert health and "/healthz" in health[0]
    cmd = [rest for word, rest in ins if word == "CMD"][-1]
    assert isinstance(json.loads(cmd), list)  # exec form


def test_image_and_ci_use_the_same_install_script():
    runs = " ".join(rest for word, rest in _instructions() if word == "RUN")
    assert "scripts/install.sh" in runs
    assert "scripts/install.sh" in (ROOT / ".ci" / "run").read_text()
    env = " ".join(rest for word, rest in _instructions() if word == "ENV")
    assert re.search(r"GDAL_DISABLE_READDIR_ON_OPEN=EMPTY_DIR", env)
    assert "TILER_WORKERS" in env


def test_dockerignore_keeps_build_outputs_out():
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert "frontend/node_modules" in ignored and ".git" in ignored
