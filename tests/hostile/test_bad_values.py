"""Values that made a 500 (or ran for minutes before their 400) answer a 400 saying what was
wrong and what is allowed; counts and sizes are checked before any work starts."""

from __future__ import annotations

from typing import Any

import pytest
from support.hostile import BBOX, LAT, LON, refused, refused_and_alive

TILE = "/collections/demo/tiles/WebMercatorQuad/14/3494/6195.png"
POINT = f"/collections/demo/point/{LON},{LAT}"
FEATURE = "/collections/demo/feature?format=png&width=32&height=32"


# id: (path, query parameters, fragments of the detail)
GET_CASES: dict[str, tuple[str, dict[str, str], tuple[str, ...]]] = {
    "nodata_nan_tile": (TILE, {"nodata": "nan"}, ("nodata=nan cannot be held by band", "0..255")),
    "nodata_1e400_tile": (TILE, {"nodata": "1e400"}, ("must be a finite number", "or nan")),
    "nodata_inf_tile": (TILE, {"nodata": "-inf"}, ("must be a finite number",)),
    "nodata_above_uint16_tile": (
        TILE,
        {"nodata": "70000", "quality": "B8", "bands": "B4"},
        ("band 'B8' (uint16)", "0..65535"),
    ),
    "nodata_negative_for_unsigned_tile": (TILE, {"nodata": "-1"}, ("whole number in 0..",)),
    "nodata_nan_point": (POINT, {"nodata": "nan"}, ("cannot be held by band",)),
    "nodata_1e400_point": (POINT, {"nodata": "1e400"}, ("must be a finite number",)),
    "datetime_offset_before_year_1": (
        TILE,
        {"datetime": "0001-01-01T00:00:00+23:59"},
        ("is not RFC 3339", "2020-07-01T00:00:00Z"),
    ),
    "datetime_offset_after_year_9999": (
        TILE,
        {"datetime": "9999-12-31T23:59:59-23:59"},
        ("is not RFC 3339",),
    ),
    "datetime_offset_items": (
        "/collections/demo/items",
        {"datetime": "0001-01-01T00:00:00+23:59/.."},
        ("is not RFC 3339",),
    ),
    "color_formula_bias_out_of_range": (
        TILE,
        {"color_formula": "sigmoidal RGB 10 10"},
        ("bias must be a scalar float between 0 and 1", "sigmoidal BANDS contrast bias"),
    ),
    "color_formula_rgb_on_one_band": (
        TILE,
        {"bands": "B4", "color_formula": "gamma RGB 1.5"},
        ("cannot be applied to 1 band(s)",),
    ),
    "color_formula_saturation_on_one_band": (
        TILE,
        {"bands": "B4", "color_formula": "saturation 1.5"},
        ("requires a 3-band array",),
    ),
    "color_formula_overflow": (
        TILE,
        {"color_formula": "sigmoidal RGB 1e308 0.5"},
        ("overflow",),
    ),
    "color_formula_too_long": (
        TILE,
        {"color_formula": " ".join(["gamma RGB 1.1"] * 30)},
        ("longer than 256 characters",),
    ),
    "colormap_named_colours": (
        TILE,
        {"bands": "B4", "colormap": '{"0": "red", "1": "blue"}'},
        ("colour 'red' is not hex", "3-4 integers in 0..255"),
    ),
    "colormap_string_keys": (
        TILE,
        {"bands": "B4", "colormap": '{"a": "b"}'},
        ("key 'a' is not an integer",),
    ),
    "colormap_colour_out_of_range": (
        TILE,
        {"bands": "B4", "colormap": '{"0": [300, 0, 0]}'},
        ("integers in 0..255",),
    ),
    "colormap_deeply_nested": (
        TILE,
        {"bands": "B4", "colormap": "[" * 5000 + "]" * 5000},
        ("nested more than 4 deep",),
    ),
    "colormap_not_json": (TILE, {"bands": "B4", "colormap": "{0: red"}, ("not valid JSON",)),
    "colormap_too_many_entries": (
        TILE,
        {"bands": "B4", "colormap": "{" + ",".join(f'"{i}":"#000"' for i in range(1025)) + "}"},
        ("more than 1024 entries",),
    ),
    "colormap_bad_interval": (
        TILE,
        {"bands": "B4", "colormap": '[[[0, "x"], "#fff"]]'},
        ("two finite numbers",),
    ),
    "colormap_with_colormap_name": (
        TILE,
        {"bands": "B4", "colormap": '{"0": "#000"}', "colormap_name": "viridis"},
        ("not both",),
    ),
    "palette_too_many_colours": (
        TILE,
        {"bands": "B4", "palette": ",".join(["000000"] * 300)},
        ("at most 256",),
    ),
    "bbox_1e308_lonlat": (
        "/collections/demo/bbox/-1e308,-1e308,1e308,1e308/64x64.png",
        {},
        ("lon must be in [-180, 180] and lat in [-90, 90]",),
    ),
    "bbox_1e17_lonlat": (
        "/collections/demo/bbox/-1e17,-1e17,1e17,1e17/64x64.png",
        {},
        ("outside the valid range of coord_crs EPSG:4326",),
    ),
    "bbox_overflowing_to_inf": (
        "/collections/demo/bbox/-1e309,0,1,1/64x64.png",
        {},
        ("numbers must be finite",),
    ),
    "bbox_with_a_pole_at_infinity_in_dst_crs": (
        "/collections/demo/bbox/-180,-90,180,-80/16x16.png",
        {"dst_crs": "EPSG:3413"},
        ("projected to dst_crs is outside the valid range of dst_crs EPSG:3413",),
    ),
    "bbox_reaching_a_pole_in_mercator": (
        "/collections/demo/bbox/-180,-90,180,90/16x16.png",
        {"dst_crs": "EPSG:3857"},
        ("and y in [-60146898.31, 60146898.31]",),
    ),
    "bands_10000_valid_names": (
        TILE,
        {"bands": ",".join(["B4"] * 10000)},
        ("10000 output bands: at most 9",),
    ),
    "bands_10000_unknown_names": (
        TILE,
        {"bands": ",".join(["X"] * 10000)},
        ("at most 9",),
    ),
    "point_bands_10000": (POINT, {"bands": ",".join(["B4"] * 10000)}, ("at most 9",)),
    "export_larger_than_the_limit": (
        f"/collections/demo/bbox/{BBOX}/100000x100000.png",
        {},
        ("exceeds the limit of 4194304 px",),
    ),
    "export_size_with_a_huge_number": (
        f"/collections/demo/bbox/{BBOX}/{'9' * 400}x1.png",
        {},
        ("expected {width}x{height}",),
    ),
}


