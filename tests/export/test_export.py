"""tiler export on an in-process Dask cluster: equal to the oracle, seamless, resumable."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy
import pytest
import rasterio
from distributed import Client
from rasterio.crs import CRS
from rasterio.transform import from_origin
from rio_tiler.errors import TileOutsideBounds
from rio_tiler.io import Reader
from support.baked import bake
from support.stac_files import ORIGIN, stac_item, write_cog, write_collection

from tiler.catalog.filters import make_search
from tiler.catalog.loaders import load_collection
from tiler.export.chunks import ChunkRunner, ExportError, ExportSpec
from tiler.export.plan import ExportPlan, Region, plan_export
from tiler.export.run import WORKER_MALLOC, ExportInterrupted, Progress, export, local_cluster

#: emulated services or a Dask cluster per test: end to end (pytest -m e2e)
pytestmark = pytest.mark.e2e

UTM = CRS.from_epsg(32633)
#: around the synthetic collection, with a masked border
BBOX = (499900.0, 4999800.0, 500900.0, 5000700.0)
BANDS = ("a", "b", "q", "quality", "_index", "_date")


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    with Client(processes=False, n_workers=2, threads_per_worker=1, dashboard_address=None) as c:
        yield c


def _spec(
    path: Path, quality: str = "q", sortby: str | None = None, bands: tuple[str, ...] = BANDS
) -> ExportSpec:
    return ExportSpec((str(path),), "test", quality, bands, sortby=sortby)


def _read(path: Path, bands: tuple[str, ...] = BANDS) -> tuple[numpy.ndarray, numpy.ndarray]:
    with rasterio.open(path) as src:
        data = src.read()
        assert src.descriptions == (*bands, "valid")
    return data[:-1], data[-1]


def _oracle(
    plan: ExportPlan, path: Path, oracle, fn, quality_bands: tuple[str, ...] = ("q",)
) -> tuple[numpy.ndarray, numpy.ndarray]:
    """Every item read on the whole grid with Reader.part (an item in another CRS warped
    straight onto the grid's pixels, GDAL's transformer exact), stacked, argmax."""
    grid = plan.grid
    items = load_collection(path).search(make_search(sortby=plan.spec.sortby), grid.footprint())
    assert [it.id for it in items] == list(plan.positions)
    exact = {"transform": grid.transform, "width": grid.width, "height": grid.height}
    exact["tolerance"] = 1e-12
    reads = []
    for it in items:
        r: dict | None = {}
        for name, band in it.bands.items():
            with Reader(band.href) as src:
                kw = {"vrt_options": exact} if src.dataset.crs != grid.crs else {}
                try:
                    part = src.part(
                        grid.bounds,
                        dst_crs=grid.crs,
                        bounds_crs=grid.crs,
                        width=grid.width,
                        height=grid.height,
                        **kw,
                    )
                except TileOutsideBounds:
                    r = None
                    break
            r[name] = numpy.ma.MaskedArray(part.array.data[0], mask=part.array.mask[0])
        reads.append(r)
    days = [it.days for it in items]
    return oracle(reads, fn, list(quality_bands), list(plan.spec.bands), days)


def _check(
    out: Path, expected: tuple[numpy.ndarray, numpy.ndarray], bands: tuple[str, ...] = BANDS
) -> None:
    data, valid = expected
    got, flag = _read(out, bands)
    assert set(numpy.unique(flag)) <= {0, 255}
    numpy.testing.assert_array_equal(flag == 255, valid)
    assert valid.any() and (~valid).any()  # masked pixels are part of the check
    numpy.testing.assert_array_equal(got.astype("float64")[:, valid], data[:, valid])
    assert not got[:, ~valid].any()  # masked: 0


@pytest.mark.parametrize(
    ("crs", "resolution", "sortby"),
    [
        pytest.param(None, None, None, id="native-grid"),
        pytest.param(None, None, "-eo:cloud_cover", id="sortby-ties"),
        pytest.param(UTM, 3.0, None, id="upsampled-unaligned"),
        pytest.param(CRS.from_epsg(3857), 7.0, None, id="reprojected"),
        pytest.param(CRS.from_epsg(4326), 0.00007, None, id="reprojected-lonlat"),
    ],
)
def test_multi_chunk_export_equals_oracle(
    synthetic, oracle, client, tmp_path, crs, resolution, sortby
):
    path = synthetic["path"]
    plan = plan_export(
        _spec(path, sortby=sortby), Region(BBOX, UTM, crs, resolution), chunk=64, block=32
    )
    assert len(plan.windows()) >= 4
    out = tmp_path / "out.tif"
    summary = export(plan, out, client)
    assert summary.computed == summary.chunks == len(plan.tasks())
    assert summary.item_reads > 0 and not summary.skipped
    _check(out, _oracle(plan, path, oracle, lambda v: v["q"]))


#: a 20 m quality band beside 10 m output bands
MIXED_BANDS = ("a", "b", "q20", "quality", "_index")


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Five items of 10 m bands ``a`` and ``b`` and a 20 m quality band ``q20`` (uint8,
    values 0..3: many ties; nodata 255), shifted by odd multiples of 10 m: the 20 m pixels
    of one item straddle those of another and the chunk edges."""
    root = tmp_path_factory.mktemp("mixed")
    rng = numpy.random.default_rng(2020)
    items = []
    for k, (dx, dy) in enumerate([(0, 0), (3, 1), (7, 5), (1, 9), (5, 3)]):
        x0, y0 = ORIGIN[0] + dx * 10.0, ORIGIN[1] - dy * 10.0
        q20 = rng.integers(0, 4, (32, 32)).astype("uint8")
        q20[rng.random(q20.shape) < 0.08] = 255
        a = ((k + 1) * 100 + rng.integers(0, 50, (64, 64))).astype("uint16")
        a[rng.random(a.shape) < 0.03] = 0  # an output band's holes mask a winner's pixel
        b = rng.integers(1, 3000, (64, 64)).astype("uint16")
        files = {}
        for name, arr, res, nodata in (
            ("q20", q20, 20.0, 255),
            ("a", a, 10.0, 0),
            ("b", b, 10.0, 0),
        ):
            p = root / f"m{k}" / f"{name}.tif"
            write_cog(
                p, arr, transform=from_origin(x0, y0, res, res), crs=UTM.to_string(), nodata=nodata
            )
            files[name] = (p, nodata)
        when = f"2021-06-{1 + 2 * (k // 2):02d}T10:00:00Z"  # pairs of equal datetimes
        items.append(stac_item(f"m-{k}", when, files, root))
    return write_collection(root / "mixed.json", items)


