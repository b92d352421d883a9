"""Quality expressions: parsed with :mod:`ast` against a whitelist, evaluated by numexpr.

An expression is a band name (``NDVI``), or arithmetic over band names, numbers, comparisons,
``&``/``|``/``~`` and numexpr's functions (``-MSK_CLDPRB``, ``(B08-B04)/(B08+B04)``,
``where(SCL==4, 1, 0)``). It is never passed to Python's ``eval``.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numexpr
import numpy
from numexpr.expressions import functions as _NUMEXPR_FUNCTIONS

from tiler.errors import InvalidQualityExpression

FUNCTIONS: frozenset[str] = frozenset(_NUMEXPR_FUNCTIONS) - {
    # complex numbers and reductions (which would collapse the pixel grid) are out
    "complex",
    "conj",
    "real",
    "imag",
    "sum",
    "prod",
    "max",
    "min",
    "contains",
}

_NODES: tuple[type[ast.AST], ...] = (
    ast.Expression,
    ast.BinOp,
    ast.UnaryOp,
    ast.Compare,
    ast.Call,
    ast.Name,
    ast.Load,
    ast.Constant,
    ast.Add,
    ast.Sub,
    ast.Mult,
    ast.Div,
    ast.Pow,
    ast.Mod,
    ast.USub,
    ast.UAdd,
    ast.Invert,
    ast.BitAnd,
    ast.BitOr,
    ast.BitXor,
    ast.Eq,
    ast.NotEq,
    ast.Lt,
    ast.LtE,
    ast.Gt,
    ast.GtE,
)

MAX_LENGTH = 2000

#: Named constants usable in expressions (``where(fmask > 3, nan, NDVI)`` excludes pixels).
CONSTANTS: dict[str, float] = {"nan": float("nan"), "inf": float("inf")}


@dataclass(frozen=True)
class Expression:
    """A validated expression and the band names it reads, in first-use order."""

    text: str
    bands: tuple[str, ...]
    constants: tuple[str, ...] = ()

    def evaluate(self, values: Mapping[str, numpy.ndarray]) -> numpy.ndarray:
        """Evaluate over float64 arrays keyed by band name; the result is float64.

        Args:
            values: one array per name in :attr:`bands` (all of one shape).

        Returns:
            The expression's value per element, as float64 (NaN/inf kept as computed).
        """
        local: dict[str, Any] = {
            name: numpy.asarray(values[name], dtype="float64") for name in self.bands
        }
        if len(self.bands) == 1 and self.text.strip() == self.bands[0]:
            return local[self.bands[0]]
        for name in self.constants:
            local[name] = numpy.float64(CONSTANTS[name])
        result = numexpr.evaluate(self.text, local_dict=local, global_dict={})
        # + 0.0 turns IEEE negative zero (e.g. -MSK_CLDPRB where clear) into 0
        return numpy.asarray(result).astype("float64", copy=False) + 0.0

    def upper_bound(self, ranges: Mapping[str, tuple[float, float]]) -> float | None:
        """A value the expression can never exceed, by interval arithmetic, or None.

        Args:
            ranges: (low, high) of every band the expression reads (may be infinite).

        Returns:
            The bound, or None when it is unbounded or the expression is not plain
            arithmetic over bands and numbers.
        """
        try:
            tree = ast.parse(self.text, mode="eval")
            _, hi = _interval(tree.body, ranges)
        except _Unbounded:
            return None
        return hi if math.isfinite(hi) else None


class _Unbounded(Exception):
    """The expression has no interval we can derive."""


def _interval(node: ast.AST, ranges: Mapping[str, tuple[float, float]]) -> tuple[float, float]:
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return float(node.value), float(node.value)
    if isinstance(node, ast.Name) and node.id in ranges:
        return ranges[node.id]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        lo, hi = _interval(node.operand, ranges)
        return (-hi, -lo) if isinstance(node.op, ast.USub) else (lo, hi)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Sub | ast.Mult):
        a, b = _interval(node.left, ranges), _interval(node.right, ranges)
        if isinstance(node.op, ast.Add):
            return a[0] + b[0], a[1] + b[1]
        if isinstance(node.op, ast.Sub):
            return a[0] - b[1], a[1] - b[0]
        with numpy.errstate(invalid="ignore"):
            products = [x * y for x in a for y in b]
        if any(math.isnan(p) for p in products):
            raise _Unbounded
        return min(products), max(products)
    raise _Unbounded


def _allowed(names: Sequence[str]) -> str:
    return ", ".join(names)


def parse(text: str, bands: Sequence[str]) -> Expression:
    """Validate ``text`` against the collection's band names.

    Args:
        text: the expression, e.g. ``-MSK_CLDPRB``.
        bands: band names the collection has.

    Returns:
        The parsed :class:`Expression`.

    Raises:
        InvalidQualityExpression: bad syntax, an operator or function that is not allowed,
            an unknown band, or no band at all.
    """
    if not text or not text.strip():
        raise InvalidQualityExpression(
            f"quality expression is empty; use a band name or an expression over: {_allowed(bands)}"
        )
    if len(text) > MAX_LENGTH:
        raise InvalidQualityExpression(f"quality expression longer than {MAX_LENGTH} chars")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise InvalidQualityExpression(
            f"quality expression {text!r} is not valid: {exc.msg} at column "
            f"{exc.offset}. Use band names ({_allowed(bands)}), numbers, + - * / ** %, "
            "comparisons, & | ~ and numexpr functions such as where(), abs(), log()"
        ) from None

    used: list[str] = []
    constants: list[str] = []
    known = set(bands)
    for node in ast.walk(tree):
        if not isinstance(node, _NODES):
            raise InvalidQualityExpression(
                f"quality expression {text!r}: {type(node).__name__} is not allowed "
                "(allowed: band names, numbers, arithmetic, comparisons, & | ~, "
                "numexpr functions)"
            )
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
                name = getattr(node.func, "id", ast.unparse(node.func))
                raise InvalidQualityExpression(
                    f"quality expression {text!r}: unknown function {name!r}; allowed: "
                    f"{_allowed(sorted(FUNCTIONS))}"
                )
            if node.keywords:
                raise InvalidQualityExpression(
                    f"quality expression {text!r}: keyword arguments are not allowed"
                )
        elif isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or not isinstance(node.value, int | float):
                raise InvalidQualityExpression(
                    f"quality expression {text!r}: only numbers are allowed as constants"
                )
        elif isinstance(node, ast.Compare) and len(node.ops) != 1:
            raise InvalidQualityExpression(
                f"quality expression {text!r}: chained comparisons are not supported; "
                "combine them with & and parentheses"
            )

    function_names = {
        n.func.id
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id not in function_names:
            if node.id in CONSTANTS and node.id not in known:
                if node.id not in constants:
                    constants.append(node.id)
                continue
            if node.id not in known:
                raise InvalidQualityExpression(
                    f"quality expression {text!r}: unknown band {node.id!r}; "
                    f"the collection's bands are: {_allowed(bands)}"
                )
            if node.id not in used:
                used.append(node.id)
    if not used:
        raise InvalidQualityExpression(
            f"quality expression {text!r} reads no band; it must use at least one of: "
            f"{_allowed(bands)}"
        )
    # numexpr must compile it too (catches e.g. wrong function arity).
    try:
        numexpr.NumExpr(
            text.strip(), signature=[(name, numpy.float64) for name in [*used, *constants]]
        )
    except Exception as exc:  # numexpr raises several types for bad input
        raise InvalidQualityExpression(
            f"quality expression {text!r} cannot be evaluated: {exc}"
        ) from None
    return Expression(text=text.strip(), bands=tuple(used), constants=tuple(constants))
