"""A throwaway PostgreSQL 15 + PostGIS 3 + PgSTAC cluster for the tests (no mocks).

``PgstacCluster().start()`` runs ``initdb`` in a fresh temporary folder, starts the server on
127.0.0.1 only (a free port, plus a unix socket inside that folder), creates the database
with PostGIS, installs PgSTAC with pypgstac's migrations, and adds a login role ``tiler``
with a password. ``stop()`` / ``start()`` / ``restart()`` keep the data folder and the port,
so a test can take the database away while a server uses it and bring it back; ``close()``
stops the server and deletes the folder. ``create_database(name, version="0.9.12")`` makes a
database of another PgSTAC version than pypgstac's own (:func:`pgstac_versions` lists the
newest of each minor version the installed pypgstac can install).

PostgreSQL refuses to run as root: as root, ``initdb`` and ``pg_ctl`` run as the ``postgres``
OS user (``runuser -u postgres --``). Durability is off (fsync, full-page writes, synchronous
commit): the data is thrown away anyway.

Authentication: ``trust`` for every role over the unix socket and 127.0.0.1, except the
role ``tiler``, which must give its password over TCP (scram-sha-256), so a test using
:attr:`PgstacCluster.dsn_with_password` proves the password really reaches libpq.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from support.net import free_port

PG_MAJOR = 15
DEBIAN_BINDIR = Path(f"/usr/lib/postgresql/{PG_MAJOR}/bin")
OS_USER = "postgres"  # the OS user the server runs as when the tests run as root

PASSWORD_ROLE = "tiler"
PASSWORD = "s3cret-pw"
TEMPLATE_DB = "pgstac_template"


class PgstacClusterError(RuntimeError):
    """The cluster could not be created, started or stopped (the message has the log)."""


@dataclass(frozen=True)
class Availability:
    """Whether a cluster can be started here; false with the reason why not."""

    ok: bool
    reason: str = ""

    def __bool__(self) -> bool:
        return self.ok


def find_bindir() -> Path | None:
    """The PostgreSQL 15 programs: Debian's folder, else ``pg_config --bindir``."""
    if (DEBIAN_BINDIR / "initdb").is_file():
        return DEBIAN_BINDIR
    pg_config = shutil.which("pg_config")
    if pg_config is None:
        return None
    try:
        out = subprocess.run(
            [pg_config, "--bindir"], capture_output=True, text=True, check=True, timeout=30
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return Path(out) if out and (Path(out) / "initdb").is_file() else None


def _sharedir(bindir: Path) -> Path | None:
    """The extension files' parent folder of that installation."""
    pg_config = bindir / "pg_config"
    if pg_config.is_file():
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [str(pg_config), "--sharedir"],
                capture_output=True,
                text=True,
                check=True,
                timeout=30,
            ).stdout.strip()
            if out:
                return Path(out)
    debian = Path(f"/usr/share/postgresql/{PG_MAJOR}")
    return debian if debian.is_dir() else None


def installable_versions() -> list[str]:
    """The PgSTAC versions the installed pypgstac can install (its migration files)."""
    from pypgstac.migrate import migrations_dir

    found = []
    for path in Path(migrations_dir).glob("pgstac.*.sql"):
        name = path.name.removeprefix("pgstac.").removesuffix(".sql")
        if "-" not in name and name.count(".") == 2:
            with contextlib.suppress(ValueError):
                found.append((tuple(int(n) for n in name.split(".")), name))
    return [name for _, name in sorted(found)]


def pgstac_versions(oldest: tuple[int, int] = (0, 9)) -> dict[str, str]:
    """The newest installable PgSTAC of each minor version from ``oldest`` on.

    ``{"0.9": "0.9.12", "0.10": "0.10.0"}`` with pypgstac 0.10, which carries the files of
    every older version; pypgstac 0.9 has no 0.10.
    """
    newest: dict[str, str] = {}
    for name in installable_versions():
        major, minor = (int(n) for n in name.split(".")[:2])
        if (major, minor) >= oldest:
            newest[f"{major}.{minor}"] = name
    return newest


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


