"""A linear check of a parsed CQL2 filter: known operators, their arity and operand types.

``cql2``'s own ``Expr.validate()`` runs a JSON-schema validation that backtracks
exponentially on arithmetic with non-numeric operands (``gsd + 'a' + 'a' + 'a' > 1`` took
82 s and ``+ 'a'`` once more exhausted 24 GB) and holds the GIL all the while. This walk
visits each node of the CQL2-JSON tree once, so its cost is bounded by the text's length
(which :func:`tiler.catalog.filters.guard_filter_text` bounds first).

Each node has a kind: ``bool``, ``number``, ``string``, ``time`` (a timestamp, a date or an
interval), ``geometry``, ``array``, or ``any`` (a property, whose type is the item's).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tiler.errors import InvalidFilter, quoted

#: what a value of each kind looks like in a message
_NAMES = {
    "bool": "a condition or TRUE/FALSE",
    "number": "a number",
    "string": "a string",
    "time": "a TIMESTAMP, DATE or INTERVAL",
    "geometry": "a geometry (e.g. POINT(1 2), BBOX(...))",
    "array": "an array, e.g. ('a', 'b')",
    "any": "a property",
}

_LOGICAL = frozenset({"and", "or"})
_COMPARISONS = frozenset({"=", "<>", "<", "<=", ">", ">="})
_ARITHMETIC = frozenset({"+", "-", "*", "/", "%", "^", "div"})
_SPATIAL = frozenset(
    {
        "s_contains",
        "s_crosses",
        "s_disjoint",
        "s_equals",
        "s_intersects",
        "s_overlaps",
        "s_touches",
        "s_within",
    }
)
_TEMPORAL = frozenset(
    {
        "t_after",
        "t_before",
        "t_contains",
        "t_disjoint",
        "t_during",
        "t_equals",
        "t_finishedBy",
        "t_finishes",
        "t_intersects",
        "t_meets",
        "t_metBy",
        "t_overlappedBy",
        "t_overlaps",
        "t_startedBy",
        "t_starts",
    }
)
_ARRAY = frozenset({"a_containedBy", "a_contains", "a_equals", "a_overlaps"})
_STRING_FUNCTIONS = frozenset({"casei", "accenti"})
_GEOJSON_TYPES = frozenset(
    {
        "Point",
        "MultiPoint",
        "LineString",
        "MultiLineString",
        "Polygon",
        "MultiPolygon",
        "GeometryCollection",
    }
)

#: every operator and function a filter may use, for the message about an unknown one
KNOWN = sorted(
    _LOGICAL
    | {"not", "like", "between", "in", "isNull"}
    | _COMPARISONS
    | _ARITHMETIC
    | _SPATIAL
    | _TEMPORAL
    | _ARRAY
    | _STRING_FUNCTIONS
)
#: operator names as cql2 writes them, by their lower-case spelling
_CANONICAL = {name.lower(): name for name in KNOWN}


class _Walk:
    """One check of one tree; ``instant`` validates timestamp and date text."""

    def __init__(self, instant: Callable[[str], object]) -> None:
        self.instant = instant

    def kind(self, node: Any) -> str:
        """The kind of ``node``, its children checked.

        Raises:
            InvalidFilter: an unknown operator, a wrong number of arguments, or an operand
                of the wrong kind.
        """
        if isinstance(node, bool):
            return "bool"
        if isinstance(node, int | float):
            return "number"
        if isinstance(node, str):
            return "string"
        if isinstance(node, list):
            for value in node:
                self.expect(value, {"number", "string", "bool", "time", "array", "any"}, "[]")
            return "array"
        if not isinstance(node, dict):
            raise InvalidFilter(f"unexpected value {type(node).__name__}")
        if "op" in node:
            return self._operation(node)
        if set(node) == {"property"} and isinstance(node["property"], str):
            return "any"
        if set(node) in ({"timestamp"}, {"date"}):
            self._instant(next(iter(node.values())))
            return "time"
        if set(node) == {"interval"}:
            ends = node["interval"]
            if not (isinstance(ends, list) and len(ends) == 2):
                raise InvalidFilter("INTERVAL takes 2 values: a start and an end")
            for end in ends:
                if isinstance(end, str):
                    if end != "..":
                        self._instant(end)
                else:
                    self.expect(end, {"time", "any"}, "INTERVAL")
            return "time"
        if set(node) == {"bbox"}:
            box = node["bbox"]
            if not (
                isinstance(box, list)
                and len(box) in (4, 6)
                and all(isinstance(v, int | float) and not isinstance(v, bool) for v in box)
            ):
                raise InvalidFilter("BBOX takes 4 or 6 numbers")
            return "geometry"
        if node.get("type") in _GEOJSON_TYPES:
            return "geometry"
        raise InvalidFilter(f"unexpected object with keys {sorted(map(str, node))[:8]}")

    def expect(self, node: Any, kinds: set[str], where: str) -> str:
        """Check ``node``; its kind must be one of ``kinds`` (``any`` always fits)."""
        kind = self.kind(node)
        if kind != "any" and kind not in kinds:
            allowed = " or ".join(_NAMES[k] for k in sorted(kinds) if k != "any")
            raise InvalidFilter(f"{where} takes {allowed}, not {_NAMES[kind]}")
        return kind

    def _instant(self, text: object) -> None:
        if not isinstance(text, str):
            raise InvalidFilter("TIMESTAMP and DATE take text")
        try:
            self.instant(text)
        except ValueError:
            raise InvalidFilter(
                f"{quoted(text, 40)} is not an RFC 3339 timestamp or date, e.g. "
                "TIMESTAMP('2020-07-01T00:00:00Z') or DATE('2020-07-01')"
            ) from None

    def _operation(self, node: dict[str, Any]) -> str:
        op, args = node.get("op"), node.get("args")
        if set(node) != {"op", "args"} or not isinstance(op, str) or not isinstance(args, list):
            raise InvalidFilter("an operation is {'op': name, 'args': [...]}")
        name = _CANONICAL.get(op.lower())
        if name is None:
            raise InvalidFilter(
                f"unknown function or operator {quoted(op, 40)}; allowed: {', '.join(KNOWN)}"
            )
        shown = name.upper()

        def arity(*counts: int) -> None:
            if len(args) not in counts:
                want = " or ".join(map(str, counts))
                raise InvalidFilter(f"{shown} takes {want} arguments, not {len(args)}")

        if name in _LOGICAL:
            if len(args) < 2:
                raise InvalidFilter(f"{shown} takes at least 2 conditions")
            for arg in args:
                self.expect(arg, {"bool"}, shown)
            return "bool"
        if name == "not":
            arity(1)
            self.expect(args[0], {"bool"}, shown)
            return "bool"
        if name in _COMPARISONS:
            arity(2)
            scalars = {"number", "string", "bool", "time"}
            kinds = {self.expect(arg, scalars, f"'{name}'") for arg in args} - {"any"}
            if len(kinds) > 1:
                a, b = (_NAMES[k] for k in sorted(kinds))
                raise InvalidFilter(f"'{name}' compares {a} with {b}: use values of one type")
            return "bool"
        if name in _ARITHMETIC:
            arity(2)
            for arg in args:
                self.expect(arg, {"number"}, f"'{name}'")
            return "number"
        if name == "like":
            arity(2)
            self.expect(args[0], {"string"}, shown)
            self.expect(args[1], {"string"}, f"{shown}'s pattern")
            return "bool"
        if name == "between":
            arity(3)
            for arg in args:
                self.expect(arg, {"number"}, shown)
            return "bool"
        if name == "in":
            arity(2)
            self.expect(args[0], {"number", "string", "bool", "time"}, shown)
            if not isinstance(args[1], list):
                raise InvalidFilter("IN takes a list of values, e.g. platform IN ('a', 'b')")
            self.kind(args[1])
            return "bool"
        if name == "isNull":
            arity(1)
            self.kind(args[0])
            return "bool"
        if name in _STRING_FUNCTIONS:
            arity(1)
            self.expect(args[0], {"string"}, shown)
            return "string"
        kind = "geometry" if name in _SPATIAL else "time" if name in _TEMPORAL else "array"
        arity(2)
        for arg in args:
            self.expect(arg, {kind}, shown)
        return "bool"


def check_tree(tree: Any, instant: Callable[[str], object]) -> None:
    """Check a CQL2-JSON filter in one pass: it must be a condition built of known parts.

    Args:
        tree: the parsed filter (``cql2.Expr(text).to_json()``).
        instant: parses timestamp and date text, raising ValueError when it is not one.

    Raises:
        InvalidFilter: the first problem found (unknown operator or function, wrong number
            of arguments, an operand of the wrong type, a malformed literal).
    """
    if _Walk(instant).expect(tree, {"bool"}, "a filter") == "any":
        raise InvalidFilter("a filter is a condition, e.g. eo:cloud_cover < 20, not a property")
