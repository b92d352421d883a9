"""Visualisation and encoding.

Earth Engine's min/max/gamma/palette and titiler's rescale/colormap, encoded by titiler's
``render_image``.
"""

from __future__ import annotations

import enum
import io
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy
from color_operations import parse_operations as parse_color_formula
from rasterio.enums import ColorInterp
from rasterio.io import MemoryFile
from rio_tiler.colormap import parse_color
from rio_tiler.errors import InvalidDatatypeWarning
from rio_tiler.models import ImageData
from rio_tiler.types import ColorMapType
from titiler.core.resources.enums import ImageType
from titiler.core.utils import render_image

from tiler.errors import InvalidVisualisation, TooLarge, quoted

#: zlib level of PNG tiles: speed over size (tiles are cached and usually compressed again)
PNG_ZLEVEL = 1
#: longest color_formula, most palette colours
MAX_COLOR_FORMULA_LENGTH = 256
MAX_PALETTE_COLOURS = 256
COLOR_FORMULA_FORMS = (
    "rio-color operations on bands 1-3 of the output (r, g, b or 1, 2, 3): 'gamma BANDS g' "
    "(g > 0), 'sigmoidal BANDS contrast bias' (bias in 0..1), 'saturation proportion' "
    "(3 bands), e.g. 'gamma RGB 1.5 sigmoidal RGB 10 0.35'"
)


class Format(enum.StrEnum):
    """Output formats."""

    png = "png"
    jpeg = "jpeg"
    jpg = "jpg"
    webp = "webp"
    tif = "tif"
    npy = "npy"

    @property
    def raw(self) -> bool:
        """Raw formats carry values, not colours."""
        return self in (Format.tif, Format.npy)

    @property
    def image_type(self) -> ImageType:
        """Titiler's enum member."""
        return ImageType[self.value]


#: output bands each image format's encoder takes, as rio-tiler renders them: PNG and WebP
#: add an alpha band (the mask) to 1-3 bands (WebP repeats one band to three first);
#: JPEG has no alpha and takes grey, RGB or CMYK
ENCODABLE_BANDS: dict[Format, tuple[int, ...]] = {
    Format.png: (1, 2, 3),
    Format.jpeg: (1, 3, 4),
    Format.jpg: (1, 3, 4),
    Format.webp: (1, 2, 3),
}
#: longest side each image format's encoder takes (libpng's default user limit, libjpeg's
#: JPEG_MAX_DIMENSION, libwebp's WEBP_MAX_DIMENSION); tif and npy have no such limit here
MAX_IMAGE_SIDE: dict[Format, int] = {
    Format.png: 1_000_000,
    Format.jpeg: 65_500,
    Format.jpg: 65_500,
    Format.webp: 16_383,
}
_RAW_HINT = "tif or npy (raw values, any number of bands and sizes up to the pixel limit)"


def check_encodable(
    fmt: Format, nbands: int, width: int, height: int, colormap: bool = False
) -> None:
    """Refuse, before any work, an image that ``fmt``'s encoder would refuse after it.

    Args:
        fmt: the output format.
        nbands: the request's output bands.
        width: image columns.
        height: image rows.
        colormap: a palette or colormap turns the (single) band into RGB.

    Raises:
        InvalidVisualisation: too many (or, for JPEG, two) bands for ``fmt``.
        TooLarge: a side longer than ``fmt`` allows.
    """
    if fmt.raw:
        return
    count = 3 if colormap else nbands
    allowed = ENCODABLE_BANDS[fmt]
    if count not in allowed:
        counts = ", ".join(str(n) for n in allowed[:-1]) + f" or {allowed[-1]}"
        alpha = "" if fmt in (Format.jpeg, Format.jpg) else " (plus the alpha band of the mask)"
        raise InvalidVisualisation(
            f"{fmt.value} images hold {counts} output bands{alpha}; the request has {nbands}: "
            f"ask for {counts} bands, or use {_RAW_HINT}"
        )
    side = MAX_IMAGE_SIDE[fmt]
    if width > side or height > side:
        sides = ", ".join(f"{f.value} {n}" for f, n in MAX_IMAGE_SIDE.items() if f != Format.jpg)
        raise TooLarge(
            f"a {width}x{height} {fmt.value} image exceeds that format's limit of {side} px "
            f"per side (limits per side: {sides}); use {_RAW_HINT}, or a smaller size"
        )


