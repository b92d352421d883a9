"""Parsing the request filters: datetime, bbox, ids, CQL2 and sortby (tiler.catalog.filters)."""

from __future__ import annotations

import datetime as dt

import pytest

from tiler.catalog.filters import (
    SortKey,
    compile_filter,
    make_search,
    matches,
    parse_bbox,
    parse_datetime,
    parse_sortby,
)
from tiler.errors import InvalidFilter

UTC = dt.UTC


def _t(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


# ---------------------------------------------------------------------------------------
# parsing


@pytest.mark.parametrize(
    ("value", "start", "end"),
    [
        pytest.param(None, None, None, id="none-is-no-filter"),
        pytest.param("  ", None, None, id="blank-is-no-filter"),
        pytest.param(
            "2020-07-01T10:00:00Z", "2020-07-01T10:00:00Z", "2020-07-01T10:00:00Z", id="instant"
        ),
        pytest.param(
            "2020-07-01T12:00:00+02:00",
            "2020-07-01T10:00:00Z",
            "2020-07-01T10:00:00Z",
            id="instant-with-offset-to-utc",
        ),
        pytest.param(
            "2020-07-01T10:00:00", "2020-07-01T10:00:00Z", "2020-07-01T10:00:00Z", id="naive-is-utc"
        ),
        pytest.param(
            "2020-07-01T10:00:00.5z",
            "2020-07-01T10:00:00.5Z",
            "2020-07-01T10:00:00.5Z",
            id="fraction-lower-case-z",
        ),
        pytest.param(
            "2020-07-01", "2020-07-01T00:00:00Z", "2020-07-01T23:59:59.999999Z", id="date-whole-day"
        ),
        pytest.param(
            "2020-07-01/2020-09-01",
            "2020-07-01T00:00:00Z",
            "2020-09-01T23:59:59.999999Z",
            id="dates-interval-inclusive",
        ),
        pytest.param(
            "2020-07-01T06:00:00Z/2020-07-02T06:00:00Z",
            "2020-07-01T06:00:00Z",
            "2020-07-02T06:00:00Z",
            id="instants-interval",
        ),
        pytest.param("../2020-09-01", None, "2020-09-01T23:59:59.999999Z", id="open-start-dots"),
        pytest.param("/2020-09-01", None, "2020-09-01T23:59:59.999999Z", id="open-start-empty"),
        pytest.param("2020-07-01/..", "2020-07-01T00:00:00Z", None, id="open-end-dots"),
        pytest.param("2020-07-01/", "2020-07-01T00:00:00Z", None, id="open-end-empty"),
        pytest.param("../..", None, None, id="both-open"),
    ],
)
def test_parse_datetime(value, start, end):
    lo, hi = parse_datetime(value)
    assert lo == (None if start is None else _t(start))
    assert hi == (None if end is None else _t(end))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param("yesterday", "'yesterday' is not RFC 3339", id="words"),
        pytest.param("2020-13-01", "'2020-13-01' is not RFC 3339", id="month-13"),
        pytest.param("2020-07-01T25:00:00Z", "is not RFC 3339", id="hour-25"),
        pytest.param("2020-07-01/nope", "'nope' is not RFC 3339", id="bad-end"),
        pytest.param("..", "'..' alone is not an interval", id="dots-alone"),
        pytest.param("2020-01-01/2020-02-01/2020-03-01", "has 2 '/'", id="three-parts"),
        pytest.param("2020-09-01/2020-07-01", "start is after end", id="reversed"),
        pytest.param("2020-W27-3", "is not RFC 3339", id="iso-week-date"),
        pytest.param("2020-183", "is not RFC 3339", id="iso-ordinal-date"),
        pytest.param("1" * 8, "is not RFC 3339", id="iso-basic-format"),
        pytest.param("20200701T000000Z", "is not RFC 3339", id="iso-basic-date-time"),
        pytest.param("\uff12\uff10\uff12\uff10-07-01", "is not RFC 3339", id="full-width-digits"),
        pytest.param("2020-07-01T00:00Z", "is not RFC 3339", id="no-seconds"),
    ],
)
def test_parse_datetime_rejects(value, message):
    with pytest.raises(InvalidFilter, match=message):
        parse_datetime(value)


