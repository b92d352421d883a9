"""Command line: ``tiler serve``, ``tiler demo``, ``tiler index``."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from tiler import __version__


@click.group()
@click.version_option(__version__, prog_name="tiler")
@click.option("-v", "--verbose", is_flag=True, help="Log at DEBUG level.")
def cli(verbose: bool) -> None:
    """qualitymosaic: exact per-pixel quality mosaics as map tiles."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    envvar="TILER_HOST",
    help="Address to bind (env TILER_HOST).",
)
@click.option(
    "--port",
    default=8000,
    show_default=True,
    type=int,
    envvar="TILER_PORT",
    help="Port to bind (env TILER_PORT).",
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    envvar="TILER_WORKERS",
    help="Worker processes (env TILER_WORKERS).",
)
def serve(paths: tuple[Path, ...], host: str, port: int, workers: int) -> None:
    """Serve STAC collections in PATHS (no PATH: the built-in demo collection)."""
    import os

    import uvicorn

    from tiler.settings import Settings

    settings = Settings()
    if paths:
        settings = settings.model_copy(update={"collections": [p.resolve() for p in paths]})
    if workers > 1:
        # workers import the app factory and read the settings from the environment
        os.environ["TILER_COLLECTIONS"] = _json_list(settings.collections)
        if not settings.collections:
            from tiler.tools.demo import ensure_demo

            os.environ["TILER_COLLECTIONS"] = _json_list([ensure_demo(settings.demo_dir)])
        uvicorn.run("tiler.app:serve_app", factory=True, host=host, port=port, workers=workers)
        return
    from tiler.app import serve_app

    uvicorn.run(serve_app(settings), host=host, port=port)


def _json_list(paths: list[Path]) -> str:
    import json

    return json.dumps([str(p) for p in paths])


@cli.command()
@click.option(
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder to create the demo in (default: the user cache).",
)
def demo(output: Path | None) -> None:
    """Create the built-in demo collection and print the path of its collection file."""
    from tiler.tools.demo import ensure_demo

    click.echo(str(ensure_demo(output)))


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Collection file to write (hrefs are relative to it).",
)
@click.option(
    "--collection",
    "collection_id",
    default=None,
    help="Collection id (default: the output file's stem).",
)
@click.option(
    "--group",
    "group_pattern",
    default=None,
    help="Regex on file paths with groups (?P<item>...) and (?P<band>...).",
)
@click.option(
    "--datetime-pattern",
    default=None,
    help="Regex with a (?P<date>...) group, matched on the path.",
)
@click.option("--datetime-format", default=None, help="strptime format of the date group.")
@click.option(
    "--datetime",
    "fixed_datetime",
    default=None,
    help="RFC 3339 datetime for items whose date cannot be found otherwise.",
)
@click.option(
    "--property",
    "properties",
    multiple=True,
    metavar="KEY=JSON",
    help="Extra item property (repeatable), e.g. --property platform='\"landsat-8\"'.",
)
def index(
    paths: tuple[Path, ...],
    output: Path,
    collection_id: str | None,
    group_pattern: str | None,
    datetime_pattern: str | None,
    datetime_format: str | None,
    fixed_datetime: str | None,
    properties: tuple[str, ...],
) -> None:
    """Build a STAC ItemCollection from COG files or folders (one item per scene)."""
    import json

    from tiler.tools.index import IndexingError, build_item_collection

    props: dict[str, object] = {}
    for entry in properties:
        key, sep, value = entry.partition("=")
        if not sep:
            raise click.BadParameter(f"{entry!r}: expected KEY=JSON", param_hint="--property")
        try:
            props[key] = json.loads(value)
        except json.JSONDecodeError:
            props[key] = value
    try:
        fc = build_item_collection(
            list(paths),
            output=output,
            collection_id=collection_id,
            group_pattern=group_pattern,
            datetime_pattern=datetime_pattern,
            datetime_format=datetime_format,
            datetime=fixed_datetime,
            properties=props or None,
        )
    except IndexingError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{output}: {len(fc['features'])} items")


if __name__ == "__main__":  # pragma: no cover
    cli()