@dataclass(frozen=True)
class Visualisation:
    """How to turn output bands into colours."""

    min: tuple[float, ...] | None = None
    max: tuple[float, ...] | None = None
    gamma: tuple[float, ...] | None = None
    palette: tuple[str, ...] | None = None
    rescale: tuple[tuple[float, float], ...] | None = None
    colormap: ColorMapType | None = None
    color_formula: str | None = None

    def check(self, nbands: int) -> None:
        """Validate against the number of output bands.

        Raises:
            InvalidVisualisation: counts or ranges that do not fit.
        """
        for name in ("min", "max", "gamma"):
            values = getattr(self, name)
            if values is not None and len(values) not in (1, nbands):
                raise InvalidVisualisation(
                    f"{name} has {len(values)} values; give one value or one per band "
                    f"({nbands} bands)"
                )
        if (self.min is None) != (self.max is None):
            raise InvalidVisualisation("min and max go together: give both or neither")
        if self.min is not None and self.max is not None:
            lo, hi = _per_band(self.min, nbands), _per_band(self.max, nbands)
            for i, (a, b) in enumerate(zip(lo, hi, strict=True)):
                if a > b:
                    raise InvalidVisualisation(
                        f"min ({a:g}) is greater than max ({b:g}) for band {i + 1}; "
                        "min must be <= max"
                    )
        if self.gamma is not None and any(g <= 0 for g in self.gamma):
            raise InvalidVisualisation("gamma must be > 0")
        if self.gamma is not None and self.min is None and self.rescale is None:
            raise InvalidVisualisation("gamma needs min and max")
        if (self.palette or self.colormap) and nbands != 1:
            raise InvalidVisualisation(
                f"palette/colormap apply to a single band; the request has {nbands} bands"
            )
        if self.palette and self.colormap:
            raise InvalidVisualisation("give palette or colormap_name/colormap, not both")
        if self.rescale is not None:
            if len(self.rescale) not in (1, nbands):
                raise InvalidVisualisation(
                    f"rescale has {len(self.rescale)} ranges; give one, or one per band "
                    f"({nbands} bands)"
                )
            for low, high in self.rescale:
                if not (math.isfinite(low) and math.isfinite(high)) or low == high:
                    raise InvalidVisualisation(
                        f"rescale range {low:g},{high:g}: two different finite numbers min,max"
                    )
        if self.color_formula:
            check_color_formula(self.color_formula, nbands)


def check_color_formula(text: str, nbands: int) -> None:
    """Parse ``text`` and try it on a tiny image of ``nbands`` bands (what rendering does).

    Raises:
        InvalidVisualisation: too long, not parseable, or failing on the output's bands
            (e.g. a bias outside 0..1, a band beyond the output's, an overflow).
    """
    if len(text) > MAX_COLOR_FORMULA_LENGTH:
        raise InvalidVisualisation(
            f"color_formula is longer than {MAX_COLOR_FORMULA_LENGTH} characters; expected "
            f"{COLOR_FORMULA_FORMS}"
        )
    sample = numpy.linspace(0.0, 1.0, nbands * 4, dtype="float64").reshape(nbands, 2, 2)
    try:
        with numpy.errstate(over="raise", invalid="raise", divide="raise"):
            for operation in parse_color_formula(text):
                sample = operation(sample)
    except (ValueError, IndexError, KeyError, TypeError, ArithmeticError) as exc:
        raise InvalidVisualisation(
            f"color_formula {quoted(text, 80)} cannot be applied to {nbands} band(s): {exc}; "
            f"expected {COLOR_FORMULA_FORMS}"
        ) from None


def parse_palette(values: Sequence[str]) -> tuple[str, ...]:
    """Validate palette colours (hex ``rrggbb``/``#rrggbb``/``rgb``, with optional alpha).

    Raises:
        InvalidVisualisation: a colour that is not hex.
    """
    if len(values) > MAX_PALETTE_COLOURS:
        raise InvalidVisualisation(
            f"palette has {len(values)} colours: at most {MAX_PALETTE_COLOURS}"
        )
    out = []
    for raw in values:
        c = raw.strip().lstrip("#")
        if len(c) not in (3, 4, 6, 8) or any(ch not in "0123456789abcdefABCDEF" for ch in c):
            raise InvalidVisualisation(
                f"palette colour {quoted(raw, 40)} is not hex: use e.g. "
                "palette=440154,21918c,fde725"
            )
        out.append(c)
    if len(out) < 1:
        raise InvalidVisualisation("palette needs at least one colour")
    return tuple(out)


def _per_band(values: Sequence[float], n: int) -> list[float]:
    return list(values) * n if len(values) == 1 else list(values)


def palette_colormap(palette: Sequence[str]) -> dict[int, tuple[int, int, int, int]]:
    """A 256-entry colormap interpolating ``palette`` linearly (as Earth Engine does)."""
    colors = numpy.array(
        [
            parse_color("#" + (c if len(c) not in (3, 4) else "".join(ch * 2 for ch in c)))
            for c in palette
        ],
        dtype="float64",
    )
    if len(colors) == 1:
        colors = numpy.vstack([colors, colors])
    pos = numpy.linspace(0, 255, len(colors))
    steps = numpy.arange(256)
    table = numpy.stack([numpy.interp(steps, pos, colors[:, k]) for k in range(4)], axis=1)
    table = numpy.round(table).astype("uint8")
    return {i: tuple(int(v) for v in table[i]) for i in range(256)}  # type: ignore[misc]


