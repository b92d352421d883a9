"""Inputs that crashed (SIGSEGV), exhausted (OOM) or froze a worker answer a 400 at once.

They run in one child process with a memory limit and a timeout (support.hostile.run_in_child):
a guard that regresses makes its cases fail as "killed" or "hung" instead of taking the test
run down. Each refusal comes before the engine is called (the text is refused before any
parser or transform sees it, in milliseconds; ``FROZEN`` seconds would be a freeze: the
"within a second" of the issue is a timing, kept out of the unit tests).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from support.hostile import BBOX_3857, FROZEN, LAT, LON, run_in_child

from tiler.catalog.filters import (
    MAX_FILTER_DEPTH,
    MAX_FILTER_LENGTH,
    MAX_FILTER_NOTS,
    MAX_FILTER_OPERATORS,
)

ITEMS = "/collections/demo/items"
LIMITS = f"limited to {MAX_FILTER_LENGTH} characters, {MAX_FILTER_DEPTH} levels of nesting"
CMP = "eo:cloud_cover < 20"


def _nested_json(levels: int) -> str:
    inner = '{"op":"<","args":[{"property":"eo:cloud_cover"},20]}'
    return '{"op":"not","args":[' * levels + inner + "]}" * levels


# id: (url, params, expected status, fragments of the detail)
CASES: dict[str, tuple[str, dict[str, str], int, tuple[str, ...]]] = {
    # SIGSEGV in cql2's parser
    "filter_2000_nested_parentheses": (
        ITEMS,
        {"filter": "(" * 2000 + CMP + ")" * 2000},
        400,
        (f"nested more than {MAX_FILTER_DEPTH} deep", LIMITS),
    ),
    # > 23 GB, OOM-killed
    "filter_1000_nots": (
        ITEMS,
        {"filter": "NOT " * 1000 + CMP},
        400,
        (f"more than {MAX_FILTER_NOTS} NOTs", LIMITS),
    ),
    # 9.5 s of CPU
    "filter_300_nots": (ITEMS, {"filter": "NOT " * 300 + CMP}, 400, ("NOTs", LIMITS)),
    "filter_one_not_too_many": (
        ITEMS,
        {"filter": "NOT " * (MAX_FILTER_NOTS + 1) + CMP},
        400,
        ("NOTs", LIMITS),
    ),
    "filter_nested_functions": (
        ITEMS,
        {"filter": "abs(" * MAX_FILTER_DEPTH + "eo:cloud_cover" + ")" * MAX_FILTER_DEPTH + " < 1"},
        400,
        ("nested", LIMITS),
    ),
    "filter_operator_chain_nested_once_parsed": (
        ITEMS,
        {"filter": "eo:cloud_cover" + " + 1" * 20 + " < 20"},
        400,
        ("operators are nested 21 deep", LIMITS),
    ),
    "filter_too_many_operators": (
        ITEMS,
        {"filter": " OR ".join([CMP] * 70)},
        400,
        (f"more than {MAX_FILTER_OPERATORS} operators", LIMITS),
    ),
    "filter_too_long": (
        ITEMS,
        {"filter": f"platform = '{'x' * MAX_FILTER_LENGTH}'"},
        400,
        ("characters", LIMITS),
    ),
    "filter_deep_cql2_json": (ITEMS, {"filter": _nested_json(100)}, 400, ("nested", LIMITS)),
    "filter_on_a_tile_route": (
        "/collections/demo/tiles/WebMercatorQuad/14/3494/6195.png",
        {"filter": "(" * 2000 + CMP + ")" * 2000},
        400,
        ("nested", LIMITS),
    ),
    # froze the worker at 100% CPU forever (constant powers folded in big integers)
    "quality_power_tower_tile": (
        "/collections/demo/tiles/WebMercatorQuad/14/3494/6195.png",
        {"quality": "B2*9**9**9"},
        400,
        ("'9**9**9' is too large", "float64 range"),
    ),
    "quality_power_tower_plus_point": (
        f"/collections/demo/point/{LON},{LAT}",
        {"quality": "B2+10**10**10"},
        400,
        ("'10**10**10' is too large",),
    ),
    "quality_power_tower_export": (
        f"/collections/demo/bbox/{BBOX_3857}/16x16.png",
        {"quality": "B2*9**9**9", "coord_crs": "EPSG:3857"},
        400,
        ("too large",),
    ),
    # froze in the coordinate transform
    "point_1e20_in_web_mercator": (
        "/collections/demo/point/1e20,1e20",
        {"coord_crs": "EPSG:3857"},
        400,
        ("outside the valid range of coord_crs EPSG:3857", "x must be in [-60112525.03"),
    ),
    "bbox_1e300_in_web_mercator": (
        "/collections/demo/bbox/-1e300,-1e300,1e300,1e300/256x256.png",
        {"coord_crs": "EPSG:3857"},
        400,
        ("outside the valid range of coord_crs EPSG:3857", "area of use"),
    ),
    "bbox_1e17_in_web_mercator": (
        "/collections/demo/bbox/-1e17,-1e17,1e17,1e17/64x64.png",
        {"coord_crs": "EPSG:3857"},
        400,
        ("outside the valid range",),
    ),
    "bbox_1e17_in_utm": (
        "/collections/demo/bbox/-1e17,-1e17,1e17,1e17/64x64.tif",
        {"coord_crs": "EPSG:32613", "dst_crs": "EPSG:3857"},
        400,
        ("outside the valid range of coord_crs EPSG:32613",),
    ),
    "point_1e15_in_utm": (
        "/collections/demo/point/1e15,0",
        {"coord_crs": "EPSG:32613"},
        400,
        ("x must be in",),
    ),
    # cql2's JSON-schema validation backtracked exponentially on arithmetic with strings:
    # 0.85 s, 5-14 s, 82 s (a 504), then OOM-killed at 24 GB for one more "+ 'a'"
    **{
        f"filter_arithmetic_on_strings_{n}_on_{route}": (
            url,
            {"filter": "gsd" + " + 'a'" * n + " > 1"},
            400,
            ("is not valid CQL2 text", "'+' takes a number, not a string"),
        )
        for n in (1, 4, 7)
        for route, url in (
            ("items", ITEMS),
            ("tile", "/collections/demo/tiles/WebMercatorQuad/14/3494/6195.png"),
            ("tilejson", "/collections/demo/WebMercatorQuad/tilejson.json"),
            ("wmts", "/collections/demo/WebMercatorQuad/WMTSCapabilities.xml"),
            ("tileset", "/collections/demo/tiles/WebMercatorQuad"),
            ("point", f"/collections/demo/point/{LON},{LAT}"),
        )
    },
    "filter_unknown_function": (
        ITEMS,
        {"filter": "unknownfunc(gsd) = 1"},
        400,
        ("unknown function or operator 'unknownfunc'", "allowed: "),
    ),
    "filter_comparing_a_number_with_a_string": (
        ITEMS,
        {"filter": "'a' = 1"},
        400,
        ("compares a number with a string",),
    ),
    "filter_bad_timestamp": (
        ITEMS,
        {"filter": "datetime > TIMESTAMP('2020-13-45T00:00:00Z')"},
        400,
        ("is not an RFC 3339 timestamp",),
    ),
    # the same routes within the limits still answer
    "accepted_filter_nested_to_the_limit": (
        ITEMS,
        {"filter": "(" * MAX_FILTER_DEPTH + "NOT " * (MAX_FILTER_DEPTH - 1) + CMP + ")" * 8},
        200,
        (),
    ),
    "accepted_filter_with_the_most_nots": (
        ITEMS,
        {"filter": " AND ".join([f"NOT {CMP}"] * MAX_FILTER_NOTS)},
        200,
        (),
    ),
    "accepted_point_in_web_mercator": (
        "/collections/demo/point/-11487000,4886300",
        {"coord_crs": "EPSG:3857"},
        200,
        (),
    ),
    "accepted_bbox_in_web_mercator": (
        f"/collections/demo/bbox/{BBOX_3857}/32x32.png",
        {"coord_crs": "EPSG:3857"},
        200,
        (),
    ),
    "accepted_point_in_lonlat": (f"/collections/demo/point/{LON},{LAT}", {}, 200, ()),
    "accepted_filter_with_every_kind_of_operand": (
        ITEMS,
        {
            "filter": "eo:cloud_cover + 1 < 20 AND platform LIKE 's%' AND gsd IN (10, 20) "
            "AND datetime > TIMESTAMP('2020-01-01T00:00:00Z') AND CASEI(platform) <> 'x' "
            "AND S_INTERSECTS(geometry, BBOX(-104, 39, -102, 41)) AND NOT gsd IS NULL"
        },
        200,
        (),
    ),
}


# one child process runs every case: a test that starts a process is end-to-end
pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def results(demo_path: Any) -> dict[str, dict[str, Any]]:
    return run_in_child(
        demo_path, [(name, url, params) for name, (url, params, *_) in CASES.items()]
    )


@pytest.mark.parametrize("case", list(CASES))
def test_refused_at_once_and_the_process_still_answers(
    case: str, results: dict[str, dict[str, Any]]
) -> None:
    _, _, status, fragments = CASES[case]
    got = results.get(case, {"status": "never reached (an earlier case ended the child)"})
    assert got["status"] == status, got
    assert got["health"] == 200
    if status >= 400:
        assert got["engine_calls"] == 0  # refused before any work
        assert got["seconds"] < FROZEN, got["seconds"]  # not frozen
        assert got["type"].startswith("application/json")
        detail = json.loads(got["body"])["detail"]
        for fragment in fragments:
            assert fragment in detail, detail
        assert len(detail) < 1500  # the input is quoted in part, never echoed whole