class PgstacCluster:
    """A PostgreSQL + PostGIS + PgSTAC server in a temporary folder, for one test session.

    Args:
        dbname: the PgSTAC database that :attr:`dsn` names.
        bindir: the PostgreSQL programs (default: :func:`find_bindir`).
        start_timeout: seconds ``pg_ctl`` waits for the server to accept connections.
    """

    def __init__(
        self, dbname: str = "pgstac", bindir: Path | None = None, start_timeout: float = 60
    ) -> None:
        self.dbname = dbname
        self.bindir = bindir or find_bindir()
        self.start_timeout = start_timeout
        self.port: int | None = None
        self.base_dir: Path | None = None  # the temporary folder (data, socket, log)
        self._running = False
        self._atexit_registered = False

    # ----------------------------------------------------------------- availability

    @staticmethod
    def available(bindir: Path | None = None) -> Availability:
        """Whether initdb, PostGIS, the OS user and the Python packages are all there."""
        bindir = bindir or find_bindir()
        if bindir is None:
            return Availability(
                False,
                f"PostgreSQL {PG_MAJOR} is not installed (no {DEBIAN_BINDIR}/initdb, no "
                "pg_config): apt-get install postgresql-15-postgis-3",
            )
        for program in ("initdb", "pg_ctl", "postgres"):
            if not (bindir / program).is_file():
                return Availability(False, f"{bindir / program} is missing")
        sharedir = _sharedir(bindir)
        control = (sharedir or Path("?")) / "extension" / "postgis.control"
        if not control.is_file():
            return Availability(
                False, f"PostGIS is not installed ({control} is missing): postgresql-15-postgis-3"
            )
        if _is_root():
            if shutil.which("runuser") is None:
                return Availability(False, "running as root but runuser is not installed")
            try:
                pwd.getpwnam(OS_USER)
            except KeyError:
                return Availability(False, f"running as root but there is no {OS_USER} user")
        for module in ("psycopg", "pypgstac"):
            try:
                __import__(module)
            except ImportError:
                return Availability(False, f"the Python package {module} is not installed")
        return Availability(True)

    # ----------------------------------------------------------------- connection strings

    @property
    def host(self) -> str:
        """The address the server listens on."""
        return "127.0.0.1"

    @property
    def socket_dir(self) -> Path:
        """The folder of the server's unix socket."""
        return self._base / "socket"

    @property
    def data_dir(self) -> Path:
        """The cluster's data folder."""
        return self._base / "data"

    @property
    def log_file(self) -> Path:
        """The server's log."""
        return self._base / "server.log"

    @property
    def dsn(self) -> str:
        """The superuser's URL of the PgSTAC database (trust, no password)."""
        return self.dsn_for(self.dbname)

    @property
    def dsn_with_password(self) -> str:
        """The URL of the PgSTAC database as the role ``tiler``, whose password it carries."""
        return self.dsn_for(self.dbname, password=True)

    @property
    def password(self) -> str:
        """The password of the role ``tiler`` (to check it never leaks into output)."""
        return PASSWORD

    def dsn_for(self, dbname: str, password: bool = False) -> str:
        """The URL of another database of the cluster (as ``tiler`` with its password)."""
        if self.port is None:
            raise PgstacClusterError("the cluster has not been started")
        user = f"{PASSWORD_ROLE}:{PASSWORD}" if password else "postgres"
        return f"postgresql://{user}@{self.host}:{self.port}/{dbname}"

    @property
    def running(self) -> bool:
        """Whether the server was started and not stopped since."""
        return self._running

    # ----------------------------------------------------------------- life cycle

    def start(self) -> PgstacCluster:
        """Create the cluster on the first call, then start the server (same folder, port)."""
        if self._running:
            return self
        if self.base_dir is None:
            self._create()
        else:
            self._pg_ctl_start()
        return self

    def stop(self) -> None:
        """Stop the server (fast shutdown: open connections are cut); the data stays."""
        if not self._running or self.base_dir is None:
            return
        self._run(
            [self._bin("pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "-t", "60", "stop"],
            "pg_ctl stop",
        )
        self._running = False

    def restart(self) -> None:
        """Stop, then start again on the same data folder and port."""
        self.stop()
        self.start()

    def close(self) -> None:
        """Stop the server and delete the temporary folder (safe to call twice)."""
        try:
            if self._running:
                with contextlib.suppress(PgstacClusterError):
                    self.stop()
                if self._running:  # pg_ctl failed: do not leave a postmaster behind
                    self._kill_postmaster()
        finally:
            if self.base_dir is not None:
                shutil.rmtree(self.base_dir, ignore_errors=True)
                self.base_dir = None
                self._running = False

    def __enter__(self) -> PgstacCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------- databases

    def connect(self, dbname: str | None = None, **kwargs: Any) -> Any:
        """A psycopg connection as the superuser (autocommit unless told otherwise)."""
        import psycopg

        kwargs.setdefault("autocommit", True)
        return psycopg.connect(self.dsn_for(dbname or self.dbname), **kwargs)

    def create_database(self, dbname: str, version: str | None = None) -> str:
        """A new, empty PgSTAC database (a copy of a migrated template: milliseconds).

        Args:
            dbname: its name.
            version: its PgSTAC version, one of :func:`pgstac_versions` (default: the
                installed pypgstac's own). The first database of a version makes its
                template (PgSTAC installed by pypgstac's migrations: seconds).

        Returns its superuser URL; :meth:`dsn_for` gives the password one.
        """
        from psycopg import sql

        template = TEMPLATE_DB if version is None else self._version_template(version)
        with self.connect("postgres") as conn:
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(dbname), sql.Identifier(template)
                )
            )
        return self.dsn_for(dbname)

    def create_empty_database(self, dbname: str, postgis: bool = True) -> str:
        """A new database without PgSTAC (with PostGIS unless told otherwise); its URL."""
        from psycopg import sql

        with self.connect("postgres") as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
        if postgis:
            with self.connect(dbname) as conn:
                conn.execute("CREATE EXTENSION postgis")
        return self.dsn_for(dbname)

    def drop_database(self, dbname: str) -> None:
        """Drop a database, cutting its connections."""
        from psycopg import sql

        with self.connect("postgres") as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname))
            )

    # ----------------------------------------------------------------- internals

    @property
    def _base(self) -> Path:
        if self.base_dir is None:
            raise PgstacClusterError("the cluster has not been created (call start())")
        return self.base_dir

    def _bin(self, name: str) -> str:
        if self.bindir is None:
            raise PgstacClusterError(self.available().reason)
        return str(self.bindir / name)

    def _as_owner(self, cmd: list[str]) -> list[str]:
        return ["runuser", "-u", OS_USER, "--", *cmd] if _is_root() else cmd

    def _run(self, cmd: list[str], what: str) -> subprocess.CompletedProcess[str]:
        # The cwd is the cluster folder: the postgres user may not enter the caller's one.
        proc = subprocess.run(
            self._as_owner(cmd),
            cwd=self._base,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=self.start_timeout + 30,
        )
        if proc.returncode != 0:
            raise PgstacClusterError(
                f"{what} failed (exit {proc.returncode}):\n{proc.stdout}{proc.stderr}"
                f"{self._log_tail()}"
            )
        return proc

    def _log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_file.read_text(errors="replace")
        except (OSError, PgstacClusterError):
            return ""
        return "\n--- server log ---\n" + "\n".join(text.splitlines()[-lines:])

    def _make_base_dir(self) -> Path:
        base = Path(tempfile.mkdtemp(prefix="tiler-pg-"))
        if _is_root():
            owner = pwd.getpwnam(OS_USER)
            # The postgres user must reach the folder: when TMPDIR is one it cannot enter
            # (a home folder, say), use /tmp.
            probe = subprocess.run(
                ["runuser", "-u", OS_USER, "--", "test", "-x", str(base.parent)],
                capture_output=True,
            )
            if probe.returncode != 0:
                base.rmdir()
                base = Path(tempfile.mkdtemp(prefix="tiler-pg-", dir="/tmp"))
            os.chown(base, owner.pw_uid, owner.pw_gid)
        base.chmod(0o700)
        return base

    def _create(self) -> None:
        self.base_dir = self._make_base_dir()
        if not self._atexit_registered:
            atexit.register(self.close)  # never leave a server behind an aborted run
            self._atexit_registered = True
        try:
            self._initdb()
            for attempt in range(3):  # another process may take the free port first
                self.port = free_port()  # PostgreSQL must be told a number
                self._write_conf()
                try:
                    self._pg_ctl_start()
                    break
                except PgstacClusterError:
                    if attempt == 2 or "could not bind" not in self._log_tail(200):
                        raise
            self._install_pgstac()
        except BaseException:
            self.close()
            raise

    def _initdb(self) -> None:
        self.socket_dir.mkdir()
        if _is_root():
            owner = pwd.getpwnam(OS_USER)
            os.chown(self.socket_dir, owner.pw_uid, owner.pw_gid)
        self._run(
            [
                self._bin("initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            ],
            "initdb",
        )
        (self.data_dir / "pg_hba.conf").write_text(
            "# TYPE  DATABASE  USER  ADDRESS       METHOD\n"
            "local   all       all                 trust\n"
            f"host    all       {PASSWORD_ROLE}  127.0.0.1/32  scram-sha-256\n"
            "host    all       all   127.0.0.1/32  trust\n"
        )
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write("\ninclude_if_exists = 'tiler_tests.conf'\n")

    def _write_conf(self) -> None:
        path = self.data_dir / "tiler_tests.conf"
        path.write_text(
            "# written by tests/support/pgstac_cluster.py\n"
            "listen_addresses = '127.0.0.1'\n"
            f"port = {self.port}\n"
            f"unix_socket_directories = '{self.socket_dir}'\n"
            "fsync = off\n"
            "full_page_writes = off\n"
            "synchronous_commit = off\n"
            "password_encryption = 'scram-sha-256'\n"
            "max_connections = 200\n"
            "shared_buffers = '64MB'\n"
            "logging_collector = off\n"
            "log_min_messages = warning\n"
        )
        if _is_root():
            owner = pwd.getpwnam(OS_USER)
            for name in ("tiler_tests.conf", "pg_hba.conf", "postgresql.conf"):
                os.chown(self.data_dir / name, owner.pw_uid, owner.pw_gid)

    def _pg_ctl_start(self) -> None:
        self._run(
            [
                self._bin("pg_ctl"),
                "-D",
                str(self.data_dir),
                "-l",
                str(self.log_file),
                "-w",
                "-t",
                str(int(self.start_timeout)),
                "start",
            ],
            "pg_ctl start",
        )
        self._running = True

    def _kill_postmaster(self) -> None:
        pid_file = self.data_dir / "postmaster.pid"
        with contextlib.suppress(OSError, ValueError, IndexError):
            pid = int(pid_file.read_text().splitlines()[0])
            os.kill(pid, 9)
            time.sleep(0.2)
        self._running = False

    def _version_template(self, version: str) -> str:
        """The template database of a PgSTAC version, made on first use."""
        from psycopg import sql

        if version not in installable_versions():
            raise PgstacClusterError(
                f"the installed pypgstac cannot install PgSTAC {version} "
                f"(it has {', '.join(pgstac_versions().values())})"
            )
        name = f"{TEMPLATE_DB}_{version.replace('.', '_')}"
        with self.connect("postgres") as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
            ).fetchone()
        if exists is None:
            with self.connect("postgres") as conn:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            self._migrate(name, version)
        return name

    def _migrate(self, dbname: str, version: str | None = None) -> None:
        """PostGIS and PgSTAC (pypgstac's version, or that one) in an empty database."""
        from pypgstac.db import PgstacDB
        from pypgstac.migrate import Migrate

        with self.connect(dbname) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
            # pypgstac on a connection of ours: no pool, nothing registered at exit.
            Migrate(PgstacDB(connection=conn)).run_migration(toversion=version)

    def _install_pgstac(self) -> None:
        """PostGIS and PgSTAC in the template, the ``tiler`` role, then the database."""
        from psycopg import sql

        with self.connect("postgres") as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(TEMPLATE_DB)))
        self._migrate(TEMPLATE_DB)
        with self.connect(TEMPLATE_DB) as conn:  # the migration leaves its role SET
            conn.execute(
                sql.SQL(
                    "CREATE ROLE {role} LOGIN PASSWORD {pw} IN ROLE pgstac_ingest, pgstac_read"
                ).format(role=sql.Identifier(PASSWORD_ROLE), pw=sql.Literal(PASSWORD))
            )
            conn.execute(
                sql.SQL("ALTER ROLE {} SET search_path TO pgstac, public").format(
                    sql.Identifier(PASSWORD_ROLE)
                )
            )
        self.create_database(self.dbname)


if __name__ == "__main__":  # a manual check: PYTHONPATH=tests python -m support.pgstac_cluster
    state = PgstacCluster.available()
    if not state:
        sys.exit(f"unavailable: {state.reason}")
    t0 = time.perf_counter()
    with PgstacCluster() as cluster:
        print(f"started in {time.perf_counter() - t0:.2f} s: {cluster.dsn}")
        with cluster.connect() as c:
            print("pgstac", c.execute("SELECT pgstac.get_version()").fetchone())
