"""``tiler export``: the command (:mod:`tiler.cli` adds it); the work is in :mod:`tiler.export`.

Only click is imported here: Dask, GDAL and the engine are imported when the command runs.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from rasterio.crs import CRS

    from tiler.export.run import Progress

#: the exit status of an export stopped by Ctrl-C (as a shell reports SIGINT)
INTERRUPTED = 130


def _crs(text: str, option: str) -> CRS:
    from rasterio.crs import CRS
    from rasterio.errors import CRSError

    try:
        return CRS.from_user_input(text)
    except CRSError as exc:
        raise click.BadParameter(f"{text!r}: {exc}", param_hint=option) from exc


def _bbox(text: str) -> tuple[float, float, float, float]:
    parts = text.split(",")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        values = []
    if len(values) != 4:
        raise click.BadParameter(f"{text!r}: expected MINX,MINY,MAXX,MAXY", param_hint="--bbox")
    return values[0], values[1], values[2], values[3]


def _sources(sources: tuple[str, ...]) -> tuple[str, ...]:
    """Files as absolute paths (workers open them), URLs as they are."""
    from tiler.catalog.pgstac import is_dsn
    from tiler.catalog.stacapi import is_stac_api

    out = []
    for source in sources:
        if is_dsn(source) or is_stac_api(source):
            out.append(source)
        elif Path(source).is_file():
            out.append(str(Path(source).resolve()))
        else:
            raise click.BadParameter(
                f"{source!r} is neither a collection file, a postgresql:// URL nor a STAC "
                "API collection URL (https://.../collections/{id})",
                param_hint="SOURCE",
            )
    return tuple(out)


class _Bar:
    """A click progress bar of chunks written, with the item reads so far."""

    def __init__(self, total: int) -> None:
        self.bar: Any = click.progressbar(
            length=total,
            label="chunks",
            show_eta=True,
            show_pos=True,
            item_show_func=lambda p: None if p is None else f"{p.item_reads:,} item reads",
        )
        self.pos = 0

    def __call__(self, progress: Progress) -> None:
        self.bar.update(progress.done - self.pos, progress)
        self.pos = progress.done

    def close(self) -> None:
        self.bar.render_finish()


@click.command()
@click.argument("sources", nargs=-1, required=True, metavar="SOURCE...")
@click.option("--collection", required=True, help="The collection id.")
@click.option("--bbox", required=True, help="MINX,MINY,MAXX,MAXY (in --bbox-crs).")
@click.option("--bbox-crs", default="EPSG:4326", show_default=True, help="CRS of --bbox.")
@click.option("--crs", default=None, help="Output CRS (default: the items' most common).")
@click.option(
    "--resolution",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Pixel size in --crs units (default: the finest output band's).",
)
@click.option("--quality", default=None, help="Quality expression (default: the collection's).")
@click.option("--bands", default=None, help="Output bands B1,B2,... (default: the collection's).")
@click.option("--datetime", "when", default=None, help="RFC 3339 instant or interval.")
@click.option("--filter", "cql2", default=None, help="CQL2 text on item properties.")
@click.option("--sortby", default=None, help="Collection order, e.g. -eo:cloud_cover.")
@click.option("--unscale", is_flag=True, help="Apply scale/offset to quality and output.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--scheduler", default=None, help="tcp://HOST:PORT of a running Dask scheduler.")
@click.option(
    "--workers",
    type=click.IntRange(1, 1024),
    default=None,
    help="Processes of the local Dask cluster (default: one per core).",
)
@click.option(
    "--chunk",
    type=click.IntRange(1),
    default=1024,
    show_default=True,
    help="Chunk side in pixels (a multiple of 512, the output's internal tile).",
)
@click.option(
    "--overviews",
    type=click.Choice(["mosaic", "nearest"]),
    default="mosaic",
    show_default=True,
    help="Overview levels computed as the quality mosaic at their resolution (what live "
    "tiles compute at that zoom), or decimated from the output by nearest neighbour.",
)
@click.option(
    "--parts-on",
    type=click.Choice(["workers", "client"]),
    default=None,
    help="Who writes the chunks' parts: the workers (the default on a local cluster; with "
    "--scheduler only if the workers share this machine's file system at the output's "
    "path) or the client (the default with --scheduler: the pixels travel to it).",
)
@click.option("--resume", is_flag=True, help="Finish an interrupted export of the same output.")
def export(
    sources: tuple[str, ...],
    collection: str,
    bbox: str,
    bbox_crs: str,
    crs: str | None,
    resolution: float | None,
    quality: str | None,
    bands: str | None,
    when: str | None,
    cql2: str | None,
    sortby: str | None,
    unscale: bool,
    output: Path,
    scheduler: str | None,
    workers: int | None,
    chunk: int,
    overviews: str,
    parts_on: str | None,
    resume: bool,
) -> None:
    """Export the quality mosaic of a region as a Cloud Optimized GeoTIFF, on Dask.

    SOURCE is what tiler serve takes: a collection file, a PgSTAC URL or a STAC API
    collection URL. The GeoTIFF holds the output bands' raw values, then a validity band
    (255 valid, 0 masked), with internal tiles and overviews.
    """
    from tiler.export.chunks import ExportError, ExportSpec
    from tiler.export.plan import Region, plan_export
    from tiler.export.run import ExportInterrupted, connect, dashboard
    from tiler.export.run import export as run
    from tiler.settings import Settings

    if scheduler is not None and workers is not None:
        raise click.UsageError("--scheduler and --workers exclude each other")
    logging.getLogger("distributed").setLevel(logging.WARNING)
    spec = ExportSpec(
        sources=_sources(sources),
        collection=collection,
        quality=quality or "",
        bands=tuple(b.strip() for b in bands.split(",")) if bands else (),
        datetime=when,
        filter=cql2,
        sortby=sortby,
        unscale=unscale,
        settings=Settings(),
    )
    region = Region(
        _bbox(bbox),
        _crs(bbox_crs, "--bbox-crs"),
        _crs(crs, "--crs") if crs else None,
        resolution,
    )
    try:
        plan = plan_export(spec, region, chunk=chunk, overviews=overviews)
    except ExportError as exc:
        raise click.ClickException(str(exc)) from exc
    grid = plan.grid
    click.echo(
        f"{grid.width} x {grid.height} px in {grid.crs.to_string()} at "
        f"{grid.transform.a:g} x {-grid.transform.e:g}; {len(plan.positions)} items; "
        f"{len(plan.windows())} chunks of {plan.chunk} px; bands "
        f"{', '.join(plan.spec.bands)} ({plan.dtype}) + valid"
    )
    tasks = plan.tasks()
    levels = len(plan.levels()) - 1
    if levels:
        click.echo(
            f"overviews: {levels} levels computed as the quality mosaic "
            f"({len(tasks) - len(plan.windows())} chunks more)"
        )
    elif overviews == "nearest":
        click.echo("overviews: decimated from the output by nearest neighbour")
    with connect(scheduler, workers) as client:
        link = dashboard(client)
        click.echo(f"dashboard: {link}" if link else "dashboard: none (install bokeh)")
        bar = _Bar(len(tasks))
        try:
            summary = run(
                plan,
                output,
                client,
                resume=resume,
                on_progress=bar,
                parts_on_workers=(parts_on or ("client" if scheduler else "workers")) == "workers",
            )
        except ExportInterrupted as exc:
            bar.close()
            click.echo(f"\n{exc}", err=True)
            sys.exit(INTERRUPTED)
        except ExportError as exc:
            raise click.ClickException(str(exc)) from exc
        bar.close()
    for line in summary.lines():
        click.echo(line)
