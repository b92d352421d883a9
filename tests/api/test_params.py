"""Numbers in HTTP parameters (tiler.api.params): number lists and an export's extent."""

from __future__ import annotations

import pytest

from tiler.api.params import parse_extent, parse_floats
from tiler.errors import BadRequest, InvalidVisualisation


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("1", (1.0,), id="one"),
        pytest.param("0, -2.5,1e3", (0.0, -2.5, 1000.0), id="several-with-spaces"),
    ],
)
def test_parse_floats(value, expected):
    assert parse_floats("min", value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param("a", "min='a': expected a number", id="not-a-number"),
        pytest.param("1,,2", "expected a number", id="empty-part"),
        pytest.param("1,nan", "numbers must be finite", id="nan"),
        pytest.param("inf", "numbers must be finite", id="inf"),
    ],
)
def test_parse_floats_rejects(value, message):
    with pytest.raises(InvalidVisualisation, match=message):
        parse_floats("min", value, InvalidVisualisation)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("500000,5000000,500640,5000640", (5e5, 5e6, 500640.0, 5000640.0), id="utm"),
        pytest.param("-180,-90,180,90", (-180.0, -90.0, 180.0, 90.0), id="the-globe"),
        pytest.param("-2e7,-2e7,2e7,2e7", (-2e7, -2e7, 2e7, 2e7), id="beyond-lonlat-ranges"),
    ],
)
def test_parse_extent(value, expected):
    assert parse_extent(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param("", "bbox is empty", id="empty"),
        pytest.param("1,2,3", "expected 4 numbers", id="three-numbers"),
        pytest.param("0,0,nan,1", "numbers must be finite", id="nan"),
        pytest.param("170,0,-170,1", "min must be less than max", id="no-antimeridian-crossing"),
        pytest.param("0,0,0,1", "min must be less than max", id="no-area"),
    ],
)
def test_parse_extent_rejects(value, message):
    with pytest.raises(BadRequest, match=message):
        parse_extent(value)
