"""Live servers for the end-to-end operations tests: ``tiler serve`` and Debian's nginx.

nginx runs without any path of the machine: a prefix folder holds its configuration (the
deploy template rendered, wrapped in a main configuration), pid, logs, cache and temp
files; ``-e`` keeps even its first error log there.
"""

from __future__ import annotations

import getpass
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from support.net import free_port, stop

ROOT = Path(__file__).resolve().parents[2]
__all__ = ["NGINX", "free_port", "nginx", "render", "stop", "tiler_serve", "wait_for"]
TEMPLATE = ROOT / "deploy" / "nginx" / "tiler.conf.template"
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)


def wait_for(url: str, proc: subprocess.Popen[bytes], log: Path, seconds: float = 90) -> None:
    """Until ``url`` answers (any status), else fail with the log."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"exited ({proc.returncode}):\n{log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError(f"{url} never answered:\n{log.read_text()[-4000:]}")


def tiler_serve(
    sources: list[Path], log: Path, workers: int, env: dict[str, str]
) -> tuple[subprocess.Popen[bytes], int]:
    """``tiler serve SOURCES --workers N`` on a free loopback port, once it answers."""
    port = free_port()
    cmd = [sys.executable, "-m", "tiler.cli", "serve", *map(str, sources), "--port", str(port)]
    cmd += ["--workers", str(workers)]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT
        )
    wait_for(f"http://127.0.0.1:{port}/healthz", proc, log)
    return proc, port


def render(template: str, values: dict[str, str]) -> str:
    """``${NAME}`` replaced as envsubst does (nginx's own ``$name`` left alone)."""
    return re.sub(r"\$\{([A-Z_]+)\}", lambda m: values[m.group(1)], template)


def nginx(
    prefix: Path, upstream: int, listen_port: int | None = None
) -> tuple[subprocess.Popen[bytes], int]:
    """nginx in front of ``127.0.0.1:upstream`` with the deploy template, all in ``prefix``."""
    assert NGINX is not None
    port = listen_port or free_port()
    for folder in ("cache", "client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (prefix / folder).mkdir(parents=True, exist_ok=True)
    site = render(
        TEMPLATE.read_text(),
        {
            "TILER_UPSTREAM": f"127.0.0.1:{upstream}",
            "NGINX_PORT": f"127.0.0.1:{port}",
            "NGINX_CACHE_DIR": str(prefix / "cache"),
            "NGINX_CACHE_SIZE": "100m",
            "NGINX_ACCESS_LOG": str(prefix / "access.log"),
        },
    )
    (prefix / "tiler.conf").write_text(site)
    (prefix / "nginx.conf").write_text(
        f"""user {getpass.getuser()};
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log info;
events {{ worker_connections 256; }}
http {{
    access_log {prefix}/access.log;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    include {prefix}/tiler.conf;
}}
"""
    )
    log = prefix / "stderr.log"
    cmd = [NGINX, "-p", f"{prefix}/", "-c", str(prefix / "nginx.conf"), "-e"]
    cmd += [str(prefix / "error.log"), "-g", "daemon off;"]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for(f"http://127.0.0.1:{port}/healthz", proc, log, seconds=30)
    except RuntimeError as exc:
        errors = (prefix / "error.log").read_text() if (prefix / "error.log").exists() else ""
        raise RuntimeError(f"{exc}\n{errors}") from exc
    return proc, port
