"""Query parameters in dataclass dependencies (as titiler does), resolved into domain objects.

Search, quality expression, output bands and visualisation come from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Path, Query, Request
from rio_tiler.types import ColorMapType
from titiler.core.dependencies import (
    ColorMapParams,
    DatasetParams,
    DefaultDependency,
    RenderingParams,
)

from tiler.collection import Collection
from tiler.errors import CollectionNotFound, InvalidBands, InvalidVisualisation
from tiler.expression import Expression, parse
from tiler.reader import DERIVED, ReadOptions
from tiler.render import Visualisation, parse_palette
from tiler.search import Search, make_search


def get_collection(
    request: Request,
    collection_id: Annotated[str, Path(description="Collection identifier.")],
) -> Collection:
    """The served collection ``collection_id`` (404 listing the known ids otherwise)."""
    collections: dict[str, Collection] = request.app.state.collections
    if collection_id not in collections:
        raise CollectionNotFound(
            f"unknown collection {collection_id!r}; served collections: "
            f"{', '.join(sorted(collections)) or '(none)'}"
        )
    return collections[collection_id]


@dataclass
class SearchParams(DefaultDependency):
    """STAC API item filters and order."""

    datetime: Annotated[
        str | None,
        Query(
            description="RFC 3339 instant or interval (open ends with '..'), e.g. "
            "2020-07-01/2020-09-01.",
        ),
    ] = None
    bbox: Annotated[
        str | None,
        Query(description="Only items intersecting minx,miny,maxx,maxy (lon/lat)."),
    ] = None
    ids: Annotated[
        str | None,
        Query(description="Comma-separated item ids (a filter only, never an order)."),
    ] = None
    filter: Annotated[
        str | None,
        Query(description="CQL2 text on item properties, e.g. eo:cloud_cover < 20."),
    ] = None
    sortby: Annotated[
        str | None,
        Query(
            description="Collection order (and so the tie order), e.g. -eo:cloud_cover. "
            "Item id ascending is always the last key. Default: datetime.",
        ),
    ] = None

    def search(self) -> Search:
        """The parsed search (400 on malformed values)."""
        return make_search(
            datetime=self.datetime,
            bbox=self.bbox,
            ids=self.ids,
            filter=self.filter,
            sortby=self.sortby,
        )


def _floats(name: str, value: str | None) -> tuple[float, ...] | None:
    if value is None or value == "":
        return None
    try:
        out = tuple(float(v) for v in value.split(","))
    except ValueError:
        raise InvalidVisualisation(
            f"{name}={value!r}: expected a number or comma-separated numbers"
        ) from None
    if any(v != v or v in (float("inf"), float("-inf")) for v in out):
        raise InvalidVisualisation(f"{name}={value!r}: numbers must be finite")
    return out


@dataclass
class LayerParams(DefaultDependency):
    """What to mosaic and what to output."""

    quality: Annotated[
        str | None,
        Query(
            description="Quality: a band name or an expression over band names, e.g. "
            "-MSK_CLDPRB or (B08-B04)/(B08+B04). The highest value wins each pixel. "
            "Default: the collection's default visualisation.",
        ),
    ] = None
    bands: Annotated[
        str | None,
        Query(
            description="Comma-separated output bands: band names, or quality, _index "
            "(winner's position in collection order), _date (winner's days since "
            "1970-01-01), _doy (winner's day of year).",
        ),
    ] = None
    preset: Annotated[
        str | None,
        Query(description="Named visualisation of the collection (see its renders)."),
    ] = None


@dataclass
class VisParams(DefaultDependency):
    """Earth Engine visualisation parameters."""

    min: Annotated[str | None, Query(description="Value(s) mapped to 0: one, or one per band.")] = (
        None
    )
    max: Annotated[
        str | None, Query(description="Value(s) mapped to 255: one, or one per band.")
    ] = None
    gamma: Annotated[str | None, Query(description="Gamma correction: one, or one per band.")] = (
        None
    )
    palette: Annotated[
        str | None,
        Query(description="Comma-separated hex colours for a single band, e.g. 000000,ffffff."),
    ] = None


@dataclass(frozen=True)
class Layer:
    """A request's resolved layer."""

    quality: Expression
    bands: list[str]
    vis: Visualisation


