"""The test database itself (tests/support/pgstac_cluster.py): PostgreSQL 15 + PostGIS + PgSTAC,
reachable with and without a password, on 127.0.0.1 only, and surviving a stop/start."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import psycopg
import pypgstac
import pytest
from pypgstac.db import PgstacDB
from pypgstac.load import Loader, Methods

pytestmark = pytest.mark.e2e

COLLECTION: dict[str, Any] = {
    "type": "Collection",
    "stac_version": "1.0.0",
    "id": "cluster-check",
    "description": "A tiny collection to check the test database keeps its data.",
    "license": "CC0-1.0",
    "links": [],
    "extent": {
        "spatial": {"bbox": [[10.0, 45.0, 11.0, 46.0]]},
        "temporal": {"interval": [["2024-01-01T00:00:00Z", None]]},
    },
}


def one(dsn: str, query: str, params: Any = None) -> Any:
    with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
        row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0]


def test_answers(pgstac: Any) -> None:
    assert pgstac.running
    assert pgstac.dsn == f"postgresql://postgres@127.0.0.1:{pgstac.port}/pgstac"
    assert one(pgstac.dsn, "SELECT 1") == 1
    assert one(pgstac.dsn, "SHOW server_version_num").startswith("15")
    assert one(pgstac.dsn, "SHOW fsync") == "off"


def test_pgstac_version_is_pypgstacs(pgstac: Any) -> None:
    assert one(pgstac.dsn, "SELECT pgstac.get_version()") == pypgstac.__version__


def test_postgis(pgstac: Any) -> None:
    assert one(pgstac.dsn, "SELECT postgis_version()").startswith("3")
    assert one(pgstac.dsn, "SELECT ST_AsText(ST_MakePoint(1, 2))") == "POINT(1 2)"


def test_password_role_reads_and_loads(pgstac: Any) -> None:
    dsn = pgstac.dsn_with_password
    assert dsn == f"postgresql://tiler:s3cret-pw@127.0.0.1:{pgstac.port}/pgstac"
    assert pgstac.password in dsn
    assert one(dsn, "SELECT current_user") == "tiler"
    # The role sees every collection the owner sees (none hidden from it).
    count = "SELECT count(*) FROM pgstac.collections"
    before = one(pgstac.dsn, count)
    assert one(dsn, count) == before
    # Loading as that role works too (pypgstac's Loader, as a user would).
    collection = {**COLLECTION, "id": "cluster-check-tiler"}
    db = PgstacDB(dsn=dsn)
    try:
        Loader(db).load_collections(iter([collection]), insert_mode=Methods.upsert)
    finally:
        db.close()
    try:
        assert one(dsn, "SELECT id FROM pgstac.collections WHERE id = %s", [collection["id"]])
        assert one(dsn, count) == one(pgstac.dsn, count) == before + 1
    finally:
        one(pgstac.dsn, "SELECT pgstac.delete_collection(%s) IS NULL", [collection["id"]])


def test_password_is_checked(pgstac: Any) -> None:
    # The role must really give its password over TCP (so a server that dropped it fails).
    wrong = pgstac.dsn_with_password.replace(pgstac.password, "wrong")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(wrong, connect_timeout=5)
    no_password = pgstac.dsn_with_password.replace(f":{pgstac.password}", "")
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(no_password, connect_timeout=5, passfile="/dev/null")


def test_stop_start_keeps_data_and_port(pgstac: Any) -> None:
    port, dsn = pgstac.port, pgstac.dsn
    one(
        dsn,
        "SELECT pgstac.create_collection(%s::jsonb) IS NULL",
        [psycopg.types.json.Json(COLLECTION)],
    )
    try:
        pgstac.stop()
        assert not pgstac.running
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(dsn, connect_timeout=2)
        pgstac.start()
        assert pgstac.port == port
        assert pgstac.dsn == dsn
        content = one(
            dsn, "SELECT content FROM pgstac.collections WHERE id = %s", [COLLECTION["id"]]
        )
        assert content["description"] == COLLECTION["description"]
        pgstac.restart()
        assert (
            one(dsn, "SELECT count(*) FROM pgstac.collections WHERE id = %s", [COLLECTION["id"]])
            == 1
        )
    finally:
        pgstac.start()  # whatever happened, leave it running for the other tests
        one(dsn, "SELECT pgstac.delete_collection(%s) IS NULL", [COLLECTION["id"]])


def test_create_database_is_a_fresh_pgstac(pgstac: Any) -> None:
    dsn = pgstac.create_database("fresh_copy")
    try:
        assert dsn.endswith("/fresh_copy")
        assert one(dsn, "SELECT pgstac.get_version()") == pypgstac.__version__
        assert one(dsn, "SELECT count(*) FROM pgstac.collections") == 0
        assert one(pgstac.dsn_for("fresh_copy", password=True), "SELECT current_user") == "tiler"
    finally:
        pgstac.drop_database("fresh_copy")


def listening(port: int) -> list[str]:
    """The local addresses listening on that TCP port (from /proc/net/tcp and tcp6)."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        path = Path(table)
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            address, hex_port = fields[1].split(":")
            if fields[3] == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.append(address)
    return found


def test_listens_on_loopback_only(pgstac: Any) -> None:
    assert one(pgstac.dsn, "SHOW listen_addresses") == "127.0.0.1"
    if Path("/proc/net/tcp").exists():
        assert listening(pgstac.port) == ["0100007F"]  # 127.0.0.1, nothing else
    # Another loopback address (and so any other interface) is refused.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(2)
        assert s.connect_ex(("127.0.0.2", pgstac.port)) != 0
    # The unix socket lives inside the cluster's own folder.
    assert (pgstac.socket_dir / f".s.PGSQL.{pgstac.port}").exists()
    assert str(pgstac.socket_dir).startswith(str(pgstac.base_dir))
