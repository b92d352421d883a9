r"""The limits of quality expressions: what untrusted text may be before anything evaluates it.

See :mod:`tiler.engine.expression` for the stages (text, tree, numbers) and their limits.
"""

from __future__ import annotations

import ast
import math
import operator
import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy
from numexpr.expressions import functions as _NUMEXPR_FUNCTIONS

from tiler.errors import InvalidQualityExpression

# complex numbers and reductions (which would collapse the pixel grid) are out
_LEFT_OUT = ("complex", "conj", "real", "imag", "sum", "prod", "max", "min", "contains")
FUNCTIONS: frozenset[str] = frozenset(_NUMEXPR_FUNCTIONS).difference(_LEFT_OUT)
#: Functions that do not take exactly one argument.
_ARITY: dict[str, int] = dict.fromkeys(
    ("arctan2", "copysign", "fmod", "hypot", "maximum", "minimum", "nextafter"), 2
) | {"where": 3}

#: Named constants usable in expressions (``where(fmask > 3, nan, NDVI)`` excludes pixels).
CONSTANTS: dict[str, float] = {"nan": float("nan"), "inf": float("inf")}

MAX_LENGTH = 2000
#: Parentheses open at once plus signs (``+ - ~``) in a row before them, in the text.
MAX_DEPTH = 32
#: Expression nodes (band names, numbers, operations, calls) in the parsed tree.
MAX_NODES = 256
#: Levels of the parsed tree; numexpr recurses about twice per level when it compiles.
MAX_TREE_DEPTH = 64
#: Integers, written or computed from numbers alone, must convert to float64: at most this.
MAX_INT = int(sys.float_info.max)

