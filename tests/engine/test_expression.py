"""Quality expressions: exact values against an independent oracle, and hostile text.

The oracle is written here with numpy and :mod:`math`, not with the module: numexpr calls the
C library's ``pow``/``log``/``atan2``, which Python's :mod:`math` also calls, while numpy's own
SIMD versions may differ in the last bit, so transcendental functions are checked against
:mod:`math` element by element.
"""

from __future__ import annotations

import inspect
import json
import math
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy
import pytest

from tiler.engine.expression import (
    CONSTANTS,
    FUNCTIONS,
    MAX_DEPTH,
    MAX_LENGTH,
    MAX_NODES,
    MAX_TREE_DEPTH,
    Expression,
    parse,
)
from tiler.errors import InvalidQualityExpression

BANDS = ("B2", "B3", "B4", "B8", "SCL", "MSK_CLDPRB")
NAN, INF = math.nan, math.inf
Arrays = dict[str, numpy.ndarray]


def _data() -> Arrays:
    rng = numpy.random.default_rng(20240601)
    n = 400
    b2 = rng.uniform(-2000, 12000, n)
    b2[:6] = [0.0, -0.0, NAN, INF, -INF, 1.0]
    b3 = rng.uniform(0, 10000, n)
    b3[:6] = [-0.0, 0.0, 5.0, NAN, 2.0, INF]
    b4 = rng.integers(0, 10000, n).astype("float64")
    b8 = rng.integers(0, 10000, n).astype("float64")
    b4[:3], b8[:3] = [0.0, 5.0, 0.0], [0.0, 0.0, 7.0]
    msk = rng.integers(0, 101, n).astype("float64")
    msk[:3] = 0.0
    scl = rng.integers(0, 12, n).astype("float64")
    return {"B2": b2, "B3": b3, "B4": b4, "B8": b8, "SCL": scl, "MSK_CLDPRB": msk}


DATA = _data()


def libm(func: Callable[..., float], *arrays: numpy.ndarray) -> numpy.ndarray:
    """``func`` from :mod:`math` applied element by element."""
    return numpy.array([func(*values) for values in zip(*arrays, strict=True)], "float64")


def no_negative_zero(a: numpy.ndarray) -> numpy.ndarray:
    return numpy.where(a == 0, 0.0, a)


def same_bits(a: numpy.ndarray, b: numpy.ndarray) -> bool:
    return a.dtype == b.dtype and a.tobytes() == b.tobytes()


VALID = [
    pytest.param("B8", lambda v: no_negative_zero(v["B8"]), id="band_alone"),
    pytest.param("(B8-B4)/(B8+B4)", lambda v: (v["B8"] - v["B4"]) / (v["B8"] + v["B4"]), id="ndvi"),
    pytest.param("-MSK_CLDPRB", lambda v: no_negative_zero(-v["MSK_CLDPRB"]), id="negated_band"),
    pytest.param(
        "where(SCL==4, 1, 0)", lambda v: numpy.where(v["SCL"] == 4, 1.0, 0.0), id="where_ints"
    ),
    pytest.param("B8**2", lambda v: v["B8"] * v["B8"], id="square"),
    pytest.param("B2**0.5", lambda v: numpy.sqrt(v["B2"]), id="square_root_power"),
    pytest.param(
        "2**(B2/1000)",
        lambda v: libm(math.pow, numpy.full(400, 2.0), v["B2"] / 1000),
        id="band_in_exponent",
    ),
    pytest.param(
        "log(abs(B3) + 1)", lambda v: libm(math.log, numpy.abs(v["B3"]) + 1), id="log_libm"
    ),
    pytest.param(
        "arctan2(B2, B3)",
        lambda v: no_negative_zero(libm(math.atan2, v["B2"], v["B3"])),
        id="arctan2",
    ),
    pytest.param("B2 % 7", lambda v: no_negative_zero(numpy.mod(v["B2"], 7)), id="modulo"),
    pytest.param("B2 * (2**10 + 0.5)", lambda v: v["B2"] * 1024.5, id="constant_part_folded"),
    pytest.param("B2 + 10**20", lambda v: v["B2"] + 1e20, id="int_beyond_int64"),
    pytest.param("B2 + 0x10", lambda v: v["B2"] + 16.0, id="hex_literal"),
    pytest.param(
        "where(SCL > 8, nan, B8)",
        lambda v: numpy.where(v["SCL"] > 8, NAN, v["B8"]),
        id="nan_constant",
    ),
    pytest.param("B2 - inf", lambda v: v["B2"] - INF, id="inf_constant"),
    pytest.param(
        "(B2 > 0) & (B3 < 5000)",
        lambda v: ((v["B2"] > 0) & (v["B3"] < 5000)).astype("float64"),
        id="boolean_result",
    ),
    pytest.param("isnan(B2)", lambda v: numpy.isnan(v["B2"]).astype("float64"), id="isnan"),
    pytest.param("B2**1e300", lambda v: v["B2"] ** 1e300, id="huge_exponent_on_band"),
    pytest.param(" B3 ", lambda v: no_negative_zero(v["B3"]), id="surrounding_spaces"),
]