@pytest.mark.parametrize("case", list(GET_CASES))
def test_bad_values_are_400s_before_any_work(client: Any, case: str) -> None:
    path, params, fragments = GET_CASES[case]
    refused_and_alive(client, client.get(path, params=params), 400, *fragments)


def _feature(geometry: dict[str, Any]) -> dict[str, Any]:
    return {"type": "Feature", "properties": {}, "geometry": geometry}


def _square(a: float) -> dict[str, Any]:
    return {"type": "Polygon", "coordinates": [[[-a, -a], [a, -a], [a, a], [-a, a], [-a, -a]]]}


NAN_RING = "[[NaN, 0], [1, 0], [1, 1], [NaN, 0]]"
NAN_INSIDE = "[[0, 0], [1, 0], [NaN, 1], [0, 1], [0, 0]]"

# id: (body: JSON value, or raw text for NaN literals; query; fragments of the detail)
FEATURE_CASES: dict[str, tuple[Any, str, tuple[str, ...]]] = {
    "empty_multilinestring": (
        _feature({"type": "MultiLineString", "coordinates": []}),
        "",
        ("(MultiLineString) is empty; use a polygon",),
    ),
    "empty_geometrycollection": (
        _feature({"type": "GeometryCollection", "geometries": []}),
        "",
        ("(GeometryCollection) is empty",),
    ),
    "empty_multipolygon_with_3d_bbox": (
        _feature({"type": "MultiPolygon", "coordinates": [], "bbox": [0, 0, 0, 1, 1, 1]}),
        "",
        ("(MultiPolygon) is empty",),
    ),
    "polygon_nan_ring_not_closed": (
        '{"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", '
        f'"coordinates": [{NAN_RING}]}}}}',
        "",
        ("not valid GeoJSON",),
    ),
    "polygon_nan_vertex": (
        '{"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", '
        f'"coordinates": [{NAN_INSIDE}]}}}}',
        "",
        ("coordinates must be finite numbers",),
    ),
    "line_nan": (
        '{"type": "Feature", "properties": {}, "geometry": {"type": "LineString", '
        '"coordinates": [[NaN, 0], [1, 1]]}}',
        "",
        ("coordinates must be finite numbers",),
    ),
    "polygon_1e308": (_feature(_square(1e308)), "", ("lon must be in [-180, 180]",)),
    "polygon_1e17": (_feature(_square(1e17)), "", ("outside the valid range",)),
    "polygon_1e17_web_mercator": (
        _feature(_square(1e17)),
        "&coord_crs=EPSG:3857",
        ("x must be in [-60112525.03",),
    ),
    "line_1e308": (
        _feature({"type": "LineString", "coordinates": [[-1e308, -1e308], [1e308, 1e308]]}),
        "",
        ("outside the valid range",),
    ),
    "line_without_area": (
        _feature({"type": "LineString", "coordinates": [[0, 0], [1, 0]]}),
        "",
        ("empty extent; use a polygon",),
    ),
    "no_geometry": (_feature(None), "", ("no geometry",)),  # type: ignore[arg-type]
    "export_side_beyond_the_documented_bound": (
        _feature(_square(0.01)),
        "&width=100000",
        ("width: Input should be less than or equal to 65536",),
    ),
    "export_larger_than_the_limit": (
        _feature(_square(0.01)),
        "&width=20000&height=20000",
        ("exceeds the limit",),
    ),
}