def test_datetime_message_says_what_is_allowed():
    with pytest.raises(InvalidFilter) as err:
        parse_datetime("July")
    assert "2020-07-01T00:00:00Z" in str(err.value) and "'..'" in str(err.value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(None, None, id="none"),
        pytest.param("", None, id="empty"),
        pytest.param("1,2,3,4", (1.0, 2.0, 3.0, 4.0), id="text"),
        pytest.param(" -180, -90 ,180,90", (-180.0, -90.0, 180.0, 90.0), id="world-with-spaces"),
        pytest.param([0, 0, 1, 1], (0.0, 0.0, 1.0, 1.0), id="sequence"),
        pytest.param("5,5,5,5", (5.0, 5.0, 5.0, 5.0), id="degenerate-point"),
        pytest.param("170,0,-170,1", (170.0, 0.0, -170.0, 1.0), id="across-the-antimeridian"),
    ],
)
def test_parse_bbox(value, expected):
    assert parse_bbox(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param("1,2,3", "expected 4 numbers", id="three-numbers"),
        pytest.param("1,2,3,4,5", "expected 4 numbers", id="five-numbers"),
        pytest.param("a,b,c,d", "expected 4 numbers", id="not-numbers"),
        pytest.param("0,0,nan,1", "numbers must be finite", id="nan"),
        pytest.param("0,0,inf,1", "numbers must be finite", id="inf"),
        pytest.param("0,2,1,1", "miny must not exceed maxy", id="miny-above-maxy"),
        pytest.param("0,0,181,1", "lon must be in", id="lon-out-of-range"),
        pytest.param("0,-91,1,1", "lat in \\[-90, 90\\]", id="lat-out-of-range"),
    ],
)
def test_parse_bbox_rejects(value, message):
    with pytest.raises(InvalidFilter, match=message):
        parse_bbox(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(None, None, id="none"),
        pytest.param("", None, id="empty"),
        pytest.param("a,b", frozenset({"a", "b"}), id="comma-separated"),
        pytest.param(" a , b ,,", frozenset({"a", "b"}), id="spaces-and-empty-parts"),
        pytest.param(["x", " y"], frozenset({"x", "y"}), id="sequence"),
    ],
)
def test_make_search_ids(value, expected):
    assert make_search(ids=value).ids == expected


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("eo:cloud_cover < 20", id="comparison"),
        pytest.param("eo:cloud_cover < 20 AND platform = 'sentinel-2a'", id="and"),
        pytest.param("platform IN ('s2a', 's2b') OR eo:cloud_cover IS NULL", id="in-or-null"),
        pytest.param("eo:cloud_cover BETWEEN 10 AND 20", id="between"),
        pytest.param("platform LIKE 's2%'", id="like"),
        pytest.param("NOT (eo:cloud_cover >= 50)", id="not"),
        pytest.param("datetime > TIMESTAMP('2021-06-02T00:00:00Z')", id="timestamp"),
    ],
)
def test_valid_cql2_is_accepted(text):
    assert make_search(filter=f"  {text} ").filter == text
    compile_filter(text)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("eo:cloud_cover <", id="dangling-operator"),
        pytest.param("cloud = = 3", id="double-operator"),
        pytest.param("eo:cloud_cover < 20 AND", id="dangling-and"),
        pytest.param("'unterminated", id="unterminated-string"),
        pytest.param("(a = 1", id="unbalanced-parenthesis"),
    ],
)
def test_invalid_cql2_is_rejected_with_an_example(text):
    with pytest.raises(
        InvalidFilter, match="(?s)is not valid CQL2 text.*Example: eo:cloud_cover < 20"
    ):
        make_search(filter=text)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(None, (), id="none"),
        pytest.param("datetime", (SortKey("datetime"),), id="one-key"),
        pytest.param(
            "-eo:cloud_cover, +platform,id",
            (SortKey("eo:cloud_cover", True), SortKey("platform"), SortKey("id")),
            id="several-keys-with-signs",
        ),
        pytest.param("s2:mgrs-tile.x", (SortKey("s2:mgrs-tile.x"),), id="name-characters"),
    ],
)
def test_parse_sortby(value, expected):
    assert parse_sortby(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("-", id="sign-only"),
        pytest.param("a,,b", id="empty-key"),
        pytest.param("cloud cover", id="space"),
        pytest.param("1abc", id="leading-digit"),
        pytest.param("a;drop", id="semicolon"),
    ],
)
def test_parse_sortby_rejects(value):
    with pytest.raises(InvalidFilter, match="sortby key .* is not valid"):
        parse_sortby(value)


