"""Query parameters in dataclass dependencies (as titiler does), resolved into domain objects.

The served catalogue, the tile matrix set, the search, the quality expression, the output
bands, the visualisation and the read options of a request come from here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Path, Query, Request
from morecantile import TileMatrixSet
from morecantile.defaults import tms as default_tms
from pydantic import BeforeValidator
from rio_tiler.types import ColorMapType
from titiler.core.dependencies import (
    DatasetParams,
    DefaultDependency,
    RenderingParams,
)

from tiler.api.checks import ColorMapParams, check_nodata, check_nodata_value
from tiler.api.params import parse_floats
from tiler.catalog.base import Catalog
from tiler.catalog.coverage import MinZoom
from tiler.catalog.filters import MAX_SORT_KEYS, Search, make_search
from tiler.catalog.models import CollectionInfo
from tiler.engine.expression import Expression, parse
from tiler.engine.io import ReadOptions
from tiler.engine.outputs import DERIVED
from tiler.engine.service import Engine
from tiler.errors import (
    CollectionNotFound,
    InvalidBands,
    InvalidVisualisation,
    TileNotFound,
    quoted,
)
from tiler.render import MAX_PALETTE_COLOURS, Visualisation, parse_palette
from tiler.settings import Settings

TMS_IDS = tuple(default_tms.list())

#: an integer as a URL writes it: ASCII digits, an optional minus sign, nothing else
_ASCII_INT = re.compile(r"-?[0-9]{1,10}")


def _ascii_int(value: Any) -> Any:
    """Refuse what Python's ``int()`` would also read: spaces, newlines, ``_``, ``+``, ``.0``."""
    if isinstance(value, str) and _ASCII_INT.fullmatch(value) is None:
        raise ValueError(
            "must be an integer in ASCII digits 0-9 (at most 10, with an optional leading "
            "'-') and nothing else, e.g. 14"
        )
    return value


ASCII_DIGITS = BeforeValidator(_ascii_int)
"""Metadata of an integer path or query parameter: ASCII digits only (``14``, not ``14\\n``,
``+14``, ``1_4``, ``14.0`` or full-width digits, which pydantic reads). Put it after the
``Path``/``Query``: ``Annotated[int, Query(ge=0), ASCII_DIGITS]`` (before it, FastAPI
writes ``ge``/``le`` into the OpenAPI document instead of ``minimum``/``maximum``)."""

# ---------------------------------------------------------------------------------------
# what the OpenAPI document says of the text parameters. These patterns only document: the
# parsers check the values (their messages say what was wrong and what is allowed, where
# pydantic would print the pattern). Each one is a subset of what the parser accepts, so a
# value that matches is not refused for its form (rules between parameters, such as "min
# <= max" or "one value per band", are in the descriptions: OpenAPI cannot say them).

#: a finite decimal number (exponents up to 99: never an infinity)
_NUMBER = r"-?(?:[0-9]{1,20}(?:\.[0-9]{1,20})?|\.[0-9]{1,20})(?:[eE][-+]?[0-9]{1,2})?"
_POSITIVE = r"(?:0{0,20}[1-9][0-9]{0,19}(?:\.[0-9]{1,20})?|0{0,20}\.[0-9]{0,19}[1-9])"
_LON = r"-?(?:180(?:\.0{1,20})?|(?:1[0-7][0-9]|[0-9]{1,2})(?:\.[0-9]{1,20})?)"
_LAT = r"-?(?:90(?:\.0{1,20})?|[0-8]?[0-9](?:\.[0-9]{1,20})?)"
_DATE = r"[1-9][0-9]{3}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
_TIME = r"(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,9})?"
_OFFSET = r"(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
_INSTANT = f"{_DATE}(?:[Tt ]{_TIME}{_OFFSET}?)?"
_END = f"(?:{_INSTANT}|\\.\\.)?"
_HEX = r"#?(?:[0-9A-Fa-f]{3,4}|[0-9A-Fa-f]{6}|[0-9A-Fa-f]{8})"
_SORT_KEY = r"[+-]?[A-Za-z_][A-Za-z0-9_:.\-]*"

