"""The parts of an export on disk: one GeoTIFF per chunk written, and their manifest.

Beside the output ``OUT.tif``, the folder ``OUT.tif.parts/`` holds ``plan.json`` (what the
export computes: the parameters' digest, the grid, the type, the chunking, the overviews),
one tiled GeoTIFF per chunk written (made under a temporary name, then renamed: a part
exists whole or not at all; an overview level's parts are named ``L{level}_r{row}_c{col}``)
and ``done.jsonl``, one line per part written (its level, its chunk and what it took),
appended after the rename and flushed to disk. A resumed export keeps the parts that the
manifest lists and that exist, and computes the others; once every part is there they are
assembled (:mod:`tiler.export.cog`: one VRT per level, the output's naming the levels' as
its overviews) and the folder is removed.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import numpy
import rasterio

from tiler.export.chunks import ChunkResult, ExportError, ExportSpec, run_chunk
from tiler.export.grid import ChunkGrid, OutputGrid, Window

logger = logging.getLogger(__name__)

#: GDAL's VRT names of numpy's types
_VRT_TYPES = {
    "uint8": "Byte",
    "int8": "Int8",
    "uint16": "UInt16",
    "int16": "Int16",
    "uint32": "UInt32",
    "int32": "Int32",
    "uint64": "UInt64",
    "int64": "Int64",
    "float32": "Float32",
    "float64": "Float64",
}


def part_key(level: int, window: Window) -> str:
    """The name of a chunk's part: its window's key, after ``L{level}_`` for an overview."""
    return window.key if level == 0 else f"L{level}_{window.key}"


def write_part(path: Path, pixels: numpy.ndarray, chunk: ChunkGrid, block: int) -> None:
    """Write a chunk's pixels as its part: under a temporary name, then renamed."""
    count, height, width = pixels.shape
    profile = {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": count,
        "dtype": pixels.dtype.name,
        "crs": chunk.crs,
        "transform": chunk.transform,
        "tiled": True,
        "blockxsize": block,
        "blockysize": block,
        "compress": "deflate",
        "zlevel": 1,
    }
    tmp = path.with_name(path.name + ".tmp")
    with rasterio.open(tmp, "w", **profile) as dst:
        dst.write(pixels)
    os.replace(tmp, path)


