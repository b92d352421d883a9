"""Build a STAC ItemCollection from local (cloud-optimized) GeoTIFF files.

This is the library behind ``tiler index``. Every file is read once with
:func:`rio_stac.create_stac_item`, which supplies the footprint, the bbox and the
``proj:*``, ``raster:bands`` and ``eo:bands`` metadata. Files are then grouped into
items (one file per band, or one multi-band file per item), each item gets a
datetime, and the items are written as a GeoJSON FeatureCollection of STAC 1.0
items whose asset hrefs are relative to the output file.

Grouping, when no ``group_pattern`` is given, works folder by folder:

* a file with several bands is always an item of its own (id = file stem, one
  asset ``"data"``);
* the single-band files of a folder whose stems are ``<scene>_<band>`` with one
  common ``<scene>`` form one item named after the folder
  (``LE70350322008118EDC00/LE70350322008118EDC00_b3.tif`` -> item
  ``LE70350322008118EDC00``, asset ``b3``);
* otherwise, when all stems share a leading ``_``-separated prefix and the rest
  holds no date (``LC08_..._T2_SR_B2`` / ``LC08_..._T2_QA_PIXEL``), or when no stem
  contains ``_`` and none holds a date (``B02.tif``, ``SCL.tif``), the folder is
  one item and the asset keys are the varying parts;
* otherwise files sharing ``<scene>`` form an item named ``<scene>`` and the
  remaining files are items of their own.

Datetimes come, in order, from ``datetime_pattern``/``datetime_format``, from the
``ACQUISITION_DATETIME`` / ``IMAGERY:ACQUISITIONDATETIME`` / ``TIFFTAG_DATETIME``
tags of the item's first file, from a date found in the item id or file path
(``YYYYMMDD[THHMMSS]``, ``YYYY-MM-DD``, Landsat ``LXSPPPRRRYYYYDDD`` and MODIS
``AYYYYDDD``), and finally from the fixed ``datetime`` option.

Modules: :mod:`~tiler.tools.index.build` (the entry point and its options),
:mod:`~tiler.tools.index.scan` (finding and reading files),
:mod:`~tiler.tools.index.grouping` (files to items),
:mod:`~tiler.tools.index.datetimes` (dates in names and patterns),
:mod:`~tiler.tools.index.items` (STAC items and the output file) and
:mod:`~tiler.tools.index.errors`.
"""

from __future__ import annotations

from tiler.tools.index.build import build_item_collection
from tiler.tools.index.errors import (
    DatetimeNotFoundError,
    IndexingError,
    InvalidPatternError,
    NoFilesFoundError,
)

__all__ = [
    "DatetimeNotFoundError",
    "IndexingError",
    "InvalidPatternError",
    "NoFilesFoundError",
    "build_item_collection",
]
