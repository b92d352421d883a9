"""Numbers in HTTP parameters (tiler.api.params): number lists and an export's extent."""

from __future__ import annotations

import pytest

from tiler.api.params import parse_extent, parse_floats
from tiler.errors import BadRequest, InvalidVisualisation


def test_number_lists_and_extents_in_any_crs_are_read():
    assert parse_floats("min", "1") == (1.0,)
    assert parse_floats("min", "0, -2.5,1e3") == (0.0, -2.5, 1000.0)
    assert parse_extent("500000,5000000,500640,5000640") == (5e5, 5e6, 500640.0, 5000640.0)
    assert parse_extent("-2e7,-2e7,2e7,2e7") == (-2e7, -2e7, 2e7, 2e7)  # no lon/lat ranges


@pytest.mark.parametrize(
    ("parse", "value", "message"),
    [
        (lambda v: parse_floats("min", v, InvalidVisualisation), "a", "min='a': expected a number"),
        (lambda v: parse_floats("min", v, InvalidVisualisation), "1,,2", "expected a number"),
        (lambda v: parse_floats("min", v, InvalidVisualisation), "1,inf", "must be finite"),
        (parse_extent, "", "bbox is empty"),
        (parse_extent, "1,2,3", "expected 4 numbers"),
        (parse_extent, "0,0,nan,1", "numbers must be finite"),
        (parse_extent, "170,0,-170,1", "min must be less than max"),  # no antimeridian
        (parse_extent, "0,0,0,1", "min must be less than max"),  # an area
    ],
)
def test_what_is_not_finite_numbers_or_an_area_is_refused(parse, value, message):
    with pytest.raises(BadRequest, match=message):
        parse(value)