def stretch(
    image: ImageData,
    mins: Sequence[float],
    maxs: Sequence[float],
    gamma: Sequence[float] | None = None,
) -> ImageData:
    """Earth Engine's linear stretch: ``((v - min) / (max - min)) ** (1 / gamma)`` to 0..255.

    Args:
        image: raw output bands.
        mins: one value or one per band.
        maxs: one value or one per band.
        gamma: optional gamma per band (or one).

    Returns:
        An uint8 image with the same mask.
    """
    n = image.count
    lo = numpy.array(_per_band(mins, n), dtype="float64")[:, None, None]
    hi = numpy.array(_per_band(maxs, n), dtype="float64")[:, None, None]
    span = numpy.where(hi > lo, hi - lo, 1.0)
    x = (image.array.data.astype("float64") - lo) / span
    x = numpy.clip(numpy.where(hi > lo, x, (image.array.data > lo).astype("float64")), 0, 1)
    if gamma is not None:
        g = numpy.array(_per_band(gamma, n), dtype="float64")[:, None, None]
        x = x ** (1.0 / g)
    data = numpy.round(x * 255.0).astype("uint8")
    return ImageData(
        numpy.ma.MaskedArray(data, mask=numpy.ma.getmaskarray(image.array)),
        bounds=image.bounds,
        crs=image.crs,
        band_names=image.band_names,
    )


def encode(image: ImageData, fmt: Format, vis: Visualisation) -> tuple[bytes, str]:
    """Apply ``vis`` (image formats only) and encode with titiler's ``render_image``.

    Returns:
        (content, media type).
    """
    colormap = vis.colormap
    if not fmt.raw:
        if vis.min is not None and vis.max is not None:
            image = stretch(image, vis.min, vis.max, vis.gamma)
        elif vis.rescale:
            image.rescale([(float(r[0]), float(r[1])) for r in vis.rescale])
            if vis.gamma is not None:
                image = stretch(image, [0], [255], vis.gamma)
        if image.array.dtype != numpy.uint8:
            # no stretch asked for: integers span their type's range, floats 0..1
            if numpy.issubdtype(image.array.dtype, numpy.integer):
                info = numpy.iinfo(image.array.dtype)
                image = stretch(image, [float(info.min)], [float(info.max)])
            else:
                image = stretch(image, [0.0], [1.0])
        if vis.palette:
            colormap = palette_colormap(vis.palette)
        if fmt is Format.png:
            # titiler's PNG profile fixes zlevel 6; level 1 encodes a 256 px tile in ~5 ms
            # instead of ~23 ms for ~20 % more bytes (benchmarks/README.md)
            if vis.color_formula:
                image.apply_color_formula(vis.color_formula)
            content = image.render(img_format="PNG", colormap=colormap, zlevel=PNG_ZLEVEL)
            return content, fmt.image_type.mediatype
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", InvalidDatatypeWarning)
            return render_image(
                image,
                output_format=fmt.image_type,
                colormap=colormap,
                color_formula=vis.color_formula,
            )
    return encode_raw(image, fmt), fmt.image_type.mediatype


def encode_raw(image: ImageData, fmt: Format) -> bytes:
    """Raw values and a validity band (255 = valid, 0 = masked) as NPY or GeoTIFF.

    The GeoTIFF carries the band names as descriptions and the validity band as alpha.
    """
    data = image.array.data
    valid = ~numpy.ma.getmaskarray(image.array).any(axis=0)
    alpha = numpy.where(valid, 255, 0).astype(data.dtype)
    if fmt is Format.npy:
        with io.BytesIO() as bio:
            numpy.save(bio, numpy.concatenate([data, alpha[None]]))
            return bio.getvalue()
    count, height, width = data.shape
    profile = {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": count + 1,
        "dtype": data.dtype.name,
        "crs": image.crs,
        "transform": image.transform,
        "compress": "deflate",
        "tiled": width >= 256 and height >= 256,
    }
    with MemoryFile() as mem:
        with mem.open(**profile) as dst:
            dst.write(data, indexes=list(range(1, count + 1)))
            dst.write(alpha, count + 1)
            dst.colorinterp = [ColorInterp.gray] * count + [ColorInterp.alpha]
            for i, name in enumerate(image.band_names):
                dst.set_band_description(i + 1, name)
            dst.set_band_description(count + 1, "valid")
        return bytes(mem.read())
