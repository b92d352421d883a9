"""Query parameters in dataclass dependencies (as titiler does), resolved into domain objects.

The served catalogue, the tile matrix set, the search, the quality expression, the output
bands, the visualisation and the read options of a request come from here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Path, Query, Request
from morecantile import TileMatrixSet
from morecantile.defaults import tms as default_tms
from rio_tiler.types import ColorMapType
from titiler.core.dependencies import (
    DatasetParams,
    DefaultDependency,
    RenderingParams,
)

from tiler.api.guards import ColorMapParams, check_nodata, check_nodata_value
from tiler.catalog.base import Catalog
from tiler.catalog.coverage import MinZoom
from tiler.catalog.filters import Search, make_search, parse_floats
from tiler.catalog.models import CollectionInfo
from tiler.engine.expression import Expression, parse
from tiler.engine.io import ReadOptions
from tiler.engine.outputs import DERIVED
from tiler.engine.service import Engine
from tiler.errors import CollectionNotFound, InvalidBands, InvalidVisualisation, TileNotFound
from tiler.render import Visualisation, parse_palette
from tiler.settings import Settings

TMS_IDS = tuple(default_tms.list())


def get_settings(request: Request) -> Settings:
    """The app's settings."""
    settings: Settings = request.app.state.settings
    return settings


def public_base(request: Request) -> str:
    """The base of absolute URLs the API writes, without a trailing slash.

    ``TILER_PUBLIC_URL`` when set; else the request's own base URL, which comes from its
    ``Host`` header (and so from the client, unless a proxy sets it).
    """
    settings: Settings = request.app.state.settings
    if settings.public_url:
        return settings.public_url.rstrip("/")
    return str(request.base_url).rstrip("/")


def get_engine(request: Request) -> Engine:
    """The app's mosaic engine."""
    engine: Engine = request.app.state.engine
    return engine


def get_min_zoom(request: Request) -> MinZoom:
    """The app's estimate of the lowest zoom under the items limit."""
    estimate: MinZoom = request.app.state.min_zoom
    return estimate


def get_catalog(
    request: Request,
    collection_id: Annotated[str, Path(description="Collection identifier.")],
) -> Catalog:
    """The served collection ``collection_id`` (404 listing the known ids otherwise)."""
    catalogs: dict[str, Catalog] = request.app.state.catalogs
    if collection_id not in catalogs:
        raise CollectionNotFound(
            f"unknown collection {collection_id[:120]!r}; served collections: "
            f"{', '.join(sorted(catalogs)) or '(none)'}"
        )
    return catalogs[collection_id]


def get_tms(
    tileMatrixSetId: Annotated[  # noqa: N803
        str,
        Path(description=f"TileMatrixSet identifier, one of: {', '.join(TMS_IDS)}."),
    ],
) -> TileMatrixSet:
    """The TileMatrixSet named in the path (404 listing the known ones otherwise)."""
    if tileMatrixSetId not in TMS_IDS:
        raise TileNotFound(
            f"unknown tileMatrixSetId {tileMatrixSetId[:120]!r}; supported: {', '.join(TMS_IDS)}"
        )
    return default_tms.get(tileMatrixSetId)


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


def _floats(name: str, value: Any) -> tuple[float, ...] | None:
    if value is None or value == "":
        return None
    return parse_floats(name, str(value), InvalidVisualisation)


def _joined(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, list | tuple) else str(value)


@dataclass(frozen=True)
class Layer:
    """A request's resolved layer."""

    quality: Expression
    bands: list[str]
    vis: Visualisation


def resolve_layer(
    info: CollectionInfo,
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
        if layer.preset not in info.renders:
            raise InvalidVisualisation(
                f"unknown preset {layer.preset[:120]!r}; presets of {info.id}: "
                f"{', '.join(info.renders) or '(none)'}"
            )
        base = info.renders[layer.preset]
    else:
        base = info.default_render
    text = layer.quality if layer.quality not in (None, "") else base.get("quality")
    if text is None:
        raise InvalidBands(
            f"quality is required for collection {info.id!r} (it declares no "
            f"default): a band name or an expression over {', '.join(info.bands)}"
        )
    quality = parse(str(text), info.bands)

    allowed = [*info.bands, *DERIVED]
    if layer.bands not in (None, ""):
        text = str(layer.bands)
        count = text.count(",") + 1
        if count > len(allowed):  # before anything else looks at 10,000 names
            raise InvalidBands(
                f"{count} output bands: at most {len(allowed)} (as many as {info.id} has "
                f"bands, derived ones included: {', '.join(allowed)})"
            )
        bands = [b.strip() for b in text.split(",")]
    else:
        bands = list(base.get("bands") or [])
    for b in bands:
        if b not in allowed:
            raise InvalidBands(f"unknown band {b[:80]!r}; bands of {info.id}: {', '.join(allowed)}")
    if not bands:
        raise InvalidBands(f"no output band; choose from {', '.join(allowed)}")

    mins = _floats("min", vis.min) if vis else None
    maxs = _floats("max", vis.max) if vis else None
    gamma = _floats("gamma", vis.gamma) if vis else None
    palette = parse_palette(vis.palette.split(",")) if vis and vis.palette else None
    derived = any(b in DERIVED for b in bands)
    if mins is None and maxs is None and rescale is None and not derived:
        if "min" in base and "max" in base:
            mins = _floats("min", _joined(base["min"]))
            maxs = _floats("max", _joined(base["max"]))
        if gamma is None and "gamma" in base:
            gamma = _floats("gamma", _joined(base["gamma"]))
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


def read_options(
    dataset: DatasetParams, catalog: Catalog | None = None, bands: Sequence[str] = ()
) -> ReadOptions:
    """ReadOptions from titiler's ``DatasetParams``.

    Args:
        dataset: the parameters.
        catalog: with ``bands``: check that a nodata override fits the bands read.
        bands: the bands the request reads.

    Raises:
        InvalidNodata: a nodata override that is infinite or does not fit a band.
    """
    nodata = check_nodata_value(dataset.nodata)  # type: ignore[arg-type]
    if catalog is not None:
        check_nodata(catalog, nodata, bands)
    return ReadOptions(
        resampling_method=dataset.resampling_method,
        reproject_method=dataset.reproject_method,
        unscale=bool(dataset.unscale),
        nodata=nodata,
    )


@dataclass(frozen=True)
class Mosaic:
    """Everything a mosaicking route needs, parsed and validated once."""

    catalog: Catalog
    search: Search
    layer: Layer
    options: ReadOptions


def mosaic_params(
    catalog: Annotated[Catalog, Depends(get_catalog)],
    search: Annotated[SearchParams, Depends()],
    layer: Annotated[LayerParams, Depends()],
    vis: Annotated[VisParams, Depends()],
    rendering: Annotated[RenderingParams, Depends()],
    dataset: Annotated[DatasetParams, Depends()],
    colormap: Annotated[Any, Depends(ColorMapParams)],
) -> Mosaic:
    """Filters, layer, visualisation and read options of a request (400 if any is bad)."""
    chosen = resolve_layer(
        catalog.info(), layer, vis, rendering.rescale, rendering.color_formula, colormap
    )
    return Mosaic(
        catalog=catalog,
        search=search.search(),
        layer=chosen,
        options=read_options(dataset, catalog, [*chosen.quality.bands, *chosen.bands]),
    )