#: Printable ASCII and line breaks, but no comments (#) or line continuations (\\).
_CHARS = frozenset(map(chr, range(32, 127))).union("\t\r\n").difference("#\\")
SYNTAX = (
    "band names, numbers, nan, inf, + - * / % **, comparisons (== != < <= > >=), & | ^ ~ "
    "and numexpr functions such as where(), abs(), log()"
)
#: The operators allowed, and how Python computes them on numbers alone.
_OPERATORS: dict[type[ast.AST], Callable[..., Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
    ast.Mod: operator.mod,
    ast.BitAnd: operator.and_,
    ast.BitOr: operator.or_,
    ast.BitXor: operator.xor,
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
    ast.Invert: operator.invert,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}
#: How to name what is not allowed (anything else: its ast class name).
_REFUSED: dict[type[ast.AST], str] = {
    ast.Attribute: "attribute access (.name)",
    ast.BoolOp: "'and'/'or' (use & and | with parentheses)",
    ast.Not: "'not' (use ~)",
    ast.IfExp: "'if ... else' (use where(condition, a, b))",
    ast.FloorDiv: "'//' (use floor(a / b))",
    ast.Starred: "'*' unpacking",
    ast.Tuple: "a tuple (a, b)",
    ast.Subscript: "indexing ([...])",
    ast.Lambda: "lambda",
    ast.NamedExpr: "assignment (:=)",
    ast.JoinedStr: "an f-string",
}

#: Marks a value only known per pixel (it reads a band or a named constant).
_PIXELS = object()


def quote(text: str, limit: int = 60) -> str:
    """``text`` for a message: repr'd (so control characters show), cut at ``limit``."""
    return repr(text if len(text) <= limit else text[:limit] + "...")


def check_text(text: str, bands: Sequence[str]) -> None:
    """Refuse text that is empty, too long, not plain ASCII or nested too deeply."""
    if not text or not text.strip():
        raise InvalidQualityExpression(
            f"quality expression is empty; use a band name or an expression over: "
            f"{', '.join(bands)}"
        )
    if len(text) > MAX_LENGTH:
        raise InvalidQualityExpression(
            f"quality expression is {len(text)} characters long; at most {MAX_LENGTH} allowed"
        )
    for column, char in enumerate(text, 1):
        if char not in _CHARS:
            raise InvalidQualityExpression(
                f"quality expression {quote(text)}: character {char!r} (U+{ord(char):04X}) at "
                f"column {column} is not allowed; use {SYNTAX} (in ASCII)"
            )
    # nesting = open brackets + the signs right before each + the current run of signs
    opened: list[int] = []
    run = total = 0
    for char in text:
        if char in "+-~":
            run += 1
        elif char in "([{":
            opened.append(run + 1)
            total += run + 1
            run = 0
        elif char in ")]}":
            total -= opened.pop() if opened else 0
            run = 0
        elif not char.isspace():
            run = 0
        if total + run > MAX_DEPTH:
            raise InvalidQualityExpression(
                f"quality expression {quote(text)} nests parentheses and signs more than "
                f"{MAX_DEPTH} deep; at most {MAX_DEPTH} allowed"
            )


def check_shape(text: str, tree: ast.Expression) -> None:
    """Refuse a tree with too many nodes or levels, without recursion."""
    nodes = 0
    stack: list[tuple[ast.AST, int]] = [(tree.body, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, ast.expr):
            nodes += 1
            if depth > MAX_TREE_DEPTH:
                raise InvalidQualityExpression(
                    f"quality expression {quote(text)} nests more than {MAX_TREE_DEPTH} "
                    f"operations (a chain a+b+c counts one per operator); at most "
                    f"{MAX_TREE_DEPTH} allowed"
                )
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    if nodes > MAX_NODES:
        raise InvalidQualityExpression(
            f"quality expression {quote(text)} has {nodes} parts (names, numbers, operations, "
            f"calls); at most {MAX_NODES} allowed"
        )


class Checker:
    """Walks a bounded tree: whitelist, names, calls, and the parts made only of numbers."""

    def __init__(self, text: str, bands: Sequence[str]) -> None:
        self.text = text
        self.bands = bands
        self.used: list[str] = []
        self.constants: list[str] = []

    def fail(self, what: str) -> InvalidQualityExpression:
        """A 400 saying what is wrong with the text."""
        return InvalidQualityExpression(f"quality expression {quote(self.text)}: {what}")

    def source(self, node: ast.AST) -> str:
        """The text of ``node`` (quoted, shortened)."""
        return quote(ast.get_source_segment(self.text, node) or type(node).__name__, 40)

    def refuse(self, node: ast.AST) -> InvalidQualityExpression:
        """A 400 for a kind of node that is not allowed, naming what is."""
        what = _REFUSED.get(type(node), type(node).__name__)
        return self.fail(f"{what} is not allowed; use {SYNTAX}")

    def number(self, node: ast.AST, compute: Callable[[], Any]) -> Any:
        """The value numexpr's Python computation gives a part made only of numbers."""
        try:
            with numpy.errstate(all="ignore"):
                value = compute()
        # what Python and numpy raise on numbers: / or % by zero, float overflow
        # (ArithmeticError), ~ or & on a float, a ufunc on a huge int (TypeError), numpy's
        # integer to a negative integer power (ValueError)
        except (ArithmeticError, TypeError, ValueError) as exc:
            raise self.fail(f"{self.source(node)} cannot be computed: {exc}") from None
        if isinstance(value, bool | numpy.bool_ | numpy.integer | numpy.floating | float):
            return value
        if isinstance(value, int):
            if abs(value) > MAX_INT:
                raise self.too_large(node)
            return value
        raise self.fail(f"{self.source(node)} is not a real number")

    def too_large(self, node: ast.AST) -> InvalidQualityExpression:
        """A 400 for a part made of numbers whose value is beyond float64."""
        return self.fail(
            f"{self.source(node)} is too large: numbers and parts made only of numbers must "
            f"stay within +-{float(MAX_INT):.4g} (the float64 range)"
        )

    def visit(self, node: ast.AST) -> Any:
        """The node's value when it is made only of numbers, else ``_PIXELS``."""
        if isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or not isinstance(node.value, int | float):
                raise self.fail(
                    f"{self.source(node)}: only real numbers are allowed as constants "
                    "(no strings, True/False, None or complex numbers)"
                )
            return self.number(node, lambda: node.value)
        if isinstance(node, ast.Name):
            return self.name(node.id)
        if isinstance(node, ast.UnaryOp):
            unary = _OPERATORS.get(type(node.op))
            if unary is None:
                raise self.refuse(node.op)
            operand = self.visit(node.operand)
            return _PIXELS if operand is _PIXELS else self.number(node, lambda: unary(operand))
        if isinstance(node, ast.BinOp):
            binary = _OPERATORS.get(type(node.op))
            if binary is None:
                raise self.refuse(node.op)
            left, right = self.visit(node.left), self.visit(node.right)
            if left is _PIXELS or right is _PIXELS:
                return _PIXELS
            if isinstance(node.op, ast.Pow) and _power_bits(left, right) > 1024:
                raise self.too_large(node)
            return self.number(node, lambda: binary(left, right))
        if isinstance(node, ast.Compare):
            if len(node.ops) != 1:
                raise self.fail(
                    "chained comparisons are not supported; combine them with & and "
                    "parentheses, e.g. (0 < B2) & (B2 < 1)"
                )
            compare = _OPERATORS.get(type(node.ops[0]))
            if compare is None:
                raise self.refuse(node.ops[0])
            left, right = self.visit(node.left), self.visit(node.comparators[0])
            if left is _PIXELS or right is _PIXELS:
                return _PIXELS
            return self.number(node, lambda: compare(left, right))
        if isinstance(node, ast.Call):
            return self.call(node)
        raise self.refuse(node)

    def name(self, name: str) -> Any:
        """Check a name: a band (read per pixel) or a named constant."""
        if "__" in name:
            raise self.fail(f"names with double underscores ({name!r}) are not allowed")
        if name in _NUMEXPR_FUNCTIONS:
            # numexpr binds these names to its functions, whatever the bands are called
            also = " (a band of that name cannot be used in expressions)"
            raise self.fail(
                f"{name!r} is a function name; call it as {name}(...)"
                + (also if name in self.bands else "")
            )
        if name in self.bands:
            if name not in self.used:
                self.used.append(name)
        elif name in CONSTANTS:
            if name not in self.constants:
                self.constants.append(name)
        else:
            raise self.fail(
                f"unknown band {name!r}; the collection's bands are: {', '.join(self.bands)} "
                f"(and the constants {', '.join(CONSTANTS)})"
            )
        return _PIXELS

    def call(self, node: ast.Call) -> Any:
        """Check a call: a known function with its number of arguments."""
        func = node.func.id if isinstance(node.func, ast.Name) else None
        if func is None or func not in FUNCTIONS:
            name = func if func is not None else self.source(node.func)
            raise self.fail(f"unknown function {name!r}; allowed: {', '.join(sorted(FUNCTIONS))}")
        if node.keywords:
            raise self.fail("keyword arguments are not allowed")
        args = [self.visit(arg) for arg in node.args]
        arity = _ARITY.get(func, 1)
        if len(args) != arity:
            raise self.fail(f"{func}() takes {arity} argument{'s' * (arity > 1)}, got {len(args)}")
        if func == "where" and args[0] is not _PIXELS:
            raise self.fail("the condition of where() must read a band")
        if any(arg is _PIXELS for arg in args):
            return _PIXELS
        # numexpr applies its numpy function to numbers right away; so do we
        return self.number(node, lambda: _NUMEXPR_FUNCTIONS[func](*args).value)


def _power_bits(base: Any, exponent: Any) -> float:
    """Bits of ``base ** exponent`` when both are integers (computed exactly), else 0."""
    if not isinstance(base, int | numpy.integer) or not isinstance(exponent, int | numpy.integer):
        return 0.0  # a float power is one C call: it overflows or not, quickly
    magnitude, power = abs(int(base)), int(exponent)
    return power * math.log2(magnitude) if power > 0 and magnitude > 1 else 0.0
