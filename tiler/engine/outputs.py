"""Output bands: the winner's own bands plus the derived ones, composed into an image.

Derived bands describe the winner of each pixel: ``quality`` (its quality, float64),
``_index`` (its position in collection order), ``_date`` (its acquisition time in days
since 1970-01-01) and ``_doy`` (its day of year). They are computed here, for tiles and
exports (:func:`compose`) and for points (:func:`winner_values`) alike.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy
from rio_tiler.models import ImageData

from tiler.catalog.models import Item
from tiler.engine.grids import Grid
from tiler.engine.method import NO_WINNER, QualityMosaicMethod

QUALITY, INDEX = "quality", "_index"
#: output bands that describe the winning item
PROVENANCE: dict[str, Callable[[Item], float]] = {
    "_date": lambda item: item.days,
    "_doy": lambda item: item.day_of_year,
}
DERIVED = (QUALITY, INDEX, *PROVENANCE)


def physical(bands: Sequence[str]) -> list[str]:
    """The bands of ``bands`` that are read from files (not derived)."""
    return [b for b in bands if b not in DERIVED]


def stack(
    arrays: dict[str, numpy.ma.MaskedArray], names: Sequence[str], shape: tuple[int, ...]
) -> numpy.ma.MaskedArray:
    """3-D stack of bands ``names``; a band the item lacks is fully masked."""
    present = [arrays[n] for n in names if n in arrays]
    dtype = numpy.result_type(*[a.dtype for a in present]) if present else numpy.uint8
    data = numpy.zeros((len(names), *shape), dtype=dtype)
    mask = numpy.ones((len(names), *shape), dtype=bool)
    for i, name in enumerate(names):
        if name in arrays:
            data[i] = numpy.ma.getdata(arrays[name])
            mask[i] = numpy.ma.getmaskarray(arrays[name])
    return numpy.ma.MaskedArray(data, mask=mask)


def compose(
    out_bands: Sequence[str],
    method: QualityMosaicMethod,
    items: Sequence[Item],
    grid: Grid,
) -> ImageData:
    """Stack the output bands; mask a pixel where any output band of the winner is.

    Args:
        out_bands: band names and derived bands, in output order.
        method: the decided (and filled) mosaic method.
        items: the items in collection order (``method``'s indexes point into it).
        grid: the output grid.
    """
    shape = (grid.height, grid.width)
    winner = method.winner
    if winner is None:
        winner = numpy.full(shape, NO_WINNER, dtype="int32")
    none = winner == NO_WINNER
    layers: list[numpy.ndarray] = []
    masks: list[numpy.ndarray] = [none]
    files = physical(out_bands)
    for name in out_bands:
        if name == QUALITY:
            best = method.best if method.best is not None else numpy.zeros(shape)
            layers.append(numpy.where(none, 0.0, best))
        elif name == INDEX:
            layers.append(numpy.where(none, 0, winner).astype("int32"))
        elif name in PROVENANCE:
            lookup = numpy.asarray([PROVENANCE[name](it) for it in items] or [0.0], "float64")
            layers.append(numpy.where(none, 0.0, lookup[numpy.where(none, 0, winner)]))
        elif method.mosaic is not None:
            k = files.index(name)
            layers.append(method.mosaic.data[k])
            masks.append(numpy.ma.getmaskarray(method.mosaic)[k])
        else:  # no winner could be read
            layers.append(numpy.zeros(shape, dtype="uint8"))
            masks.append(numpy.ones(shape, dtype=bool))
    dtype = numpy.result_type(*[a.dtype for a in layers]) if layers else numpy.uint8
    data = numpy.stack([a.astype(dtype, copy=False) for a in layers])
    mask = numpy.logical_or.reduce(masks)
    data[:, mask] = 0
    template = grid.empty(1, "uint8")
    return ImageData(
        numpy.ma.MaskedArray(data, mask=numpy.broadcast_to(mask, data.shape).copy()),
        bounds=template.bounds,
        crs=template.crs,
        band_names=list(out_bands),
    )


def winner_values(
    out_bands: Sequence[str],
    items: Sequence[Item],
    winner: int | None,
    quality: Sequence[float | None],
    values: Sequence[dict[str, float | None]],
) -> dict[str, float | None]:
    """The output bands' values of the winner at a point (None: masked or no winner).

    Args:
        out_bands: band names and derived bands.
        items: the items in collection order.
        winner: the winner's position (None: no candidate).
        quality: every item's quality there.
        values: every item's band values there.
    """
    out: dict[str, float | None] = dict.fromkeys(out_bands)
    if winner is None:
        return out
    for name in out_bands:
        if name == QUALITY:
            out[name] = quality[winner]
        elif name == INDEX:
            out[name] = float(winner)
        elif name in PROVENANCE:
            out[name] = PROVENANCE[name](items[winner])
        else:
            out[name] = values[winner].get(name)
    return out