@pytest.mark.parametrize(("text", "oracle"), VALID)
def test_valid_expression_matches_oracle_bit_for_bit(
    text: str, oracle: Callable[[Arrays], numpy.ndarray]
) -> None:
    expression = parse(text, BANDS)
    with numpy.errstate(all="ignore"):
        want = no_negative_zero(oracle(DATA).astype("float64"))
        got = expression.evaluate({name: DATA[name] for name in expression.bands})
    assert same_bits(got, want)


@pytest.mark.parametrize(
    ("text", "bands"),
    [
        pytest.param("(B8-B4)/(B8+B4)", ("B8", "B4"), id="ndvi"),
        pytest.param("(B2*B4) + B3", ("B2", "B4", "B3"), id="left_subtree_first"),
        pytest.param(
            "where(SCL==4, B8, B4) - MSK_CLDPRB", ("SCL", "B8", "B4", "MSK_CLDPRB"), id="call"
        ),
        pytest.param("B2 + B2*B2", ("B2",), id="repeated_once"),
        pytest.param("B8", ("B8",), id="single"),
    ],
)
def test_bands_in_first_use_order(text: str, bands: tuple[str, ...]) -> None:
    assert parse(text, BANDS).bands == bands


def test_named_constants_are_not_bands() -> None:
    expression = parse("where(SCL > 8, nan, B8 - inf)", BANDS)
    assert (expression.bands, expression.constants) == (("SCL", "B8"), ("nan", "inf"))
    assert set(CONSTANTS) == {"nan", "inf"}


def test_a_band_named_like_a_constant_is_the_band() -> None:
    expression = parse("nan * 2", ("nan",))
    assert (expression.bands, expression.constants) == (("nan",), ())
    assert expression.evaluate({"nan": numpy.array([1.5])}).tolist() == [3.0]


def test_functions_exclude_reductions_and_complex() -> None:
    assert {"where", "abs", "log", "arctan2"} <= FUNCTIONS
    assert not {"sum", "prod", "min", "max", "complex", "real", "imag"} & FUNCTIONS


@pytest.mark.parametrize("text", ["B2", "-B2", "B2 * 1"])
def test_negative_zero_becomes_zero_in_a_new_array(text: str) -> None:
    values = numpy.array([-0.0, 0.0, -1.0])
    got = parse(text, BANDS).evaluate({"B2": values})
    assert not numpy.signbit(got[got == 0]).any()
    assert not numpy.shares_memory(got, values)


@pytest.mark.parametrize(
    ("text", "ranges", "bound"),
    [
        pytest.param("-MSK_CLDPRB", {"MSK_CLDPRB": (0.0, INF)}, 0.0, id="negated_unsigned"),
        pytest.param("B2 + 2*B3", {"B2": (0.0, 10.0), "B3": (0.0, 100.0)}, 210.0, id="sum"),
        pytest.param("B2 - B3", {"B2": (0.0, 10.0), "B3": (0.0, 100.0)}, 10.0, id="difference"),
        pytest.param("-(B2*B3)", {"B2": (-1.0, 2.0), "B3": (-3.0, 4.0)}, 6.0, id="product_signs"),
        pytest.param("B2 + B3", {"B2": (0.0, 1.0), "B3": (0.0, INF)}, None, id="unbounded"),
        pytest.param("0 * B2", {"B2": (0.0, INF)}, None, id="zero_times_infinity"),
        pytest.param("B2 / 2", {"B2": (0.0, 1.0)}, None, id="division_not_derived"),
        pytest.param("B2 + nan", {"B2": (0.0, 1.0)}, None, id="named_constant"),
    ],
)
def test_upper_bound(
    text: str, ranges: dict[str, tuple[float, float]], bound: float | None
) -> None:
    expression = parse(text, BANDS)
    got = expression.upper_bound(ranges)
    assert got == bound
    if bound is not None:
        assert math.copysign(1.0, got) == math.copysign(1.0, bound)  # no -0.0
        rng = numpy.random.default_rng(1)
        values = {
            name: numpy.clip(rng.uniform(lo, min(hi, 1e6), 1000), lo, hi)
            for name, (lo, hi) in ranges.items()
        }
        assert (expression.evaluate(values) <= bound).all()