# ---------------------------------------------------------------------------------------
# matching one item


def test_a_missing_property_is_no_match():
    expr = compile_filter("eo:cloud_cover < 20")
    assert matches(expr, "a", {"datetime": "2020-01-01T00:00:00Z"}) is False
    assert matches(expr, "a", {"eo:cloud_cover": 5}) is True


def test_a_cql2_failure_other_than_no_value_is_a_400_not_a_silent_no_match():
    class Failing:  # stands for a cql2 expression that fails for another reason
        def matches(self, doc):
            raise Exception("unsupported operation")  # cql2 raises bare Exceptions

    with pytest.raises(InvalidFilter, match="cannot be evaluated on item 'a'"):
        matches(Failing(), "a", {})


# ---------------------------------------------------------------------------------------
# the linear check of a parsed filter (cql2's schema validation is exponential: never run)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("gsd + 1 < 20", id="arithmetic-on-numbers"),
        pytest.param("gsd DIV 2 = 5 AND gsd % 2 = 0 AND gsd ^ 2 > 1", id="div-mod-power"),
        pytest.param("a IS NOT NULL", id="is-not-null"),
        pytest.param("a NOT IN ('x', 'y')", id="not-in"),
        pytest.param("CASEI(platform) = 'x' AND ACCENTI(a) LIKE 'b%'", id="string-functions"),
        pytest.param("S_INTERSECTS(geometry, POINT(1 2))", id="spatial-point"),
        pytest.param("S_WITHIN(geometry, BBOX(1, 2, 3, 4))", id="spatial-bbox"),
        pytest.param("T_DURING(datetime, INTERVAL('2020-01-01', '..'))", id="temporal-interval"),
        pytest.param("datetime >= DATE('2020-01-01')", id="date"),
        pytest.param("A_CONTAINS(tags, ('a', 'b'))", id="array"),
        pytest.param("flag = TRUE", id="boolean-literal"),
        pytest.param("TRUE", id="constant-condition"),
        pytest.param('{"op": "<", "args": [{"property": "gsd"}, 20]}', id="cql2-json"),
    ],
)
def test_filters_of_every_kind_pass_the_check(text):
    compile_filter(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            "gsd + 'a' > 1", "'+' takes a number, not a string", id="string-in-arithmetic"
        ),
        pytest.param("unknownfunc(gsd) = 1", "unknown function or operator", id="unknown-function"),
        pytest.param("'a' = 1", "compares a number with a string", id="mixed-comparison"),
        pytest.param("gsd", "a filter is a condition", id="bare-property"),
        pytest.param("gsd + 1", "a filter takes a condition", id="arithmetic-is-no-condition"),
        pytest.param("gsd BETWEEN 'a' AND 2", "BETWEEN takes a number", id="between-on-strings"),
        pytest.param("a LIKE 3", "pattern takes a string", id="like-with-a-number"),
        pytest.param("NOT 3", "NOT takes a condition", id="not-of-a-number"),
        pytest.param("datetime > TIMESTAMP('junk')", "not an RFC 3339", id="bad-timestamp"),
        pytest.param(
            "S_INTERSECTS(geometry, 'x')", "S_INTERSECTS takes a geometry", id="spatial-string"
        ),
        pytest.param(
            '{"op": "and", "args": [true]}', "AND takes at least 2 conditions", id="and-of-one"
        ),
        pytest.param('{"op": "<", "args": [1]}', "< takes 2 arguments", id="wrong-arity"),
        pytest.param('{"op": "between", "args": [1, 2]}', "BETWEEN takes 3", id="between-of-two"),
    ],
)
def test_filters_that_fail_the_check_say_why(text, message):
    with pytest.raises(InvalidFilter, match="is not valid CQL2 text") as err:
        compile_filter(text)
    assert message in str(err.value)
