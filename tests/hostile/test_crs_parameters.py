"""CRS parameters never reach the network or the disk: only codes, OGC URNs/URIs (read as
codes), inline WKT/PROJ and tile matrix set ids are accepted.

A local HTTP server records every request it gets: none may arrive. A local file holding a
valid WKT is refused (never used), and a FIFO named as a CRS is never opened (opening a FIFO
for reading blocks until a writer comes, so a read attempt would hang: that case runs in a
child process with a timeout).
"""

from __future__ import annotations

import http.server
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyproj
import pytest
from support.hostile import BBOX, BBOX_3857, FROZEN, LAT, LON, refused, run_in_child
from support.net import http_server, serve_in_thread

WGS84_WKT = pyproj.CRS("EPSG:4326").to_wkt("WKT1_GDAL")
UTM_WKT2 = pyproj.CRS("EPSG:32613").to_wkt()
EXPORT = f"/collections/demo/bbox/{BBOX}/16x16.png"
POINT = f"/collections/demo/point/{LON},{LAT}"
NEVER = "never a file name or URL"


class _Recorder(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def _answer(self) -> None:
        type(self).hits.append(f"{self.command} {self.path}")
        self.send_response(200)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(WGS84_WKT.encode())

    do_GET = do_HEAD = do_POST = _answer

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def recorder() -> Iterator[tuple[str, list[str]]]:
    """A local HTTP server answering a valid WKT to anything, recording every hit."""
    server = serve_in_thread(http_server(_Recorder))
    _Recorder.hits = []
    yield f"http://127.0.0.1:{server.server_port}", _Recorder.hits
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A file holding a valid WKT, and a FIFO."""
    root = tmp_path_factory.mktemp("crs-files")
    wkt = root / "crs.wkt"
    wkt.write_text(WGS84_WKT)
    fifo = root / "crs.fifo"
    os.mkfifo(fifo)
    return {"wkt": wkt, "fifo": fifo}


# id: (parameter, value with {url} for the recorder, {file} for the WKT file)
REFUSED: dict[str, tuple[str, str]] = {
    "dst_crs_http_url": ("dst_crs", "{url}/crs"),
    "dst_crs_vsicurl": ("dst_crs", "/vsicurl/{url}/crs"),
    "coord_crs_http_url": ("coord_crs", "{url}/crs.wkt"),
    "dst_crs_https_url": ("dst_crs", "https://127.0.0.1:1/crs"),
    "dst_crs_ogc_like_uri_on_another_host": ("dst_crs", "{url}/def/crs/EPSG/0/4326"),
    "coord_crs_file_url": ("coord_crs", "file://{file}"),
    "coord_crs_local_file": ("coord_crs", "{file}"),
    "coord_crs_relative_file": ("coord_crs", "./crs.wkt"),
    "dst_crs_proj_init_file": ("dst_crs", "+init={file}:1"),
    "dst_crs_proj_init_url": ("dst_crs", "+proj=longlat +init={url}/epsg"),
    "dst_crs_proj_grid_url": ("dst_crs", "+proj=longlat +datum=WGS84 +nadgrids={url}/g.tif"),
    "dst_crs_proj_grid_file": ("dst_crs", "+proj=longlat +ellps=GRS80 +nadgrids={file}"),
    "dst_crs_wkt1_extension_with_init": (
        "dst_crs",
        WGS84_WKT[:-1] + ',EXTENSION["PROJ4","+proj=longlat +init={file}"]]',
    ),
    "dst_crs_wkt2_parameter_file": (
        "dst_crs",
        'BOUNDCRS[SOURCECRS[GEOGCRS["a",DATUM["b",ELLIPSOID["c",6378137,298]],CS[ellipsoidal,2],'
        'AXIS["lat",north],AXIS["lon",east],ANGLEUNIT["degree",0.0174532925199433]]],'
        'PARAMETERFILE["grid","{url}/grid.gsb"]]',
    ),
    "dst_crs_projjson": ("dst_crs", '{"type": "GeographicCRS", "name": "x"}'),
    "dst_crs_unknown_authority": ("dst_crs", "FOO:4326"),
}


def _fill(value: str, url: str, files: dict[str, Path]) -> str:
    return value.replace("{url}", url).replace("{file}", str(files["wkt"]))


@pytest.mark.parametrize("case", list(REFUSED))
def test_a_crs_naming_a_url_or_a_file_is_refused_without_touching_it(
    client: Any, recorder: tuple[str, list[str]], files: dict[str, Path], case: str
) -> None:
    url, hits = recorder
    name, value = REFUSED[case]
    route = POINT if name == "coord_crs" else EXPORT
    before = len(hits)
    r = client.get(route, params={name: _fill(value, url, files)})
    refused(r, 400, f"{name}=", "allowed: an authority code", NEVER)
    assert hits[before:] == []
    assert client.get("/healthz").status_code == 200


@pytest.mark.e2e  # a child process
def test_a_fifo_named_as_a_crs_is_never_opened(demo_path: Path, files: dict[str, Path]) -> None:
    # opening a FIFO for reading blocks until a writer comes: a read attempt would hang the
    # request, so this runs in a child process with a timeout ("hung" if it tried)
    cases = [("fifo", POINT, {"coord_crs": str(files["fifo"])})]
    got = run_in_child(demo_path, cases, timeout=60)["fifo"]
    assert got["status"] == 400, got
    assert got["engine_calls"] == 0  # refused before any work
    assert got["seconds"] < FROZEN  # not blocked on the FIFO (that would be a freeze)
    assert NEVER in json.loads(got["body"])["detail"]
    assert got["health"] == 200


# id: (parameter, value, route): each is read without a fetch and answers 200
ACCEPTED: dict[str, tuple[str, str]] = {
    "epsg_code": ("dst_crs", "EPSG:32613"),
    "lower_case_code": ("dst_crs", "epsg:3857"),
    "ogc_crs84": ("dst_crs", "OGC:CRS84"),
    "ogc_urn": ("dst_crs", "urn:ogc:def:crs:EPSG::32613"),
    "ogc_urn_with_version": ("dst_crs", "urn:ogc:def:crs:OGC:1.3:CRS84"),
    "ogc_uri": ("dst_crs", "http://www.opengis.net/def/crs/EPSG/0/3857"),
    "inline_wkt1": ("dst_crs", WGS84_WKT),
    "inline_wkt2": ("dst_crs", UTM_WKT2),
    "proj_string": ("dst_crs", "+proj=utm +zone=13 +datum=WGS84 +units=m +no_defs"),
    "tms_id": ("dst_crs", "WebMercatorQuad"),
    "coord_crs_code": ("coord_crs", "EPSG:3857"),
}


@pytest.mark.parametrize("case", list(ACCEPTED))
def test_codes_uris_and_inline_definitions_are_read_without_any_fetch(
    client: Any, recorder: tuple[str, list[str]], case: str
) -> None:
    _, hits = recorder
    name, value = ACCEPTED[case]
    before = len(hits)
    if name == "coord_crs":
        r = client.get(f"/collections/demo/bbox/{BBOX_3857}/16x16.png", params={name: value})
    else:
        r = client.get(EXPORT, params={name: value})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png"
    assert hits[before:] == []


@pytest.mark.parametrize(
    ("value", "says"),
    [
        pytest.param("EPSG:999999", "is not a CRS of PROJ's database", id="unknown_code"),
        pytest.param("EPSG:7030", "is not a CRS of PROJ's database", id="ellipsoid_code"),
        pytest.param("EPSG:5773", "not a horizontal", id="vertical_crs"),
        pytest.param("EPSG:4978", "not a horizontal", id="geocentric_crs"),
        pytest.param("GEOGCS[" * 40, "nested more than 16 deep", id="deep_wkt"),
        pytest.param('GEOGCS["x"', "not valid WKT", id="broken_wkt"),
        pytest.param("+proj=nonsense", "not a valid PROJ string", id="unknown_projection"),
        pytest.param("EPSG:4326\x00", "control characters", id="nul_byte"),
        pytest.param("x" * 9000, "at most 8192 characters", id="too_long"),
    ],
)
def test_malformed_crs_values_are_400s_saying_what_is_allowed(
    client: Any, value: str, says: str
) -> None:
    r = client.get(EXPORT, params={"dst_crs": value})
    refused(r, 400, says)
    assert "allowed" in r.json()["detail"] or "at most" in r.json()["detail"]
    assert client.get("/healthz").status_code == 200