@pytest.mark.parametrize("case", list(FEATURE_CASES))
def test_bad_features_are_400s_before_any_work(client: Any, case: str) -> None:
    body, query, fragments = FEATURE_CASES[case]
    if isinstance(body, str):
        r = client.post(FEATURE + query, content=body, headers={"content-type": "application/json"})
    else:
        r = client.post(FEATURE + query, json=body)
    refused_and_alive(client, r, 400, *fragments)


@pytest.mark.parametrize(
    ("params", "body"),
    [
        pytest.param({"nodata": "0"}, None, id="nodata_that_fits"),
        pytest.param(
            {"bands": "B4", "colormap": '{"0": "#000", "255": [255, 0, 0]}'},
            None,
            id="colormap_of_values",
        ),
        pytest.param(
            {"bands": "B4", "colormap": '[[[0, 128], "#000"], [[128, 256], "#fff"]]'},
            None,
            id="colormap_of_intervals",
        ),
        pytest.param(
            {"color_formula": "gamma RGB 1.5 sigmoidal RGB 10 0.35"}, None, id="color_formula"
        ),
        pytest.param({"bands": "B4,B4,B4"}, None, id="a_band_repeated"),
        pytest.param(
            {},
            {"type": "GeometryCollection", "geometries": [_square(0.001)]},
            id="feature_geometrycollection",
        ),
    ],
)
def test_the_same_parameters_within_bounds_still_render(
    client: Any, params: dict[str, str], body: dict[str, Any] | None
) -> None:
    if body is None:
        r = client.get(TILE, params=params)
    else:
        point = {"type": "Point", "coordinates": [LON, LAT]}
        parts = [_moved(body["geometries"][0]), point]
        square = {"type": "GeometryCollection", "geometries": parts}
        r = client.post(FEATURE, json=_feature(square))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png"


def _moved(polygon: dict[str, Any]) -> dict[str, Any]:
    ring = [[x + LON, y + LAT] for x, y in polygon["coordinates"][0]]
    return {"type": "Polygon", "coordinates": [ring]}


@pytest.mark.parametrize(
    ("params", "says"),
    [
        pytest.param({"sortby": ",".join(["datetime"] * 1000)}, "at most 8", id="sortby_keys"),
        pytest.param({"rescale": "nan,1"}, "two different finite numbers", id="rescale_nan"),
        pytest.param({"rescale": "5,5"}, "two different finite numbers", id="rescale_empty"),
        pytest.param({"rescale": ["0,1"] * 5}, "give one, or one per band", id="rescale_count"),
        pytest.param({"offset": str(10**30)}, "less than or equal to 1000000000", id="offset"),
    ],
)
def test_counts_and_ranges_of_other_parameters(
    client: Any, params: dict[str, Any], says: str
) -> None:
    path = "/collections/demo/items" if "offset" in params or "sortby" in params else TILE
    refused(client.get(path, params=params), 400, says)  # the engine never called