def resolve_layer(
    collection: Collection,
    layer: LayerParams,
    vis: VisParams | None = None,
    rescale: Any = None,
    color_formula: str | None = None,
    colormap: ColorMapType | None = None,
) -> Layer:
    """Combine request parameters with the preset / collection defaults.

    Raises:
        InvalidQualityExpression, InvalidBands, InvalidVisualisation: bad values.
    """
    if layer.preset is not None:
        if layer.preset not in collection.renders:
            raise InvalidVisualisation(
                f"unknown preset {layer.preset!r}; presets of {collection.id}: "
                f"{', '.join(collection.renders) or '(none)'}"
            )
        base = collection.renders[layer.preset]
    else:
        base = collection.default_render
    text = layer.quality if layer.quality not in (None, "") else base.get("quality")
    if text is None:
        raise InvalidBands(
            f"quality is required for collection {collection.id!r} (it declares no "
            f"default): a band name or an expression over {', '.join(collection.bands)}"
        )
    quality = parse(str(text), collection.bands)

    if layer.bands not in (None, ""):
        bands = [b.strip() for b in str(layer.bands).split(",")]
    else:
        bands = list(base.get("bands") or [])
    allowed = [*collection.bands, *DERIVED]
    for b in bands:
        if b not in allowed:
            raise InvalidBands(
                f"unknown band {b!r}; bands of {collection.id}: {', '.join(allowed)}"
            )
    if not bands:
        raise InvalidBands(f"no output band; choose from {', '.join(allowed)}")

    mins = _floats("min", vis.min) if vis else None
    maxs = _floats("max", vis.max) if vis else None
    gamma = _floats("gamma", vis.gamma) if vis else None
    palette = parse_palette(vis.palette.split(",")) if vis and vis.palette else None
    derived = any(b in DERIVED for b in bands)
    if mins is None and maxs is None and rescale is None and not derived:
        if "min" in base and "max" in base:
            mins = _floats("min", ",".join(map(str, _listify(base["min"]))))
            maxs = _floats("max", ",".join(map(str, _listify(base["max"]))))
        if gamma is None and "gamma" in base:
            gamma = _floats("gamma", ",".join(map(str, _listify(base["gamma"]))))
        if palette is None and base.get("palette"):
            palette = parse_palette(list(base["palette"]))
    visual = Visualisation(
        min=mins,
        max=maxs,
        gamma=gamma,
        palette=palette,
        rescale=tuple(tuple(r) for r in rescale) if rescale else None,
        colormap=colormap,
        color_formula=color_formula,
    )
    visual.check(len(bands))
    return Layer(quality=quality, bands=bands, vis=visual)


def _listify(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


def read_options(dataset: Any) -> ReadOptions:
    """ReadOptions from titiler's ``DatasetParams``."""
    return ReadOptions(
        resampling_method=getattr(dataset, "resampling_method", None),
        reproject_method=getattr(dataset, "reproject_method", None),
        unscale=bool(getattr(dataset, "unscale", False)),
        nodata=getattr(dataset, "nodata", None),
    )


@dataclass(frozen=True)
class Mosaic:
    """Everything a mosaicking route needs, parsed and validated once."""

    collection: Collection
    search: Search
    layer: Layer
    options: ReadOptions


def mosaic_params(
    collection: Annotated[Collection, Depends(get_collection)],
    search: Annotated[SearchParams, Depends()],
    layer: Annotated[LayerParams, Depends()],
    vis: Annotated[VisParams, Depends()],
    rendering: Annotated[RenderingParams, Depends()],
    dataset: Annotated[DatasetParams, Depends()],
    colormap: Annotated[Any, Depends(ColorMapParams)],
) -> Mosaic:
    """Filters, layer, visualisation and read options of a request (400 if any is bad)."""
    return Mosaic(
        collection=collection,
        search=search.search(),
        layer=resolve_layer(
            collection, layer, vis, rendering.rescale, rendering.color_formula, colormap
        ),
        options=read_options(dataset),
    )
