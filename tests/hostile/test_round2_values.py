"""Issue 22, round 2 of hostile values: a trailing newline that ``$`` let through, a CRS that a
message could not name, and images that were computed and then refused by their encoder.

Each answers a 400 saying what was wrong and what is allowed, before the engine is called.
"""

from __future__ import annotations

from typing import Any

import numpy
import pytest
from rio_tiler.models import ImageData
from support.hostile import BBOX, refused, refused_and_alive

from tiler.errors import BadRequest, TooLarge
from tiler.render import (
    ENCODABLE_BANDS,
    MAX_IMAGE_SIDE,
    Format,
    Visualisation,
    check_encodable,
    encode,
)

TILE = "/collections/demo/tiles/WebMercatorQuad/14/3494/6195"
EXPORT = f"/collections/demo/bbox/{BBOX}"
FEATURE = "/collections/demo/feature"
NINE = "B2,B3,B4,B8,MSK_CLDPRB,quality,_index,_date,_doy"

#: inline WKT whose numbers PROJ accepts but no operation can use (a 1e308 m spheroid)
WKT_HUGE_SPHEROID = (
    'PROJCS["huge spheroid",GEOGCS["g",DATUM["d",SPHEROID["s",1e308,298.257]],'
    'PRIMEM["Greenwich",0],UNIT["degree",0.0174532925199433]],'
    'PROJECTION["Transverse_Mercator"],PARAMETER["latitude_of_origin",0],'
    'PARAMETER["central_meridian",-105],PARAMETER["scale_factor",0.9996],'
    'PARAMETER["false_easting",500000],PARAMETER["false_northing",0],UNIT["metre",1]]'
)
WKT_UNNAMED_HUGE_SPHEROID = WKT_HUGE_SPHEROID.replace('"huge spheroid"', '"unknown"')