def test_20m_quality_with_10m_outputs_equals_oracle(mixed, oracle, client, tmp_path):
    plan = plan_export(
        _spec(mixed, quality="q20", bands=MIXED_BANDS), Region(BBOX, UTM), chunk=64, block=32
    )
    t = plan.grid.transform
    assert (t.a, t.e) == (10.0, -10.0)  # the finest output band's pixels
    assert len(plan.windows()) >= 4
    out = tmp_path / "out.tif"
    summary = export(plan, out, client)
    assert summary.computed == summary.chunks and not summary.skipped
    expected = _oracle(plan, mixed, oracle, lambda v: v["q20"], ("q20",))
    _check(out, expected, MIXED_BANDS)
    one = plan_export(
        _spec(mixed, quality="q20", bands=MIXED_BANDS), Region(BBOX, UTM), chunk=512, block=32
    )
    export(one, tmp_path / "one.tif", client)
    assert out.read_bytes() == (tmp_path / "one.tif").read_bytes()


def test_default_grid_is_the_items_crs_and_pixels(synthetic):
    plan = plan_export(_spec(synthetic["path"]), Region(BBOX, UTM), chunk=64, block=32)
    t = plan.grid.transform
    assert plan.grid.crs == UTM and (t.a, t.e) == (10.0, -10.0)
    assert (t.c - 500000.0) % 10 == 0 and (t.f - 5000640.0) % 10 == 0  # the files' pixels
    assert plan.dtype == "float64"  # quality and _date are float64


