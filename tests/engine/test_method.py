"""The quality method against a naive argmax on random stacks."""

from __future__ import annotations

import numpy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rio_tiler.models import ImageData
from rio_tiler.mosaic.methods.base import MosaicMethodBase
from rio_tiler.mosaic.reader import mosaic_reader

from tiler.engine.method import NO_WINNER, QualityMosaicMethod


def naive(q: numpy.ndarray, qmask: numpy.ndarray) -> numpy.ndarray:
    """Winner per pixel: highest valid quality, ties to the lowest index; -1 if none."""
    n, h, w = q.shape
    out = numpy.full((h, w), -1)
    for r in range(h):
        for c in range(w):
            best = None
            for i in range(n):
                v = q[i, r, c]
                if qmask[i, r, c] or not numpy.isfinite(v):
                    continue
                if best is None or v > q[best, r, c]:
                    best = i
            out[r, c] = -1 if best is None else best
    return out


@st.composite
def stacks(draw):
    n = draw(st.integers(1, 6))
    h = draw(st.integers(1, 5))
    w = draw(st.integers(1, 5))
    choices = st.sampled_from([0.0, 1.0, 2.0, -1.5, numpy.nan, numpy.inf, -numpy.inf, 2.0])
    q = numpy.array(draw(st.lists(choices, min_size=n * h * w, max_size=n * h * w)))
    q = q.reshape(n, h, w)
    qmask = numpy.array(
        draw(st.lists(st.booleans(), min_size=n * h * w, max_size=n * h * w))
    ).reshape(n, h, w)
    bmask = numpy.array(
        draw(st.lists(st.booleans(), min_size=n * h * w, max_size=n * h * w))
    ).reshape(n, h, w)
    order = draw(st.permutations(range(n)))
    return q, qmask, bmask, list(order)


def _bands(n: int, h: int, w: int, bmask: numpy.ndarray) -> list[numpy.ma.MaskedArray]:
    """Two bands per item: the item number and a value unique per (item, pixel)."""
    out = []
    for i in range(n):
        a = numpy.full((h, w), i + 1, dtype="int32")
        b = (numpy.arange(h * w).reshape(h, w) + 1000 * (i + 1)).astype("int32")
        out.append(
            numpy.ma.MaskedArray(numpy.stack([a, b]), mask=numpy.stack([bmask[i], bmask[i]]))
        )
    return out


def _assert_winners_bands(
    method: QualityMosaicMethod, expected: numpy.ndarray, bmask: numpy.ndarray
) -> None:
    """The naive winner everywhere; all bands come from it, with its own mask; no winner:
    every band masked."""
    assert method.winner is not None
    numpy.testing.assert_array_equal(method.winner, expected)
    assert method.mosaic is not None
    h, w = expected.shape
    for r in range(h):
        for c in range(w):
            k = expected[r, c]
            if k < 0:
                assert method.mosaic.mask[:, r, c].all()
            else:
                assert method.mosaic.data[0, r, c] == k + 1
                assert method.mosaic.data[1, r, c] == 1000 * (k + 1) + r * w + c
                assert (method.mosaic.mask[:, r, c] == bmask[k, r, c]).all()


@pytest.mark.parametrize("way", ["feed-in-collection-order", "decide-then-fill-any-order"])
@settings(max_examples=300, deadline=None)
@given(case=stacks())
def test_winners_and_their_bands_match_naive(way, case):
    """Fed in collection order, or decided then filled in any read order (with the items'
    indexes): the naive winner everywhere, all bands from it with its own mask."""
    q, qmask, bmask, order = case
    n, h, w = q.shape
    method = QualityMosaicMethod()
    bands = _bands(n, h, w, bmask)
    if way == "feed-in-collection-order":
        for i in range(n):
            method.feed(bands[i], quality=numpy.ma.MaskedArray(q[i], mask=qmask[i]))
    else:
        for i in order:
            method.decide(numpy.ma.MaskedArray(q[i], mask=qmask[i]), i)
        for i in reversed(order):
            method.fill(bands[i], i)
    _assert_winners_bands(method, naive(q, qmask), bmask)


def test_best_holds_the_winning_quality_as_float64():
    method = QualityMosaicMethod()
    method.decide(numpy.ma.MaskedArray(numpy.array([[1.0, 2.0]], dtype="float32")), 0)
    method.decide(numpy.ma.MaskedArray(numpy.array([[1.5, 2.0]])), 1)
    assert method.best is not None and method.best.dtype == numpy.float64
    numpy.testing.assert_array_equal(method.best, [[1.5, 2.0]])
    numpy.testing.assert_array_equal(method.winner, [[1, 0]])


def test_no_candidate_leaves_no_winner():
    method = QualityMosaicMethod()
    q = numpy.ma.MaskedArray(numpy.array([[numpy.nan, 1.0]]), mask=[[False, True]])
    method.decide(q, 0)
    numpy.testing.assert_array_equal(method.winner, [[NO_WINNER, NO_WINNER]])


def test_is_a_rio_tiler_mosaic_method_usable_by_mosaic_reader():
    """With quality as the last band, rio-tiler's own mosaic_reader drives it."""
    stacks_ = {
        "x": numpy.ma.MaskedArray(numpy.array([[[1, 1]], [[5.0, 1.0]]])),
        "y": numpy.ma.MaskedArray(numpy.array([[[2, 2]], [[5.0, 3.0]]])),
    }

    def reader(asset: str, *args, **kwargs) -> ImageData:
        return ImageData(stacks_[asset])

    img, used = mosaic_reader(["x", "y"], reader, pixel_selection=QualityMosaicMethod())
    assert issubclass(QualityMosaicMethod, MosaicMethodBase)
    numpy.testing.assert_array_equal(img.array.data[0], [[1, 2]])  # tie at 5 -> first
    assert used == ["x", "y"]


@pytest.mark.parametrize(
    ("winners", "pending", "done"),
    [
        pytest.param([[0, 0]], 1, True, id="all-at-bound-before-unread"),
        pytest.param([[0, 2]], 1, False, id="a-winner-after-an-unread-item-may-lose-a-tie"),
        pytest.param([[0, 0]], None, False, id="unknown-pending"),
    ],
)
def test_early_exit_respects_the_tie_rule(winners, pending, done):
    method = QualityMosaicMethod(upper_bound=0.0)
    for k in sorted({w for row in winners for w in row}):
        q = numpy.where(numpy.array(winners) == k, 0.0, numpy.nan)
        method.decide(numpy.ma.MaskedArray(q), k)
    method.note_pending(pending)
    assert method.is_done is done