# id: (path, query parameters, fragments of the detail)
CASES: dict[str, tuple[str, dict[str, str], tuple[str, ...]]] = {
    # 1. `$` matched before a trailing newline: int("\n\n", 16) was a 500
    "colormap_short_hex_with_trailing_newline": (
        f"{TILE}.png",
        {"bands": "B4", "colormap": '{"1": "#fff\\n"}'},
        ("colour '#fff\\n' is not hex", "#rgb, #rgba, #rrggbb, #rrggbbaa"),
    ),
    "colormap_long_hex_with_trailing_newline": (
        f"{TILE}.png",
        {"bands": "B4", "colormap": '{"1": "#ffffff\\n"}'},
        ("colour '#ffffff\\n' is not hex",),
    ),
    "colormap_interval_hex_with_trailing_newline": (
        f"{TILE}.png",
        {"bands": "B4", "colormap": '[[[0, 10], "#ffffff\\n"]]'},
        ("colour '#ffffff\\n' is not hex",),
    ),
    "colormap_key_with_trailing_newline": (
        f"{TILE}.png",
        {"bands": "B4", "colormap": '{"1\\n": "#ffffff"}'},
        ("key '1\\n' is not an integer",),
    ),
    "colormap_key_of_full_width_digits": (
        f"{TILE}.png",
        {"bands": "B4", "colormap": '{"\uff11": "#ffffff"}'},
        ("is not an integer",),
    ),
    "tile_row_with_trailing_newline": (f"{TILE}%0A", {}, ("is not of the form {y}",)),
    "tile_zoom_with_trailing_newline": (
        "/collections/demo/tiles/WebMercatorQuad/14%0A/3494/6195.png",
        {},
        ("tile z '14\\n' must be a whole number",),
    ),
    "tile_column_with_spaces": (
        "/collections/demo/tiles/WebMercatorQuad/14/%203494%20/6195.png",
        {},
        ("tile x ' 3494 ' must be a whole number",),
    ),
    "tile_row_of_full_width_digits": (
        "/collections/demo/tiles/WebMercatorQuad/14/3494/%EF%BC%96195",
        {},
        ("is not of the form {y}",),
    ),
    "export_size_with_trailing_newline": (
        f"{EXPORT}/64x64%0A.png",
        {},
        ("expected {width}x{height}",),
    ),
    "export_size_of_full_width_digits": (
        f"{EXPORT}/64x%EF%BC%96.png",
        {},
        ("expected {width}x{height}",),
    ),
    "crs_code_with_a_newline_inside": (
        f"{EXPORT}/64x64.png",
        {"dst_crs": "EPSG:4326\nEPSG:3857"},
        ("not an accepted form",),
    ),
    # 2. a 400 naming a CRS whose string is long was an AttributeError (500)
    "dst_crs_proj_string_with_scale_1e300": (
        f"{EXPORT}/64x64.png",
        {"dst_crs": "+proj=tmerc +k=1e300 +datum=WGS84"},
        ("outside the valid range of dst_crs (an unnamed inline CRS)", "x must be in"),
    ),
    "dst_crs_wkt_with_a_1e308_spheroid": (
        f"{EXPORT}/64x64.png",
        {"dst_crs": WKT_HUGE_SPHEROID},
        ("cannot be projected to 'huge spheroid'", "coordinate operation"),
    ),
    "dst_crs_unnamed_wkt_with_a_1e308_spheroid": (
        f"{EXPORT}/64x64.png",
        {"dst_crs": WKT_UNNAMED_HUGE_SPHEROID},
        ("cannot be projected to (an unnamed inline CRS)",),
    ),
    "coord_crs_wkt_with_a_1e308_spheroid": (
        f"{EXPORT}/64x64.png",
        {"coord_crs": WKT_HUGE_SPHEROID},
        ("cannot be projected to EPSG:4326", "the inline CRS"),
    ),
    # 3. images their encoder refuses: refused before the mosaic is computed
    "png_one_column_of_4194304_rows": (
        f"{EXPORT}/1x4194304.png",
        {},
        ("1x4194304 png image exceeds that format's limit of 1000000 px per side", "tif or npy"),
    ),
    "png_of_4_bands": (
        f"{EXPORT}/64x64.png",
        {"bands": "B4,B3,B2,B8"},
        ("png images hold 1, 2 or 3 output bands", "the request has 4", "tif or npy"),
    ),
    "png_of_9_bands": (f"{EXPORT}/64x64.png", {"bands": NINE}, ("the request has 9",)),
    "jpeg_of_2_bands": (
        f"{EXPORT}/64x64.jpeg",
        {"bands": "B4,B3"},
        ("jpeg images hold 1, 3 or 4 output bands; the request has 2",),
    ),
    "jpg_of_5_bands": (f"{EXPORT}/64x64.jpg", {"bands": "B4,B3,B2,B8,B4"}, ("1, 3 or 4",)),
    "webp_of_5_bands": (
        f"{EXPORT}/64x64.webp",
        {"bands": "B4,B3,B2,B8,B4"},
        ("webp images hold 1, 2 or 3 output bands", "the request has 5"),
    ),
    "webp_wider_than_16383": (
        f"{EXPORT}/16384x16.webp",
        {},
        ("webp image exceeds that format's limit of 16383 px per side",),
    ),
    "jpeg_taller_than_65500": (f"{EXPORT}/16x65501.jpeg", {}, ("limit of 65500 px per side",)),
    "tile_png_of_4_bands": (
        f"{TILE}.png",
        {"bands": "B4,B3,B2,B8"},
        ("png images hold 1, 2 or 3 output bands",),
    ),
    "tile_webp_of_9_bands": (f"{TILE}.webp", {"bands": NINE}, ("the request has 9",)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_round2_values_are_400s_before_any_work(client: Any, case: str) -> None:
    path, params, fragments = CASES[case]
    refused_and_alive(client, client.get(path, params=params), 400, *fragments)


def test_a_feature_export_of_4_bands_as_png_is_refused_before_any_work(client: Any) -> None:
    ring = [[-103.2, 40.13], [-103.18, 40.13], [-103.18, 40.15], [-103.2, 40.13]]
    feature = {
        "type": "Feature",
        "properties": {},
        "geometry": {"type": "Polygon", "coordinates": [ring]},
    }
    r = client.post(f"{FEATURE}?format=png&width=32&height=32&bands=B4,B3,B2,B8", json=feature)
    refused(r, 400, "png images hold 1, 2 or 3 output bands")  # the engine never called


@pytest.mark.parametrize(
    ("path", "params", "media_type"),
    [
        pytest.param(f"{EXPORT}/16383x2.webp", {}, "image/webp", id="webp_at_its_side_limit"),
        pytest.param(f"{EXPORT}/64x64.webp", {"bands": "B4,B3"}, "image/webp", id="webp_2_bands"),
        pytest.param(f"{EXPORT}/64x64.png", {"bands": "B4,B3,B2"}, "image/png", id="png_3_bands"),
        pytest.param(
            f"{EXPORT}/64x64.jpeg",
            {"bands": "B4", "colormap_name": "viridis"},
            "image/jpeg",
            id="jpeg_of_one_band_with_a_colormap",
        ),
        pytest.param(f"{EXPORT}/64x64.tif", {"bands": NINE}, "image/tiff", id="tif_of_9_bands"),
        pytest.param(f"{TILE}.npy", {"bands": NINE}, "application/x-binary", id="tile_npy_9_bands"),
        pytest.param(
            f"{EXPORT}/64x64.png",
            {"dst_crs": "+proj=utm +zone=13 +datum=WGS84"},
            "image/png",
            id="inline_proj_string_within_range",
        ),
    ],
)
def test_what_the_encoders_take_still_renders(
    client: Any, path: str, params: dict[str, str], media_type: str
) -> None:
    r = client.get(path, params=params)
    assert r.status_code == 200, r.text[:300]
    assert r.headers["content-type"].startswith(media_type)


def _encodes(fmt: Format, count: int, width: int, height: int) -> bool:
    shape = (count, height, width)
    array = numpy.ma.MaskedArray(numpy.ones(shape, "uint8"), mask=numpy.zeros(shape, bool))
    image = ImageData(array, bounds=(0, 0, 1, 1), crs=None)
    try:
        encode(image, fmt, Visualisation())
    except Exception:  # noqa: BLE001 - any refusal of the encoder counts
        return False
    return True


def _allowed(fmt: Format, count: int, width: int, height: int) -> bool:
    try:
        check_encodable(fmt, count, width, height)
    except (BadRequest, TooLarge):
        return False
    return True


IMAGE_FORMATS = [f for f in Format if not f.raw]


@pytest.mark.parametrize("fmt", IMAGE_FORMATS, ids=lambda f: f.value)
def test_the_band_counts_checked_are_those_the_encoder_takes(fmt: Format) -> None:
    for count in range(1, 10):
        assert _allowed(fmt, count, 4, 4) == _encodes(fmt, count, 4, 4), count
    assert set(ENCODABLE_BANDS[fmt]) <= set(range(1, 10))


@pytest.mark.parametrize("fmt", IMAGE_FORMATS, ids=lambda f: f.value)
def test_the_side_limits_checked_are_those_the_encoder_takes(fmt: Format) -> None:
    side = MAX_IMAGE_SIDE[fmt]
    for width, height in ((side, 1), (1, side), (side + 1, 1), (1, side + 1)):
        assert _allowed(fmt, 1, width, height) == _encodes(fmt, 1, width, height), (width, height)


def test_raw_formats_have_no_band_or_side_limit_here() -> None:
    for fmt in (Format.tif, Format.npy):
        check_encodable(fmt, 9, 4_194_304, 1)
