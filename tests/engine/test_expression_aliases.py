"""Quality expressions over common names (rewritten to band names once, when parsed) and the
upper bound through ``where()`` (what lets a class ranking stop reading early)."""

from __future__ import annotations

import math
import re

import numpy
import pytest

from tiler.engine.expression import parse
from tiler.errors import InvalidQualityExpression

BANDS = ["B04", "B08", "B05", "B06", "SCL", "red-jp2"]
ALIASES = {"red": ["B04"], "nir": ["B08"], "rededge": ["B05", "B06"], "redjp": ["red-jp2"]}


@pytest.mark.parametrize(
    ("text", "rewritten"),
    [
        pytest.param("(nir-red)/(nir+red)", "(B08-B04)/(B08+B04)", id="ndvi"),
        pytest.param("where(SCL==4, nir,\r\n red)", "where(SCL==4, B08,\r\n B04)", id="lines"),
        pytest.param("-red", "-B04", id="unary"),
        pytest.param("B04 + red", "B04 + B04", id="name-and-alias"),
        pytest.param("abs(red) - nan", "abs(B04) - nan", id="functions-and-constants-kept"),
    ],
)
def test_common_names_are_rewritten_to_band_names(text, rewritten):
    expr = parse(text, BANDS, ALIASES)
    assert expr.text == rewritten
    assert set(expr.bands) <= set(BANDS)
    assert expr == parse(rewritten, BANDS)  # the same expression whichever names were used


def test_rewritten_expression_evaluates_as_the_band_names():
    values = {"B04": numpy.array([1.0, 2.0]), "B08": numpy.array([3.0, 2.0])}
    got = parse("(nir-red)/(nir+red)", BANDS, ALIASES).evaluate(values)
    b04, b08 = values["B04"], values["B08"]
    numpy.testing.assert_array_equal(got, (b08 - b04) / (b08 + b04))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("rededge - red", "common name of 2 bands: B05, B06", id="ambiguous"),
        pytest.param("nir08", "unknown band 'nir08'", id="unknown"),
        pytest.param("nir08", "common names: red (B04), nir (B08)", id="unknown-lists-aliases"),
        pytest.param("redjp", "cannot be written in an expression", id="unwritable-band"),
        pytest.param("__class__", "double underscores", id="dunder-refused-as-before"),
        pytest.param("red.real", "attribute access", id="attribute-refused-as-before"),
    ],
)
def test_bad_names_say_what_is_allowed(text, message):
    with pytest.raises(InvalidQualityExpression, match=re.escape(message)):
        parse(text, BANDS, ALIASES)


@pytest.mark.parametrize(
    ("text", "ranges", "bound"),
    [
        pytest.param("where(SCL==4, 9, where(SCL==5, 3, nan))", {}, 9.0, id="ranking"),
        pytest.param("where(SCL==4, nan, inf)", {}, None, id="never-valid"),
        pytest.param("where(SCL==4, -B04, 1)", {"B04": (0.0, math.inf)}, 1.0, id="band-branch"),
        pytest.param("where(SCL==4, B04, 1)", {"B04": (0.0, math.inf)}, None, id="unbounded"),
        pytest.param("2 * where(SCL > 3, 1, 0) - 1", {}, 1.0, id="inside-arithmetic"),
    ],
)
def test_upper_bound_through_where(text, ranges, bound):
    assert parse(text, BANDS).upper_bound({"SCL": (0.0, 255.0), **ranges}) == bound
