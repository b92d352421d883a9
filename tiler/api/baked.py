"""Baked layers in the API: which one answers a request, and the refusal when none does.

A tile where live computation would answer "too many items" is read from a baked layer
(:mod:`tiler.engine.baked`) only when the request computes exactly what the layer holds
(:meth:`tiler.catalog.baked.BakedLayer.matches`) and asks for bands it holds; then the
response says ``X-Source: baked`` (live tiles: ``X-Source: live``). A request differing in
anything else gets the live 400 with ``minzoom``: never a silent substitute. A request
matching a layer but naming a band the layer lacks gets that 400 too, its message listing
the layer's bands.
"""

from __future__ import annotations

import logging

from fastapi import Request
from rio_tiler.models import ImageData

from tiler.api.deps import Mosaic
from tiler.catalog.baked import Asked, BakedLayer, BakedLayerError, BakedLayers
from tiler.engine.baked import live_dtype, read_tile
from tiler.engine.grids import TileGrid
from tiler.engine.service import Engine
from tiler.errors import TooManyItems

logger = logging.getLogger(__name__)

#: the response header naming the source of a tile
SOURCE = "X-Source"


class BandsNotBaked(TooManyItems):
    """Too many items, and the baked layer of this request lacks a band it asks for."""

    def __init__(
        self, exc: TooManyItems, zoom: int | None, layer: BakedLayer, missing: list[str]
    ) -> None:
        super().__init__(exc.matched, exc.limit, zoom)
        self.args = (
            f"{self.args[0]}; baked layer {layer.name!r} of this quality and filters holds "
            f"bands {', '.join(layer.bands)}, not {', '.join(missing)}: ask for those "
            "to see it at this zoom",
        )


def get_baked(request: Request) -> BakedLayers:
    """The app's baked layers."""
    layers: BakedLayers = request.app.state.baked
    return layers


def matching(layers: BakedLayers, mosaic: Mosaic) -> list[BakedLayer]:
    """The layers that computed what ``mosaic`` asks (its bands aside)."""
    asked = Asked(
        mosaic.catalog.id,
        mosaic.layer.quality.text,
        mosaic.search,
        mosaic.options.unscale,
        mosaic.options.nodata,
    )
    return layers.matching(asked)


def layer_for(layers: BakedLayers, mosaic: Mosaic) -> BakedLayer | None:
    """The first layer that computed what ``mosaic`` asks and holds its bands."""
    return next((x for x in matching(layers, mosaic) if not x.missing(mosaic.layer.bands)), None)


def baked_image(
    layers: BakedLayers, mosaic: Mosaic, grid: TileGrid, engine: Engine
) -> tuple[ImageData, BakedLayer] | None:
    """The tile from the baked layer of ``mosaic``; None without one covering the tile.

    A layer that cannot be read now is logged and skipped (the live refusal follows).
    """
    layer = layer_for(layers, mosaic)
    if layer is None:
        return None
    bands = mosaic.layer.bands
    dtype = live_dtype(bands, layer.types, layer.dtype)
    try:
        image = read_tile(layer, grid, bands, engine.datasets, dtype)
    except BakedLayerError as exc:
        logger.warning("%s", exc)
        return None
    return None if image is None else (image, layer)


def refusal(
    exc: TooManyItems, zoom: int | None, layers: BakedLayers, mosaic: Mosaic
) -> TooManyItems:
    """The 400 of a tile no baked layer answers (naming the bands a matching one holds)."""
    for layer in matching(layers, mosaic):
        missing = layer.missing(mosaic.layer.bands)
        if missing:
            return BandsNotBaked(exc, zoom, layer, missing)
    return TooManyItems(exc.matched, exc.limit, zoom=zoom)