@pytest.mark.parametrize(
    ("crs", "resolution"), [(None, None), (CRS.from_epsg(3857), 7.0)], ids=["native", "3857"]
)
def test_one_chunk_or_many_gives_identical_bytes(synthetic, client, tmp_path, crs, resolution):
    region = Region(BBOX, UTM, crs, resolution)
    spec = _spec(synthetic["path"])
    many = plan_export(spec, region, chunk=32, block=32)
    one = plan_export(spec, region, chunk=512, block=32)
    assert len(many.windows()) > 9 and len(one.windows()) == 1
    export(many, tmp_path / "many.tif", client)
    export(one, tmp_path / "one.tif", client)
    assert (tmp_path / "many.tif").read_bytes() == (tmp_path / "one.tif").read_bytes()


@pytest.mark.parametrize("stop_at", [3, 14], ids=["output-chunks", "level-chunks"])
def test_resume_recomputes_nothing_written(synthetic, client, tmp_path, monkeypatch, stop_at):
    plan = plan_export(_spec(synthetic["path"]), Region(BBOX, UTM), chunk=32, block=32)
    levels = plan.levels()
    assert len(levels) == 3 and len(plan.windows()) == 12 and len(plan.tasks()) == 17
    size = {g.transform.a: k for k, g in enumerate(levels)}
    computed: list[tuple[int, str]] = []
    run = ChunkRunner.run

    def counting(self, grid, window, dtype, positions):
        computed.append((size[grid.transform.a], window.key))
        return run(self, grid, window, dtype, positions)

    monkeypatch.setattr(ChunkRunner, "run", counting)

    def stop(progress: Progress) -> None:
        assert progress.total == len(plan.tasks())  # every level's chunks
        if progress.done == stop_at:
            raise KeyboardInterrupt

    out = tmp_path / "out.tif"
    with pytest.raises(ExportInterrupted) as stopped:
        export(plan, out, client, on_progress=stop, in_flight=1)
    assert stopped.value.done == stop_at and not out.exists()
    parts = tmp_path / "out.tif.parts"
    lines = (parts / "done.jsonl").read_text().splitlines()
    written = [json.loads(line) for line in lines]
    assert len(written) == stop_at
    done = {(r["level"], f"r{r['window']['row']}_c{r['window']['col']}") for r in written}
    assert {level for level, _ in done} == ({0} if stop_at < 12 else {0, 1})
    computed.clear()
    summary = export(plan, out, client, resume=True)
    # nothing written is computed again (a task cancelled by the interruption may still
    # finish on its worker thread: it was not written, so it is computed again)
    assert set(computed) == {(k, w.key) for k, w in plan.tasks()} - done
    assert summary.computed == len(plan.tasks()) - stop_at
    assert summary.resumed == stop_at and not parts.exists()
    assert summary.levels == 2 and summary.level_chunks == 5
    export(plan, tmp_path / "whole.tif", client)
    assert out.read_bytes() == (tmp_path / "whole.tif").read_bytes()


@pytest.mark.parametrize("overviews", ["mosaic", "nearest"])
def test_export_on_dask_equals_the_export_in_process(synthetic, client, tmp_path, overviews):
    """The COG with its overviews (mosaic levels as Dask tasks, or GDAL's nearest) is the
    one support.baked writes chunk after chunk in this process."""
    spec, region = _spec(synthetic["path"]), Region(BBOX, UTM)
    plan = plan_export(spec, region, chunk=32, block=32, overviews=overviews)
    summary = export(plan, tmp_path / "dask.tif", client)
    assert summary.levels == (2 if overviews == "mosaic" else 0)
    assert summary.chunks == len(plan.tasks())
    assert ("2 overview levels" in summary.lines()[0]) == (overviews == "mosaic")
    bake(spec, region, tmp_path / "local.tif", chunk=32, block=32, overviews=overviews)
    assert (tmp_path / "dask.tif").read_bytes() == (tmp_path / "local.tif").read_bytes()
    with rasterio.open(tmp_path / "dask.tif") as src:
        assert src.overviews(1) == [2, 4]


