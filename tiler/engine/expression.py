r"""Quality expressions: untrusted text, bounded, parsed with :mod:`ast`, compiled by numexpr.

An expression is a band name (``NDVI``), or arithmetic over band names, numbers, comparisons,
``&``/``|``/``^``/``~`` and numexpr's functions (``-MSK_CLDPRB``, ``(B08-B04)/(B08+B04)``,
``where(SCL==4, 1, 0)``). It is never passed to Python's ``eval`` by this module; numexpr
compiles the checked text itself (and computes its parts made only of numbers in Python).

The text comes from a query parameter, so everything is bounded before the next stage sees it:

1. the text: at most :data:`MAX_LENGTH` characters, printable ASCII only (no NUL, no unicode
   lookalikes of band names, no ``#`` or ``\``), and a cheap scan keeps the nesting of
   brackets plus runs of signs (``-(-(~...``) within :data:`MAX_DEPTH`, before
   :func:`ast.parse` runs;
2. the tree: at most :data:`MAX_NODES` expression nodes and :data:`MAX_TREE_DEPTH` levels (a
   chain ``a+b+c`` adds one level per operator), so no later recursion (ours, numexpr's) can
   run out of stack and numexpr's compile time stays in milliseconds;
3. the numbers: numexpr computes parts made only of numbers (``9**9**9``) with Python's exact
   integers, which can take forever. We compute those parts first, the same way, and refuse an
   integer beyond :data:`MAX_INT` (about 1.8e308, the float64 range) after each step; a power
   of integers is refused before it is computed when ``exponent * log2(base)`` exceeds 1024
   bits, so no step handles more than about 2048 bits. A part that divides by zero, overflows
   a float or is complex (``(-8)**0.5``) is refused too. Floats may still be ``inf``/``nan``
   (``1e999``, the names ``inf`` and ``nan``). A power whose base or exponent reads a band
   (``2**B2``, ``B2**1e300``) is computed per pixel in float64 and needs no limit. Nothing is
   rewritten: numexpr gets the text as written, so an accepted expression gives exactly what
   numexpr gives.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numexpr
import numpy
import numpy.typing as npt

from tiler.engine.guard import (
    CONSTANTS,
    FUNCTIONS,
    MAX_DEPTH,
    MAX_INT,
    MAX_LENGTH,
    MAX_NODES,
    MAX_TREE_DEPTH,
    SYNTAX,
    Checker,
    check_shape,
    check_text,
    quote,
)
from tiler.errors import InvalidQualityExpression

__all__ = [
    "CONSTANTS",
    "FUNCTIONS",
    "MAX_DEPTH",
    "MAX_INT",
    "MAX_LENGTH",
    "MAX_NODES",
    "MAX_TREE_DEPTH",
    "Expression",
    "parse",
]


@dataclass(frozen=True)
class Expression:
    """A validated expression and the band names it reads, in first-use order."""

    text: str
    bands: tuple[str, ...]
    constants: tuple[str, ...] = ()

    def evaluate(self, values: Mapping[str, npt.ArrayLike]) -> npt.NDArray[numpy.float64]:
        """Evaluate over float64 arrays keyed by band name; the result is float64.

        Args:
            values: one array per name in :attr:`bands` (all of one shape).

        Returns:
            The expression's value per element, as a new float64 array (NaN/inf kept as
            computed, negative zero turned into zero).
        """
        local: dict[str, Any] = {
            name: numpy.asarray(values[name], dtype="float64") for name in self.bands
        }
        if len(self.bands) == 1 and self.text.strip() == self.bands[0]:
            result: npt.NDArray[Any] = local[self.bands[0]]
        else:
            for name in self.constants:
                local[name] = numpy.float64(CONSTANTS[name])
            result = numpy.asarray(numexpr.evaluate(self.text, local_dict=local, global_dict={}))
        # + 0.0 turns IEEE negative zero (e.g. -MSK_CLDPRB where clear) into 0 and copies
        out: npt.NDArray[numpy.float64] = result.astype("float64", copy=False) + 0.0
        return out

    def upper_bound(self, ranges: Mapping[str, tuple[float, float]]) -> float | None:
        """A value the expression can never exceed, by interval arithmetic, or None.

        Sound in float64: each bound is one rounded operation on the bounds of its operands,
        and rounding is monotonic.

        Args:
            ranges: (low, high) of every band the expression reads (may be infinite).

        Returns:
            The bound, or None when it is unbounded or the expression is not plain
            arithmetic (+ - * and unary -) over bands and numbers.
        """
        try:
            tree = ast.parse(self.text, mode="eval")
            _, hi = _interval(tree.body, ranges)
        except _Unbounded:
            return None
        return hi + 0.0 if math.isfinite(hi) else None


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


def parse(text: str, bands: Sequence[str]) -> Expression:
    """Validate ``text`` against the collection's band names.

    Args:
        text: the expression, e.g. ``-MSK_CLDPRB``.
        bands: band names the collection has.

    Returns:
        The parsed :class:`Expression`; its bands are in the order the text first uses them.

    Raises:
        InvalidQualityExpression: bad syntax, an operator or function that is not allowed,
            an unknown band, no band at all, or text beyond the limits in the module docstring.
    """
    check_text(text, bands)
    text = text.strip()
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise InvalidQualityExpression(
            f"quality expression {quote(text)} is not valid: {exc.msg} at column "
            f"{exc.offset}. Use {SYNTAX}"
        ) from None
    check_shape(text, tree)
    checker = Checker(text, bands)
    checker.visit(tree.body)
    if not checker.used:
        raise InvalidQualityExpression(
            f"quality expression {quote(text)} reads no band; it must use at least one of: "
            f"{', '.join(bands)}"
        )
    names = [*checker.used, *checker.constants]
    try:
        with numpy.errstate(all="ignore"):
            numexpr.NumExpr(text, signature=[(name, numpy.float64) for name in names])
    # what numexpr raises for a checked text it cannot compile: no opcode for these argument
    # types, e.g. where(B2, 1, 0) or ~B2 (NotImplementedError, a RuntimeError, as is "too many
    # buffers"), an integer to a negative power or an integer constant too large for int64
    # (ValueError, OverflowError), operands it cannot combine (TypeError)
    except (ArithmeticError, TypeError, ValueError, RuntimeError) as exc:
        hint = ""
        if isinstance(exc, NotImplementedError):
            hint = " (& | ^ ~ and the condition of where() take comparisons, e.g. B2 > 0)"
        raise InvalidQualityExpression(
            f"quality expression {quote(text)} cannot be evaluated: {exc}{hint}"
        ) from None
    return Expression(text=text, bands=tuple(checker.used), constants=tuple(checker.constants))
