"""Sort ranks: every item's value of a sortby key as a dense integer rank.

Ranks make collection order a single ``numpy.lexsort`` over the selected items. Values of
one kind sort as Python sorts them (numbers by value, text by code point, lists element
by element); where a key mixes kinds, numbers come first, then text, then anything else
(compared as text where Python cannot compare): a total order, where comparing mixed
values one pair at a time gives none. Missing values rank -1 (sorted last by callers).
"""

from __future__ import annotations

import functools
import itertools
import operator
from typing import Any

import numpy

_NUMBERS = {int, float, bool}
_EXACT_INT = 2**53


def _compare(a: Any, b: Any) -> int:
    """-1, 0 or 1 ordering two values of one key (not None); as text where not comparable."""
    if a == b:
        return 0
    try:
        return -1 if a < b else 1
    except TypeError:
        a, b = str(a), str(b)
        if a == b:
            return 0
        return -1 if a < b else 1


def dense(values: numpy.ndarray) -> numpy.ndarray:
    """Dense ranks of a numeric or string array (numpy's order is Python's for these)."""
    return numpy.unique(values, return_inverse=True)[1].astype("int64").reshape(-1)


def _numbers_rank(vals: list[Any]) -> numpy.ndarray:
    if all(type(v) is not int for v in vals) or (
        min(vals) >= -_EXACT_INT and max(vals) <= _EXACT_INT
    ):
        return dense(numpy.array(vals, dtype="float64"))
    return _python_rank(vals)  # integers beyond float64's exact range


def _python_rank(vals: list[Any]) -> numpy.ndarray:
    """Dense ranks in Python's order (hashable, mutually comparable values)."""
    where = {v: r for r, v in enumerate(sorted(set(vals)))}
    return numpy.array([where[v] for v in vals], dtype="int64")


def _compare_rank(vals: list[Any]) -> numpy.ndarray:
    """Dense ranks by :func:`_compare` (values compared as text where they cannot be)."""

    def by_value(i: int, j: int) -> int:
        return _compare(vals[i], vals[j])

    perm = sorted(range(len(vals)), key=functools.cmp_to_key(by_value))
    rank = 0
    out = numpy.empty(len(vals), dtype="int64")
    for k, i in enumerate(perm):
        if k and by_value(perm[k - 1], i) != 0:
            rank += 1
        out[i] = rank
    return out


def _other_rank(vals: list[Any]) -> numpy.ndarray:
    if len(set(map(type, vals))) == 1:
        try:
            return _python_rank(vals)
        except TypeError:  # unhashable (lists) or unordered
            pass
    return _compare_rank(vals)


def ranks_of(values: list[Any]) -> numpy.ndarray:
    """Dense ranks (0, 1, ...; equal values share one) of values, -1 for None.

    Values of one kind sort as Python sorts them (numbers by value, text by code
    point, lists element by element). Where a key mixes kinds, numbers come first, then
    text, then anything else (compared as text where Python cannot compare): a total
    order, where comparing mixed values one pair at a time gives none.
    """
    ranks = numpy.full(len(values), -1, dtype="int64")
    present = numpy.fromiter(
        map(operator.is_not, values, itertools.repeat(None)), dtype=bool, count=len(values)
    )
    if not present.any():
        return ranks
    vals = [v for v in values if v is not None]
    kinds = set(map(type, vals))
    if kinds <= _NUMBERS:
        ranks[present] = _numbers_rank(vals)
        return ranks
    if kinds == {str} and "\x00" not in "".join(vals):  # numpy drops trailing NULs
        ranks[present] = dense(numpy.array(vals, dtype=str))
        return ranks
    groups: tuple[list[int], list[int], list[int]] = ([], [], [])
    for k, v in enumerate(vals):
        groups[0 if type(v) in _NUMBERS else 1 if type(v) is str else 2].append(k)
    out = numpy.empty(len(vals), dtype="int64")
    offset = 0
    for g, members in enumerate(groups):
        if not members:
            continue
        part = [vals[k] for k in members]
        if g == 0:
            r = _numbers_rank(part)
        elif g == 1:
            r = _python_rank(part)
        else:
            r = _other_rank(part)
        out[members] = r + offset
        offset += int(r.max()) + 1
    ranks[present] = out
    return ranks
