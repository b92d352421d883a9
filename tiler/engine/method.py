"""The quality mosaic method: one decision per pixel, all bands of the winner.

Pure numpy, no I/O. Semantics (SPEC section 2): at a pixel, an item is a candidate iff its
quality is unmasked and finite; the candidate with the highest quality wins (compared as
float64); equal quality goes to the item that comes first in collection order; the output
holds every band of the winner there, each with the winner's own mask.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy
from rio_tiler.mosaic.methods.base import MosaicMethodBase

NO_WINNER = -1


@dataclass
class QualityMosaicMethod(MosaicMethodBase):
    """Earth Engine's ``qualityMosaic`` as a rio-tiler mosaic method.

    Feed items with :meth:`feed` (decision and bands at once, memory O(bands x pixels)), or
    in two passes: :meth:`decide` with every item's quality, then :meth:`fill` with the
    bands of the items that won somewhere. Items may come in any order as long as each
    comes with its ``index`` (position in collection order), which breaks ties.

    Attributes:
        upper_bound: a value no quality can exceed (e.g. 0 for ``-MSK_CLDPRB``); lets
            :attr:`is_done` stop early once every pixel holds it from an item that precedes
            all unread ones.
    """

    upper_bound: float | None = None
    best: numpy.ndarray | None = field(default=None, init=False)
    winner: numpy.ndarray | None = field(default=None, init=False)
    _fed: int = field(default=0, init=False)
    _pending_min_index: int | None = field(default=None, init=False)

    def __repr__(self) -> str:
        return "<Mosaic: QualityMosaicMethod>"

    def _state(self, shape: tuple[int, ...]) -> tuple[numpy.ndarray, numpy.ndarray]:
        """The best quality and winner arrays, created on the first item."""
        if self.best is None or self.winner is None:
            self.best = numpy.full(shape, -numpy.inf, dtype="float64")
            self.winner = numpy.full(shape, NO_WINNER, dtype="int32")
            self.height, self.width = shape
        return self.best, self.winner

    def decide(self, quality: numpy.ma.MaskedArray, index: int) -> numpy.ndarray:
        """Let item ``index`` compete with its quality; return where it now wins.

        Args:
            quality: 2-D quality of the item (masked where invalid).
            index: the item's position in collection order.

        Returns:
            Boolean 2-D array, True where this item became the winner.
        """
        q = numpy.ma.getdata(quality).astype("float64", copy=False)
        valid = ~numpy.ma.getmaskarray(quality) & numpy.isfinite(q)
        best, winner = self._state(q.shape)
        has = winner != NO_WINNER
        takes: numpy.ndarray = valid & (~has | (q > best) | ((q == best) & (index < winner)))
        best[takes] = q[takes]
        winner[takes] = index
        self._fed += 1
        return takes

    def fill(self, array: numpy.ma.MaskedArray, index: int) -> None:
        """Write the bands of item ``index`` where it is the winner.

        Args:
            array: 3-D (bands, rows, cols) masked array of the item's output bands.
            index: the item's position in collection order.
        """
        if self.winner is None:  # nothing decided yet: the item wins nowhere
            return
        self._write(array, self.winner == index)

    def _write(self, array: numpy.ma.MaskedArray, where: numpy.ndarray) -> None:
        data = numpy.ma.getdata(array)
        mask = numpy.ma.getmaskarray(array)
        if self.mosaic is None:
            self.count = data.shape[0]
            values = numpy.zeros(data.shape, dtype=data.dtype)
            masked = numpy.ones(data.shape, dtype="bool")
        else:
            dtype = numpy.result_type(data.dtype, self.mosaic.dtype)
            values = numpy.ma.getdata(self.mosaic).astype(dtype, copy=False)
            masked = numpy.ma.getmaskarray(self.mosaic)
        values[:, where] = data[:, where]
        masked[:, where] = mask[:, where]
        self.mosaic = numpy.ma.MaskedArray(values, mask=masked)

    def feed(
        self,
        array: numpy.ma.MaskedArray,
        quality: numpy.ma.MaskedArray | None = None,
        index: int | None = None,
    ) -> None:
        """Decide and keep the bands in one pass.

        Args:
            array: 3-D (bands, rows, cols) masked array of the item's bands.
            quality: the item's 2-D quality; defaults to the last band of ``array`` (as
                rio-tiler's ``mosaic_reader`` feeds it).
            index: position in collection order; defaults to the number of items fed so
                far (items then must come in collection order).
        """
        if quality is None:
            quality = array[-1]
        if index is None:
            index = self._fed
        takes = self.decide(quality, index)
        self._write(array, takes)

    def can_change(self, index: int, where: numpy.ndarray | None = None) -> bool:
        """True if the item at ``index`` could still win a pixel within ``where``.

        With :attr:`upper_bound`, a pixel is settled for every item after ``index`` once
        it holds the bound from an item before ``index``: no later quality can exceed it
        and ties go to the earlier item. Without a bound, any item that has data may win.

        Args:
            index: the item's position in collection order.
            where: 2-D boolean array of the pixels the item can have data at (None: all).
        """
        if where is not None and not where.any():
            return False
        if self.upper_bound is None or self.best is None or self.winner is None:
            return True
        settled = (self.best >= self.upper_bound) & (self.winner < index)
        return bool((~settled if where is None else where & ~settled).any())

    def note_pending(self, min_unread_index: int | None) -> None:
        """Tell the method the smallest collection index not fed yet (None: all fed)."""
        self._pending_min_index = min_unread_index

    @property
    def is_done(self) -> bool:
        """True when no unread item can change any pixel (needs :attr:`upper_bound`)."""
        if self.upper_bound is None or self.best is None or self.winner is None:
            return False
        if self._pending_min_index is None:
            return False
        reached = self.best >= self.upper_bound
        if not reached.all():
            return False
        return bool((self.winner < self._pending_min_index).all())