def test_resume_refuses_parts_of_other_parameters(synthetic, client, tmp_path):
    spec = _spec(synthetic["path"])
    plan = plan_export(spec, Region(BBOX, UTM), chunk=32, block=32)
    with pytest.raises(ExportInterrupted):
        export(plan, tmp_path / "out.tif", client, on_progress=_interrupt, in_flight=1)
    other = plan_export(dataclasses.replace(spec, quality="-q"), Region(BBOX, UTM), 32, 32)
    with pytest.raises(ExportError, match="other parameters"):
        export(other, tmp_path / "out.tif", client, resume=True)
    summary = export(other, tmp_path / "out.tif", client)  # without --resume: afresh
    assert summary.resumed == 0 and summary.computed == summary.chunks


def _interrupt(progress: Progress) -> None:
    raise KeyboardInterrupt


def test_unreadable_item_is_skipped_and_reported(synthetic, client, tmp_path):
    doc = json.loads(Path(synthetic["path"]).read_text())
    victim = doc["features"][0]
    victim["assets"]["q"]["href"] = str(tmp_path / "gone.tif")
    for item in doc["features"][1:]:
        for asset in item["assets"].values():
            asset["href"] = str(synthetic["root"] / asset["href"])
    victim["assets"]["a"]["href"] = str(synthetic["root"] / victim["assets"]["a"]["href"])
    victim["assets"]["b"]["href"] = str(synthetic["root"] / victim["assets"]["b"]["href"])
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(doc))
    plan = plan_export(_spec(path), Region(BBOX, UTM), chunk=64, block=32)
    summary = export(plan, tmp_path / "out.tif", client)
    assert summary.skipped == {victim["id"]: "RasterioIOError: file not found"}
    assert any(victim["id"] in line for line in summary.lines())
    with rasterio.open(tmp_path / "out.tif") as src:
        assert (src.read(len(BANDS) + 1) == 255).any()


def test_bad_parameters_are_refused_before_any_work(synthetic):
    spec = _spec(synthetic["path"])
    with pytest.raises(ExportError, match="multiple"):
        plan_export(spec, Region(BBOX, UTM), chunk=100, block=32)
    with pytest.raises(ExportError, match="no source has the collection"):
        plan_export(dataclasses.replace(spec, collection="nope"), Region(BBOX, UTM))
    with pytest.raises(ExportError, match="unknown band"):
        plan_export(dataclasses.replace(spec, bands=("zz",)), Region(BBOX, UTM))
    with pytest.raises(ExportError, match="no item"):
        plan_export(spec, Region((0.0, 0.0, 1.0, 1.0)))


def test_parts_written_by_the_workers_are_the_bytes_the_client_writes(
    synthetic, oracle, client, tmp_path
):
    path = synthetic["path"]
    region = Region(BBOX, UTM, CRS.from_epsg(3857), 7.0)
    plan = plan_export(_spec(path), region, chunk=32, block=32)
    assert len(plan.windows()) > 9
    export(plan, tmp_path / "client.tif", client)
    summary = export(plan, tmp_path / "workers.tif", client, parts_on_workers=True)
    assert summary.computed == summary.chunks == len(plan.tasks())
    assert (tmp_path / "workers.tif").read_bytes() == (tmp_path / "client.tif").read_bytes()
    _check(tmp_path / "workers.tif", _oracle(plan, path, oracle, lambda v: v["q"]))


@pytest.mark.e2e
def test_local_cluster_workers_keep_their_arrays_in_the_heap():
    with local_cluster(1, dashboard_address=None) as cluster, Client(cluster) as c:
        environs = c.run(lambda: {k: os.environ.get(k) for k in WORKER_MALLOC})
    assert list(environs.values()) == [WORKER_MALLOC]
