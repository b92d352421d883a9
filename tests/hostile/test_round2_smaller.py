"""Issue 22, "Smaller": TileJSON zooms, JPEG's media type, integers in ASCII digits only,
warnings logged without request values, and OpenAPI patterns that never refuse a value
their parser accepts."""

from __future__ import annotations

import datetime as dt
import logging
import re
import warnings
from typing import Annotated, Any

import pytest
from fastapi import FastAPI, Path, Query
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from support.hostile import BBOX, count_work, refused

from tiler import errors
from tiler.api import deps
from tiler.catalog.filters import parse_bbox, parse_datetime, parse_sortby
from tiler.errors import InvalidFilter
from tiler.process import WarningLog
from tiler.render import Visualisation, parse_palette

TILEJSON = "/collections/demo/WebMercatorQuad/tilejson.json"
TILE = "/collections/demo/tiles/WebMercatorQuad/14/3494/6195"
EXPORT = f"/collections/demo/bbox/{BBOX}/32x32"
ITEMS = "/collections/demo/items"
PNG = f"{TILE}.png"


# ---------------------------------------------------------------------------------------
# TileJSON zooms


@pytest.mark.parametrize(
    ("params", "fragments"),
    [
        pytest.param({"minzoom": "50", "maxzoom": "-3"}, ("minzoom", "maxzoom"), id="both_out"),
        pytest.param({"minzoom": "25"}, ("minzoom=25", "0..24"), id="above_the_tms_range"),
        pytest.param({"maxzoom": "-1"}, ("maxzoom",), id="negative"),
        pytest.param({"minzoom": "9", "maxzoom": "3"}, ("minzoom <= maxzoom",), id="min_above_max"),
        pytest.param({"minzoom": "１４"}, ("ASCII digits",), id="full_width_digits"),
        pytest.param({"minzoom": "14\n"}, ("ASCII digits",), id="trailing_newline"),
        pytest.param({"maxzoom": "1_4"}, ("ASCII digits",), id="underscore"),
        pytest.param({"tile_scale": "+2"}, ("ASCII digits",), id="plus_sign"),
    ],
)
def test_tilejson_zooms_outside_the_tms_or_crossed_are_refused(
    client: TestClient, params: dict[str, str], fragments: tuple[str, ...]
) -> None:
    refused(client.get(TILEJSON, params=params), 400, *fragments)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        pytest.param({"minzoom": "3", "maxzoom": "9"}, (3, 9), id="both_given"),
        pytest.param({"minzoom": "20"}, (20, 20), id="min_above_the_default_max"),
        pytest.param({"maxzoom": "2"}, (2, 2), id="max_below_the_default_min"),
    ],
)
def test_tilejson_zooms_within_the_tms_are_kept_in_order(
    client: TestClient, params: dict[str, str], expected: tuple[int, int]
) -> None:
    r = client.get(TILEJSON, params=params)
    assert r.status_code == 200, r.text
    assert (r.json()["minzoom"], r.json()["maxzoom"]) == expected


def test_the_zoom_limits_are_in_the_openapi_document(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    params = doc["paths"]["/collections/{collection_id}/{tileMatrixSetId}/tilejson.json"]["get"]
    schemas = {p["name"]: p["schema"] for p in params["parameters"]}
    for name in ("minzoom", "maxzoom"):
        integer = next(s for s in schemas[name]["anyOf"] if s.get("type") == "integer")
        assert integer["minimum"] == 0 and integer["maximum"] >= 24, schemas[name]


# ---------------------------------------------------------------------------------------
# JPEG is image/jpeg


@pytest.mark.parametrize(
    "url",
    [
        pytest.param(f"{TILE}.jpg", id="tile_jpg"),
        pytest.param(f"{TILE}.jpeg", id="tile_jpeg"),
        pytest.param(f"{EXPORT}.jpg", id="export_jpg"),
        pytest.param(f"{EXPORT}.jpeg", id="export_jpeg"),
    ],
)
def test_jpeg_is_sent_as_image_jpeg(client: TestClient, url: str) -> None:
    r = client.get(url)
    assert r.status_code == 200, r.text[:300]
    assert r.headers["content-type"] == "image/jpeg"
    assert r.content[:3] == b"\xff\xd8\xff"


def test_wmts_names_jpeg_by_its_registered_type(client: TestClient) -> None:
    r = client.get(
        "/collections/demo/WebMercatorQuad/WMTSCapabilities.xml", params={"tile_format": "jpg"}
    )
    assert r.status_code == 200
    assert "<Format>image/jpeg</Format>" in r.text and "image/jpg<" not in r.text


def test_no_operation_documents_image_jpg(client: TestClient) -> None:
    assert "image/jpg" not in client.get("/openapi.json").text


# ---------------------------------------------------------------------------------------
# integers in ASCII digits


@pytest.fixture(scope="module")
def ascii_app() -> TestClient:
    app = FastAPI()

    @app.get("/z/{z}")
    def zoom(
        z: Annotated[int, Path(), deps.ASCII_DIGITS],
        n: Annotated[int | None, Query(), deps.ASCII_DIGITS] = None,
    ) -> int:
        return z if n is None else z + n

    errors.install(app)  # the app's validation handler: a 400 JSON
    return count_work(TestClient(app))  # no engine: no work


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/z/14%0A", id="trailing_newline"),
        pytest.param("/z/%EF%BC%91%EF%BC%94", id="full_width_digits"),
        pytest.param("/z/%2014", id="leading_space"),
        pytest.param("/z/1_4", id="underscore"),
        pytest.param("/z/%2B14", id="plus_sign"),
        pytest.param("/z/14.0", id="decimal_point"),
        pytest.param("/z/12345678901", id="eleven_digits"),
        pytest.param("/z/14?n=1%0A", id="query_trailing_newline"),
    ],
)
def test_an_integer_not_in_ascii_digits_is_a_400(ascii_app: TestClient, path: str) -> None:
    refused(ascii_app.get(path), 400, "ASCII digits")