#: OpenAPI schema keywords of each text parameter (``json_schema_extra``)
DATETIME_SCHEMA = {"pattern": f"^(?:{_INSTANT}|{_END}/{_END})$", "maxLength": 80}
BBOX_SCHEMA = {"pattern": f"^{_LON},{_LAT},{_LON},{_LAT}$", "maxLength": 200}
NUMBERS_SCHEMA = {"pattern": f"^{_NUMBER}(?:,{_NUMBER})*$", "maxLength": 2000}
POSITIVES_SCHEMA = {"pattern": f"^{_POSITIVE}(?:,{_POSITIVE})*$", "maxLength": 2000}
PALETTE_SCHEMA = {
    "pattern": f"^{_HEX}(?:,{_HEX}){{0,{MAX_PALETTE_COLOURS - 1}}}$",
    "maxLength": 9 * MAX_PALETTE_COLOURS,
}
SORTBY_SCHEMA = {"pattern": f"^{_SORT_KEY}(?:,{_SORT_KEY}){{0,{MAX_SORT_KEYS - 1}}}$"}
"""An integer path or query parameter written in ASCII digits only (``14``, not ``14\\n``,
``+14``, ``1_4``, ``14.0`` or full-width digits, which pydantic would accept)."""


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
            f"unknown collection {quoted(collection_id)}; served collections: "
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
            f"unknown tileMatrixSetId {quoted(tileMatrixSetId)}; supported: {', '.join(TMS_IDS)}"
        )
    return default_tms.get(tileMatrixSetId)


@dataclass
class SearchParams(DefaultDependency):
    """STAC API item filters and order."""

    datetime: Annotated[
        str | None,
        Query(
            description="RFC 3339 date-time or full date (in UTC when it has no offset), "
            "or an interval start/end whose open end is '..' or empty, e.g. "
            "2020-07-01/2020-09-01, 2020-07-01T10:00:00Z/.. (start <= end).",
            json_schema_extra=DATETIME_SCHEMA,
        ),
    ] = None
    bbox: Annotated[
        str | None,
        Query(
            description="Only items intersecting minx,miny,maxx,maxy: lon in -180..180, "
            "lat in -90..90 (miny <= maxy), e.g. -103.3,40.0,-103.1,40.2.",
            json_schema_extra=BBOX_SCHEMA,
        ),
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
            description="Collection order (and so the tie order): at most "
            f"{MAX_SORT_KEYS} comma-separated property names, each with an optional '+' or '-' "
            "prefix, e.g. -eo:cloud_cover,datetime. Item id ascending is always the last "
            "key. Default: datetime.",
            json_schema_extra=SORTBY_SCHEMA,
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
            "-MSK_CLDPRB or (B08-B04)/(B08+B04); a common name of one band (red, nir, ...) "
            "stands for that band, e.g. (nir-red)/(nir+red). The highest value wins each "
            "pixel. Default: the collection's default visualisation.",
        ),
    ] = None
    bands: Annotated[
        str | None,
        Query(
            description="Comma-separated output bands: band names, common names of one "
            "band (red, green, blue, nir, ...; see the collection's aliases), or quality, "
            "_index (winner's position in collection order), _date (winner's days since "
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

    min: Annotated[
        str | None,
        Query(
            description="Value(s) mapped to 0: one finite number, or one per output band "
            "(with max, each min <= its max), e.g. 0 or 0,0,0.",
            json_schema_extra=NUMBERS_SCHEMA,
        ),
    ] = None
    max: Annotated[
        str | None,
        Query(
            description="Value(s) mapped to 255: one finite number, or one per output band "
            "(with min), e.g. 4500 or 3000,3000,4500.",
            json_schema_extra=NUMBERS_SCHEMA,
        ),
    ] = None
    gamma: Annotated[
        str | None,
        Query(
            description="Gamma correction (with min and max): one number > 0, or one per "
            "output band, e.g. 1.4.",
            json_schema_extra=POSITIVES_SCHEMA,
        ),
    ] = None
    palette: Annotated[
        str | None,
        Query(
            description="For a single output band: 1 to "
            f"{MAX_PALETTE_COLOURS} comma-separated hex colours (rgb, rgba, rrggbb or "
            "rrggbbaa, '#' optional), e.g. 000000,ffffff; not with colormap.",
            json_schema_extra=PALETTE_SCHEMA,
        ),
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
                f"unknown preset {quoted(layer.preset)}; presets of {info.id}: "
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
    quality = parse(str(text), info.bands, info.aliases)

    allowed = [*info.bands, *DERIVED]
    if layer.bands not in (None, ""):
        text = str(layer.bands)
        count = text.count(",") + 1
        if count > len(allowed):  # before anything else looks at 10,000 names
            raise InvalidBands(
                f"{count} output bands: at most {len(allowed)} (as many as {info.id} has "
                f"bands, derived ones included: {', '.join(allowed)})"
            )
        names = [b.strip() for b in text.split(",")]
    else:
        names = [str(b) for b in base.get("bands") or []]
    # common names become band names here, once: the engine only sees band names
    bands = [info.resolve_band(b, DERIVED) for b in names]
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