def test_at_the_limits_with_little_stack_left() -> None:
    """Accepted extremes compile and evaluate with only 200 frames of headroom."""
    texts = [
        "+".join(["B2"] * MAX_TREE_DEPTH),
        "**".join(["B2"] * MAX_TREE_DEPTH),
        "(" * MAX_DEPTH + "B2" + ")" * MAX_DEPTH,
        "-(" * (MAX_DEPTH // 2) + "B2" + ")" * (MAX_DEPTH // 2),
        "where(B2>0," * (MAX_DEPTH - 1) + "B3" + ",B4)" * (MAX_DEPTH - 1),
    ]
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(len(inspect.stack()) + 200)
    try:
        for text in texts:
            parse(text, BANDS).evaluate({b: DATA[b][:8] for b in ("B2", "B3", "B4")})
    finally:
        sys.setrecursionlimit(limit)


def test_an_expression_built_directly_still_evaluates() -> None:
    expression = Expression("B2 + B3", ("B2", "B3"))
    assert expression.evaluate({"B2": [1.0], "B3": [2.0]}).tolist() == [3.0]


# ---------------------------------------------------------------------------------------
# hostile text: every case must be a fast InvalidQualityExpression. They run in one child
# process with a timeout, so a guard that regresses (9**9**9 used to spin forever) fails
# this module instead of hanging the test run.


def _balanced(leaves: int) -> str:
    return "B2" if leaves == 1 else f"({_balanced(leaves // 2)}+{_balanced(leaves - leaves // 2)})"


HOSTILE_BANDS = (*BANDS, "abs")
HOSTILE: dict[str, tuple[str, str | None]] = {
    # id: (text, a fragment the message must contain; None: must be accepted)
    "power_tower_times_band": ("B2*9**9**9", "too large: numbers and parts made"),
    "power_tower_limit_named": ("B2*9**9**9", "within +-1.798e+308 (the float64 range)"),
    "power_tower_plus_band": ("B2+10**10**10", "too large"),
    "power_of_big_power": ("B2+(2**64)**64**64", "too large"),
    "power_after_function": ("B2+abs(10)**400", "too large"),
    "huge_int_literal": ("B2+" + "9" * 400, "too large"),
    "product_of_big_ints": ("B2+(2**1000)*(2**1000)", "too large"),
    "float_power_overflow": ("B2+10.0**400", "cannot be computed"),
    "division_by_zero": ("B2+1/0", "cannot be computed"),
    "modulo_by_zero": ("B2+5%0", "cannot be computed"),
    "complex_power": ("B2+(-8)**0.5", "not a real number"),
    "too_long": ("B2+" * 700 + "B2", f"at most {MAX_LENGTH}"),
    "deep_parentheses": ("(" * 900 + "B2" + ")" * 900, f"more than {MAX_DEPTH} deep"),
    "deep_negated_parentheses": ("-(" * 600 + "B2" + ")" * 600, f"more than {MAX_DEPTH} deep"),
    "long_minus_run": ("-" * 1990 + "B2", f"more than {MAX_DEPTH} deep"),
    "long_invert_run": ("~" * 1990 + "(B2>0)", f"more than {MAX_DEPTH} deep"),
    "long_operator_chain": ("+".join(["B2"] * 600), f"more than {MAX_TREE_DEPTH}"),
    "long_power_chain": ("**".join(["B2"] * 400), f"more than {MAX_TREE_DEPTH}"),
    "many_parts": (_balanced(300), f"at most {MAX_NODES}"),
    "not_chain": ("not " * 480 + "B2", f"more than {MAX_TREE_DEPTH}"),
    "dunder_attribute": ("B2.__class__", "attribute access"),
    "dunder_import_string": ("__import__('os')", "unknown function '__import__'"),
    "dunder_import_call": ("__import__(B2)", "unknown function '__import__'"),
    "dunder_name": ("__builtins__", "double underscores"),
    "subscript": ("B2[0]", "indexing"),
    "lambda": ("lambda: B2", "lambda is not allowed"),
    "list_comprehension": ("[B2 for B2 in B3]", "ListComp is not allowed"),
    "generator_argument": ("abs(B2 for B2 in B3)", "GeneratorExp is not allowed"),
    "f_string": ("f'{B2}'", "an f-string is not allowed"),
    "walrus": ("(x:=B2)", "assignment (:=)"),
    "starred": ("abs(*B2)", "unpacking"),
    "keyword_argument": ("where(B2>0, B2, x=1)", "keyword arguments"),
    "string_constant": ("B2+'a'", "only real numbers"),
    "bytes_constant": ("B2+b'a'", "only real numbers"),
    "comment": ("B2 # __import__", "character '#'"),
    "line_continuation": ("B2+\\\nB3", "character '\\\\'"),
    "deep_brackets": ("[" * 900 + "B2" + "]" * 900, f"more than {MAX_DEPTH} deep"),
    "semicolon": ("B2; B3", "is not valid"),
    "true_constant": ("B2+True", "only real numbers"),
    "none_constant": ("B2+None", "only real numbers"),
    "ellipsis": ("B2+...", "only real numbers"),
    "complex_literal": ("B2+1j", "only real numbers"),
    "function_as_band": ("where+B2", "call it as where(...)"),
    "band_named_like_function": ("abs+B2", "a band of that name cannot be used"),
    "band_as_function": ("B2(3)", "unknown function 'B2'"),
    "unknown_function": ("foo(B2)", "unknown function 'foo'"),
    "reduction": ("sum(B2)", "unknown function 'sum'"),
    "where_arity": ("where(B2>0)", "takes 3 arguments, got 1"),
    "abs_arity": ("abs(B2, B3)", "takes 1 argument, got 2"),
    "constant_where_condition": ("where(1, B2, B3)", "condition of where()"),
    "float_where_condition": ("where(B2, 1, 0)", "take comparisons"),
    "xor_of_floats": ("B2 ^ B3", "take comparisons"),
    "invert_float_constant": ("B2+~1.5", "cannot be computed"),
    "nul_byte": ("B2\x00", "U+0000"),
    "fullwidth_lookalike": ("\uff22\uff12", "U+FF22"),
    "cyrillic_lookalike": ("\u04122", "U+0412"),
    "micro_sign": ("B2+\u00b5", "U+00B5"),
    "empty": ("", "empty"),
    "whitespace": ("  \t ", "empty"),
    "only_numbers": ("1+2", "reads no band"),
    "only_named_constants": ("nan+inf", "reads no band"),
    "chained_comparison": ("0<B2<1", "chained comparisons"),
    "unknown_band": ("B99", "unknown band 'B99'"),
    "syntax_error": ("B2+", "is not valid"),
    "and_or": ("B2 and B3", "'and'/'or'"),
    "if_else": ("B2 if B3 else B4", "where(condition, a, b)"),
    "floor_division": ("B2//2", "floor(a / b)"),
    "tuple": ("B2, B3", "tuple"),
    "underscore_in_fraction": ("B2+1.5_0", "cannot be evaluated"),
    # accepted, at or near a limit
    "accepted_band_power_of_big_exponent": ("B2**(9**9)", None),
    "accepted_float_overflow_to_inf": ("B2+1e999", None),
    "accepted_tiny_power": ("B2+2**-5000", None),
    "accepted_big_int": ("B2+10**300", None),
    "accepted_max_parentheses": ("(" * MAX_DEPTH + "B2" + ")" * MAX_DEPTH, None),
    "accepted_max_chain": ("+".join(["B2"] * MAX_TREE_DEPTH), None),
    "accepted_balanced_parts": (_balanced(MAX_NODES // 2), None),
}

_CHILD = """
import json, sys
from tiler.engine.expression import parse
from tiler.errors import InvalidQualityExpression
cases, bands = json.loads(sys.stdin.read())
for name, text in cases:
    print(json.dumps(["start", name]), flush=True)
    try:
        parse(text, bands)
        result = ["accepted", ""]
    except InvalidQualityExpression as exc:
        result = ["InvalidQualityExpression", str(exc)]
    except BaseException as exc:
        result = [type(exc).__name__, str(exc)]
    print(json.dumps(["done", name, *result]), flush=True)
"""


@pytest.fixture(scope="module")
def hostile_results() -> dict[str, tuple[str, str]]:
    """Parse every hostile case in one child process; a case still running is 'hung'."""
    cases = [(name, text) for name, (text, _) in HOSTILE.items()]
    try:
        out = subprocess.run(
            [sys.executable, "-c", _CHILD],
            input=json.dumps([cases, HOSTILE_BANDS]),
            capture_output=True,
            text=True,
            timeout=60,
            cwd=Path(__file__).resolve().parents[2],
        ).stdout
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
    results: dict[str, tuple[str, str]] = {}
    for line in out.splitlines():
        event = json.loads(line)
        if event[0] == "start":
            results[event[1]] = ("hung (still running at the timeout)", "")
        else:
            results[event[1]] = (event[2], event[3])
    return results


@pytest.mark.e2e  # one child process parses every case
@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_input_is_refused_quickly(
    case: str, hostile_results: dict[str, tuple[str, str]]
) -> None:
    _, fragment = HOSTILE[case]
    kind, message = hostile_results.get(case, ("never reached", ""))
    if fragment is None:
        assert kind == "accepted", message
    else:
        assert kind == "InvalidQualityExpression", message
        assert fragment in message
        assert len(message) < 700  # the text is quoted in part, not echoed whole


def test_hostile_messages_say_what_is_allowed() -> None:
    with pytest.raises(InvalidQualityExpression, match="numexpr functions such as where"):
        parse("B2 and B3", BANDS)
    with pytest.raises(InvalidQualityExpression, match="bands are: B2, B3, B4"):
        parse("B99", BANDS)
