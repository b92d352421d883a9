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

One rewrite only: a common name (``red``, ``nir``; ``aliases``) that is not a band name is
replaced in the text by the one band name it stands for, before anything else is checked,
so :attr:`Expression.text` and :attr:`Expression.bands` name real bands and the same
mosaic has one text whichever names a request used.
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numexpr
import numpy
import numpy.typing as npt
from numexpr.expressions import functions as numexpr_functions

from tiler.engine.limits import (
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
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "where"
        and len(node.args) == 3
    ):
        # one of the two branches per pixel (the condition only chooses); a branch that is
        # the constant nan or inf is never a candidate, so it bounds nothing
        branches = [_interval(arg, ranges) for arg in node.args[1:] if not _never_valid(arg)]
        if not branches:
            raise _Unbounded
        return min(b[0] for b in branches), max(b[1] for b in branches)
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


def _never_valid(node: ast.AST) -> bool:
    """The constant ``nan`` or ``inf``: never a finite quality."""
    return isinstance(node, ast.Name) and node.id in CONSTANTS


def _tree(text: str) -> ast.Expression:
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise InvalidQualityExpression(
            f"quality expression {quote(text)} is not valid: {exc.msg} at column "
            f"{exc.offset}. Use {SYNTAX}"
        ) from None
    check_shape(text, tree)
    return tree


_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def _line_starts(text: str) -> list[int]:
    """Offset of each line's first character, lines broken as :mod:`ast` breaks them."""
    return [0, *(m.end() for m in _LINE_BREAK.finditer(text))]


def _unalias(
    text: str, tree: ast.Expression, bands: Sequence[str], aliases: Mapping[str, Sequence[str]]
) -> str:
    """``text`` with every common name that is not a band name replaced by its band.

    Raises:
        InvalidQualityExpression: an unknown name (the bands and common names listed), a
            common name of several bands (listed), or of a band whose name cannot be
            written in an expression.
    """
    # names the checker refuses for what they are (calls, attributes, dunders, constants)
    skip = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    skip |= {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    spans: list[tuple[int, int, int, int, str]] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Name) or id(node) in skip or node.id in bands:
            continue
        named = aliases.get(node.id)
        if named is None:
            if node.id in CONSTANTS or node.id in numexpr_functions or "__" in node.id:
                continue
            usable = [f"{a} ({n[0]})" for a, n in aliases.items() if len(n) == 1]
            raise InvalidQualityExpression(
                f"quality expression {quote(text)}: unknown band {node.id!r}; the "
                f"collection's bands are: {', '.join(bands)}; common names: "
                f"{', '.join(usable) or '(none of one band)'} (and the constants "
                f"{', '.join(CONSTANTS)})"
            )
        if len(named) > 1:
            raise InvalidQualityExpression(
                f"quality expression {quote(text)}: {node.id!r} is a common name of "
                f"{len(named)} bands: {', '.join(named)}; name one of them"
            )
        band = named[0]
        if not (band.isascii() and band.isidentifier()) or band in numexpr_functions:
            raise InvalidQualityExpression(
                f"quality expression {quote(text)}: {node.id!r} stands for the band "
                f"{band!r}, whose name cannot be written in an expression"
            )
        end_line = node.end_lineno if node.end_lineno is not None else node.lineno
        end_col = node.end_col_offset if node.end_col_offset is not None else node.col_offset
        spans.append((node.lineno, node.col_offset, end_line, end_col, band))
    if not spans:
        return text
    starts = _line_starts(text)
    out = text
    # from the end, so earlier offsets stay valid (ASCII text: columns are characters)
    for line, col, end_line, end_col, band in sorted(spans, reverse=True):
        begin, end = starts[line - 1] + col, starts[end_line - 1] + end_col
        out = out[:begin] + band + out[end:]
    return out


def parse(
    text: str, bands: Sequence[str], aliases: Mapping[str, Sequence[str]] | None = None
) -> Expression:
    """Validate ``text`` against the collection's band names.

    Args:
        text: the expression, e.g. ``-MSK_CLDPRB``.
        bands: band names the collection has.
        aliases: common names that are not band names, each with the bands declaring it
            (:attr:`~tiler.catalog.models.CollectionInfo.aliases`); a common name of one
            band is replaced by that band's name.

    Returns:
        The parsed :class:`Expression` over band names (never common names); its bands are
        in the order the text first uses them.

    Raises:
        InvalidQualityExpression: bad syntax, an operator or function that is not allowed,
            an unknown band, a common name of several bands, no band at all, or text
            beyond the limits in the module docstring.
    """
    check_text(text, bands)
    text = text.strip()
    tree = _tree(text)
    if aliases:
        rewritten = _unalias(text, tree, bands, aliases)
        if rewritten != text:
            # only names changed: the brackets, signs and parts are those checked above
            text = rewritten
            tree = _tree(text)
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