def compute_part(
    spec: ExportSpec,
    chunk: ChunkGrid,
    window: Window,
    dtype: str,
    positions: Mapping[str, int],
    path: Path,
    block: int,
) -> ChunkResult:
    """The Dask task of a chunk whose worker writes the chunk's part itself.

    For workers that share the client's file system (a local cluster): the pixels never
    travel to the client, which only records the part.
    """
    result = run_chunk(spec, chunk, window, dtype, positions)
    if result.pixels is not None:
        write_part(path, result.pixels, chunk, block)
    return dataclasses.replace(result, pixels=None)


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class PartStore:
    """The parts folder of the export to ``output``.

    Args:
        output: the export's output file.
        plan: the export's plan document (:meth:`tiler.export.run.ExportPlan.document`).
        block: internal tile size of the parts.
    """

    def __init__(self, output: Path, plan: dict[str, Any], block: int) -> None:
        self.output = output
        self.folder = output.with_name(output.name + ".parts")
        self.plan = plan
        self.block = block
        self.records: dict[str, dict[str, Any]] = {}

    @property
    def manifest(self) -> Path:
        """The manifest of parts written."""
        return self.folder / "done.jsonl"

    def part(self, window: Window, level: int = 0) -> Path:
        """The file of a chunk's part (of overview ``level``; 0: the output's grid)."""
        return self.folder / f"{part_key(level, window)}.tif"

    def open(self, resume: bool) -> dict[str, dict[str, Any]]:
        """Start (or, with ``resume``, continue) the parts; the records of parts kept.

        Raises:
            ExportError: ``resume`` with parts of an export of other parameters.
        """
        if self.folder.exists() and resume:
            try:
                earlier = json.loads((self.folder / "plan.json").read_text())
            except (OSError, ValueError) as exc:
                raise ExportError(f"{self.folder} has no readable plan.json to resume") from exc
            if earlier != self.plan:
                raise ExportError(
                    f"{self.folder} holds an export of other parameters (collection, "
                    "filters, quality, bands, grid or chunk size): run it without --resume "
                    "to start afresh, or with its own parameters"
                )
            self.records = self._kept()
            logger.info("resuming: %d parts of %s already written", len(self.records), self.output)
            return self.records
        if self.folder.exists():
            logger.warning("removing the parts of an earlier export in %s", self.folder)
            shutil.rmtree(self.folder)
        self.folder.mkdir(parents=True)
        _atomic_write(self.folder / "plan.json", json.dumps(self.plan))
        self.records = {}
        return self.records

    def _kept(self) -> dict[str, dict[str, Any]]:
        records: dict[str, dict[str, Any]] = {}
        if not self.manifest.exists():
            return records
        for line in self.manifest.read_text().splitlines():
            try:
                record = json.loads(line)
            except ValueError:  # a line cut by the interruption
                continue
            window = Window(**record["window"])
            level = int(record.get("level", 0))
            if self.part(window, level).exists():
                records[part_key(level, window)] = record
        return records

    def write(self, result: ChunkResult, grid: OutputGrid, level: int = 0) -> dict[str, Any]:
        """Write a chunk's part (unless its worker did), then record it; its record.

        ``grid`` is the grid of overview ``level`` (0: the output's grid).
        """
        window = result.window
        if result.pixels is not None:
            write_part(self.part(window, level), result.pixels, grid.chunk(window), self.block)
        elif not self.part(window, level).exists():
            raise ExportError(
                f"the part of chunk {part_key(level, window)} is not in {self.folder}: "
                "the workers do not share the client's file system (write the parts in "
                "the client)"
            )
        record: dict[str, Any] = {
            "level": level,
            "window": {
                "col": window.col,
                "row": window.row,
                "width": window.width,
                "height": window.height,
            },
            "considered": result.considered,
            "read": result.read,
            "skipped": result.skipped,
            "seconds": round(result.seconds, 3),
        }
        with self.manifest.open("a") as log:
            log.write(json.dumps(record) + "\n")
            log.flush()
            os.fsync(log.fileno())
        self.records[part_key(level, window)] = record
        return record

    def vrt(
        self,
        grid: OutputGrid,
        dtype: str,
        names: list[str],
        level: int = 0,
        overviews: Sequence[Path] = (),
    ) -> Path:
        """A VRT of every part of ``level`` on its whole ``grid``.

        With the bands' descriptions, naming ``overviews`` (VRTs in this folder) as its
        bands' overviews.

        Raises:
            ExportError: a part is missing.
        """
        records = [r for r in self.records.values() if int(r.get("level", 0)) == level]
        windows = [Window(**r["window"]) for r in records]
        keys = {w.key for w in windows}
        missing = [
            part_key(level, w) for w in grid.windows(self.plan["chunk"]) if w.key not in keys
        ]
        if missing:
            raise ExportError(f"{len(missing)} parts are missing, e.g. {missing[0]}")
        kind = _VRT_TYPES[dtype]
        gt = ", ".join(repr(v) for v in grid.transform.to_gdal())
        bands = []
        for b, name in enumerate([*names, "valid"], start=1):
            colour = "Alpha" if name == "valid" and b == len(names) + 1 else "Gray"
            sources = "".join(
                '<SimpleSource><SourceFilename relativeToVRT="1">'
                f"{part_key(level, w)}.tif</SourceFilename>"
                f"<SourceBand>{b}</SourceBand>"
                f'<SrcRect xOff="0" yOff="0" xSize="{w.width}" ySize="{w.height}"/>'
                f'<DstRect xOff="{w.col}" yOff="{w.row}" xSize="{w.width}" ySize="{w.height}"/>'
                "</SimpleSource>"
                for w in windows
            )
            levels = "".join(
                f'<Overview><SourceFilename relativeToVRT="1">{escape(o.name)}</SourceFilename>'
                f"<SourceBand>{b}</SourceBand></Overview>"
                for o in overviews
            )
            bands.append(
                f'<VRTRasterBand dataType="{kind}" band="{b}">'
                f"<Description>{escape(name)}</Description>"
                f"<ColorInterp>{colour}</ColorInterp>{sources}{levels}</VRTRasterBand>"
            )
        path = self.folder / ("parts.vrt" if level == 0 else f"level{level}.vrt")
        _atomic_write(
            path,
            f'<VRTDataset rasterXSize="{grid.width}" rasterYSize="{grid.height}">'
            f"<SRS>{escape(grid.crs.to_wkt())}</SRS><GeoTransform>{gt}</GeoTransform>"
            f"{''.join(bands)}</VRTDataset>",
        )
        return path

    def remove(self) -> None:
        """Remove the parts folder (the output is complete)."""
        shutil.rmtree(self.folder, ignore_errors=True)
