"""Loopback servers for tests and benchmarks: ports, sockets and starting a server.

Where a server can take a socket (Python's HTTP servers, uvicorn in a thread or, through
``--fd``, in a child process), it gets one already bound by :func:`bound_socket`: nothing else
can take the port between choosing and listening. Programs that must be told a port number
(``tiler serve``, PostgreSQL, moto) get one from :func:`free_port` and are retried on another
one when the port was taken meanwhile (:func:`process_server`).
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self

HOST = "127.0.0.1"


class ServerFailed(RuntimeError):
    """A server process exited, or did not answer in time."""


def free_port() -> int:
    """A loopback port nothing listens on now, for a program that must be told a number.

    Another process may take it before the program binds it: prefer :func:`bound_socket`.
    """
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def bound_socket() -> socket.socket:
    """A listening TCP socket on a loopback port of the kernel's choice (``port_of``)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, 0))
    sock.listen(128)
    return sock


def port_of(sock: socket.socket) -> int:
    return int(sock.getsockname()[1])


def wait_until_up(
    url: str,
    proc: subprocess.Popen[Any] | None = None,
    timeout: float = 60.0,
    log: Path | None = None,
    interval: float = 0.2,
) -> None:
    """Poll ``url`` until it answers 200; :class:`ServerFailed` when ``proc`` exits first or
    ``timeout`` seconds pass (with the end of ``log``)."""
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise ServerFailed(f"server exited ({proc.returncode}):\n{_tail(log)}")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise ServerFailed(f"{url} did not answer in {timeout:.0f} s:\n{_tail(log)}")
        time.sleep(interval)


def _tail(log: Path | None, chars: int = 5000) -> str:
    if log is None or not log.exists():
        return ""
    return log.read_text(errors="replace")[-chars:]


def stop(proc: subprocess.Popen[Any], timeout: float = 15.0) -> None:
    """Terminate a child process; kill it when it does not end within ``timeout`` seconds."""
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@dataclass(frozen=True)
class Served:
    """A server process and where it listens."""

    url: str  # http://127.0.0.1:PORT
    port: int
    proc: subprocess.Popen[bytes]


@contextmanager
def process_server(
    argv: Callable[[int], list[str]],
    log: Path,
    *,
    fd: bool = False,
    health: str = "/healthz",
    timeout: float = 60.0,
    env: dict[str, str] | None = None,
    cwd: Path | str | None = None,
    attempts: int = 3,
) -> Iterator[Served]:
    """Run a server process on loopback until ``health`` answers 200; stopped after.

    Args:
        argv: the command, given the port number, or with ``fd`` the number of a listening
            socket's file descriptor the child inherits (``uvicorn --fd``: no race).
        log: the file the process's stdout and stderr go to (reopened per attempt).
        fd: pass a bound socket instead of a port number.
        health: the path polled.
        timeout: seconds for the server to answer.
        env, cwd: of the process (default: this process's environment).
        attempts: starts on a new port when the port was taken before the server bound it.

    Yields:
        The :class:`Served` process.
    """
    for attempt in range(attempts):
        sock = bound_socket() if fd else None
        port = port_of(sock) if sock is not None else free_port()
        with log.open("wb") as out:
            proc = subprocess.Popen(
                argv(sock.fileno() if sock is not None else port),
                env=dict(os.environ) if env is None else env,
                cwd=cwd,
                stdout=out,
                stderr=subprocess.STDOUT,
                pass_fds=(sock.fileno(),) if sock is not None else (),
            )
        if sock is not None:
            sock.close()  # the child has its own copy
        served = Served(f"http://{HOST}:{port}", port, proc)
        try:
            wait_until_up(served.url + health, proc, timeout, log)
        except ServerFailed:
            stop(proc)
            taken = "address already in use" in _tail(log).lower()
            if taken and attempt + 1 < attempts:
                continue
            raise
        try:
            yield served
        finally:
            stop(proc)
        return


@contextmanager
def uvicorn_thread(app: Any, health: str = "/healthz") -> Iterator[str]:
    """An ASGI app served by uvicorn in a thread of this process, on a socket bound first.

    Yields its base URL once ``health`` answers.
    """
    import uvicorn

    sock = bound_socket()
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    base = f"http://{HOST}:{port_of(sock)}"
    try:
        wait_until_up(base + health, timeout=30, interval=0.05)
        yield base
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def http_server(handler: type[BaseHTTPRequestHandler], port: int = 0) -> ThreadingHTTPServer:
    """A threading HTTP server bound on loopback (``port`` 0: the kernel's choice, read back
    from ``server_port``); :func:`serve_in_thread` starts it."""
    server = ThreadingHTTPServer((HOST, port), handler)
    server.daemon_threads = True
    return server


def serve_in_thread(server: ThreadingHTTPServer) -> ThreadingHTTPServer:
    """Serve in a daemon thread; stop with ``shutdown()`` then ``server_close()`` (it
    polls every 20 ms, so that a test's ``shutdown()`` does not wait half a second)."""
    threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
    return server


@contextmanager
def tiler_serve(
    *args: str,
    log: Path,
    env: dict[str, str] | None = None,
    timeout: float = 60.0,
    cwd: Path | str | None = None,
) -> Iterator[Served]:
    """``tiler serve ARGS`` on a loopback port, once ``/healthz`` answers; stopped after."""
    import sys

    def argv(port: int) -> list[str]:
        cmd = [sys.executable, "-m", "tiler.cli", "serve", *args]
        return [*cmd, "--host", HOST, "--port", str(port)]

    with process_server(argv, log, env=env, timeout=timeout, cwd=cwd) as served:
        yield served


class LoopbackServer:
    """A context manager over an HTTP server bound on loopback (``_server``, from
    :func:`http_server`): served in a thread inside the block, shut down after it."""

    _server: ThreadingHTTPServer

    def __enter__(self) -> Self:
        serve_in_thread(self._server)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