@pytest.mark.parametrize(
    ("path", "value"),
    [
        pytest.param("/z/14", 14, id="digits"),
        pytest.param("/z/-3", -3, id="minus_sign"),
        pytest.param("/z/007?n=1", 8, id="leading_zeros"),
    ],
)
def test_an_integer_in_ascii_digits_is_read(ascii_app: TestClient, path: str, value: int) -> None:
    r = ascii_app.get(path)
    assert r.status_code == 200 and r.json() == value


# ---------------------------------------------------------------------------------------
# warnings: logged once per text and place, without the numbers a request sent


def _warn(text: str) -> None:
    warnings.warn(text, UserWarning, stacklevel=1)  # one place for every text


@pytest.fixture
def warning_log(caplog: pytest.LogCaptureFixture) -> Any:
    caplog.set_level(logging.WARNING, logger="py.warnings")
    log = WarningLog(per_place=3)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = log
        yield log


def _logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "py.warnings"]


def test_numbers_from_requests_are_not_logged(
    warning_log: WarningLog, caplog: pytest.LogCaptureFixture
) -> None:
    for k in range(2000):  # as geojson_pydantic warns, one request at a time
        _warn(f"BBOX crossing the Antimeridian line, Min X ({170 + k / 7}) > Max X (-1.5e3).")
    lines = _logged(caplog)
    assert len(lines) == 1, lines[:5]
    assert lines[0].endswith(
        "UserWarning: BBOX crossing the Antimeridian line, Min X (#) > Max X (#)."
    )
    assert "170" not in lines[0] and "1.5" not in lines[0]


def test_a_place_logs_a_bounded_number_of_texts(
    warning_log: WarningLog, caplog: pytest.LogCaptureFixture
) -> None:
    for word in ["alpha", "beta", "gamma", "delta", "epsilon", "zeta"] * 3:
        _warn(f"unknown property {word}")
    lines = _logged(caplog)
    assert len(lines) == 4, lines  # three texts, then one fixed line, then nothing
    assert lines[-1].endswith("further warnings from here are not logged")
    assert len(warning_log.seen) == 1


def test_a_warning_cannot_write_a_line_of_its_own(
    warning_log: WarningLog, caplog: pytest.LogCaptureFixture
) -> None:
    _warn("name\n2026-01-01 INFO root: forged\x1b[31m" + "x" * 5000)
    (line,) = _logged(caplog)
    assert "\n" not in line and "\x1b" not in line
    assert len(line) < 1000


def test_a_request_whose_body_warns_logs_no_numbers(
    client: TestClient, warning_log: WarningLog, caplog: pytest.LogCaptureFixture
) -> None:
    ring = [[170.123, 0.5], [-170.456, 0.5], [-170.456, 1.5], [170.123, 1.5], [170.123, 0.5]]
    feature = {
        "type": "Feature",
        "bbox": [170.123, 0.5, -170.456, 1.5],  # crosses the antimeridian: a library warning
        "geometry": {"type": "Polygon", "coordinates": [ring]},
        "properties": {},
    }
    for _ in range(3):
        client.post("/collections/demo/feature?format=png&width=8&height=8", json=feature)
    text = "\n".join(_logged(caplog))
    assert "170.123" not in text and "170.456" not in text


# ---------------------------------------------------------------------------------------
# the OpenAPI document's patterns: each value they allow, the parser accepts

_SEARCH = "/collections/{collection_id}/items"


def _pattern(client: TestClient, path: str, name: str) -> str:
    doc = client.get("/openapi.json").json()
    params = doc["paths"][path]["get"]["parameters"]
    schema = next(p["schema"] for p in params if p["name"] == name)
    pattern: str = schema["pattern"]
    return pattern


@pytest.mark.parametrize("name", ["datetime", "bbox", "sortby", "min", "max", "gamma", "palette"])
def test_text_parameters_have_a_pattern_and_a_description(client: TestClient, name: str) -> None:
    doc = client.get("/openapi.json").json()
    tile = doc["paths"]["/collections/{collection_id}/tiles/{tileMatrixSetId}/{z}/{x}/{y}"]
    param = next(p for p in tile["get"]["parameters"] if p["name"] == name)
    assert param["schema"]["pattern"].startswith("^") and param["schema"]["pattern"].endswith("$")
    assert len(param["description"]) > 20


def _calendar_dates(text: str) -> list[dt.date] | None:
    try:
        return [dt.date.fromisoformat(d) for d in re.findall(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text)]
    except ValueError:  # 2021-02-30: a day its month lacks, which a pattern cannot say
        return None


# Hypothesis's default count: drawing values from these regular expressions costs far more
# than the parsers under test, and derandomize keeps the same examples in every run
_EXAMPLES = settings(
    max_examples=100, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck)
)


@_EXAMPLES
@given(st.from_regex(deps.DATETIME_SCHEMA["pattern"], fullmatch=True))
def test_every_datetime_the_pattern_allows_is_accepted(value: str) -> None:
    assume(_calendar_dates(value) is not None)
    try:
        parse_datetime(value)
    except InvalidFilter as exc:
        assert "start is after end" in str(exc), value  # an order OpenAPI cannot say


@_EXAMPLES
@given(st.from_regex(deps.BBOX_SCHEMA["pattern"], fullmatch=True))
def test_every_bbox_the_pattern_allows_is_accepted(value: str) -> None:
    minx, miny, maxx, maxy = (float(v) for v in value.split(","))
    assume(miny <= maxy and minx <= maxx)  # an order OpenAPI cannot say
    assert parse_bbox(value) == (minx, miny, maxx, maxy)


@_EXAMPLES
@given(st.from_regex(deps.SORTBY_SCHEMA["pattern"], fullmatch=True))
def test_every_sortby_the_pattern_allows_is_accepted(value: str) -> None:
    assert len(parse_sortby(value)) == value.count(",") + 1


@_EXAMPLES
@given(
    st.from_regex(deps.NUMBERS_SCHEMA["pattern"], fullmatch=True),
    st.from_regex(deps.POSITIVES_SCHEMA["pattern"], fullmatch=True),
)
def test_every_min_max_and_gamma_the_patterns_allow_are_accepted(
    numbers: str, positives: str
) -> None:
    values = deps._floats("min", numbers)
    gamma = deps._floats("gamma", positives)
    assert values is not None and gamma is not None
    n = len(values)
    if len(gamma) not in (1, n):  # one value or one per band: OpenAPI cannot say
        gamma = gamma[:1]  # (not assume(): most pairs would be thrown away and redrawn)
    Visualisation(min=values, max=values, gamma=gamma).check(n)


@_EXAMPLES
@given(st.from_regex(deps.PALETTE_SCHEMA["pattern"], fullmatch=True))
def test_every_palette_the_pattern_allows_is_accepted(value: str) -> None:
    assert len(parse_palette(value.split(","))) == value.count(",") + 1


def test_the_schema_patterns_are_what_the_tile_route_documents(client: TestClient) -> None:
    path = "/collections/{collection_id}/tiles/{tileMatrixSetId}/{z}/{x}/{y}"
    assert _pattern(client, path, "datetime") == deps.DATETIME_SCHEMA["pattern"]
    assert _pattern(client, _SEARCH, "bbox") == deps.BBOX_SCHEMA["pattern"]
    assert _pattern(client, path, "palette") == deps.PALETTE_SCHEMA["pattern"]


@pytest.mark.parametrize(
    ("url", "params", "fragment"),
    [
        pytest.param(ITEMS, {"datetime": "2020-W27-3"}, "datetime", id="datetime_message_is_ours"),
        pytest.param(ITEMS, {"bbox": "1,2,3"}, "expected 4 numbers", id="bbox_message_is_ours"),
        pytest.param(PNG, {"palette": "zzz"}, "is not hex", id="palette_message_is_ours"),
        pytest.param(PNG, {"min": "a", "max": "1"}, "min=", id="min_message_is_ours"),
    ],
)
def test_a_value_outside_a_pattern_gets_the_parsers_message(
    client: TestClient, url: str, params: dict[str, str], fragment: str
) -> None:
    r = client.get(url, params=params)
    refused(r, 400, fragment)
    assert "pattern" not in r.json()["detail"]
