"""Command line: ``tiler serve``, ``tiler demo``, ``tiler index``, ``tiler export``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from socket import socket
from typing import TYPE_CHECKING, Any

import click
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.supervisors import Multiprocess

from tiler import __version__
from tiler.export.command import export

if TYPE_CHECKING:
    from tiler.settings import Settings

#: what a request that the HTTP parser cannot read gets (uvicorn's own is plain text)
UNREADABLE = (
    "the HTTP request could not be read: a malformed request line or header, or a request "
    "line and headers longer than the server's limit of about 64 KB; shorten the URL (a "
    "large geometry goes in the body of POST /collections/{id}/feature)"
)


class JSONErrorsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, whose 400 for an unreadable request is the API's JSON.

    uvicorn answers a request its parser refuses (a request line over about 64 KB, bytes
    that are not HTTP) itself, with ``text/plain`` "Invalid HTTP request received.": the
    request never reaches the app, so the app cannot answer it; this writes the same 400
    as ``{"detail": ...}``, as the API's other refusals are.
    """

    def send_400_response(self, msg: str) -> None:
        """Write a JSON 400 and close the connection (``msg`` is uvicorn's, not the client's)."""
        body = json.dumps({"detail": UNREADABLE}).encode()
        head = [b"HTTP/1.1 400 Bad Request\r\n"]
        head += [
            name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers
        ]
        head += [
            b"content-type: application/json\r\n",
            b"content-length: " + str(len(body)).encode() + b"\r\n",
            b"connection: close\r\n\r\n",
        ]
        self.transport.write(b"".join(head) + body)
        self.transport.close()


class DrainingMultiprocess(Multiprocess):
    """uvicorn's worker supervisor, which stops listening when it is told to stop.

    uvicorn's parent process keeps its copy of the listening socket open until every worker
    has finished its requests in flight: connections that arrive meanwhile are accepted by the
    kernel, never served, and reset when the parent exits. Closing the parent's copy first
    means that once the workers stop accepting (at once, on SIGTERM), the port refuses.
    """

    def __init__(self, config: uvicorn.Config, sockets: list[socket]) -> None:
        super().__init__(config, sockets=sockets)
        self.listening = sockets

    def terminate_all(self) -> None:
        """Close the parent's listening sockets, then terminate the workers (they drain)."""
        for sock in self.listening:
            sock.close()
        super().terminate_all()


@click.group()
@click.version_option(__version__, prog_name="tiler")
@click.option("-v", "--verbose", is_flag=True, help="Log at DEBUG level.")
def cli(verbose: bool) -> None:
    """qualitymosaic: exact per-pixel quality mosaics as map tiles."""
    from tiler.process import configure_logging

    fmt = "json" if os.environ.get("TILER_LOG_FORMAT", "").lower() == "json" else "text"
    configure_logging("DEBUG" if verbose else "INFO", fmt)


@cli.command()
@click.argument(
    "sources", nargs=-1, metavar="[PATH | postgresql://... | https://.../collections/ID]..."
)
@click.option(
    "--collection",
    "collection_ids",
    multiple=True,
    help="A collection of the PgSTAC databases to serve (repeatable; default: all).",
)
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
    "--forwarded-allow-ips",
    default="127.0.0.1",
    show_default=True,
    envvar="FORWARDED_ALLOW_IPS",
    help="Peers whose X-Forwarded-Proto and X-Forwarded-For are trusted, comma-separated, "
    "'*' for all (uvicorn's option; env FORWARDED_ALLOW_IPS). TILER_PUBLIC_URL, when set, "
    "makes every URL the API writes, whatever these headers say.",
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    envvar="TILER_WORKERS",
    help="Worker processes (env TILER_WORKERS).",
)
@click.option(
    "--baked",
    "baked",
    multiple=True,
    metavar="NAME=PATH_OR_URL",
    help="A COG made by tiler export, served as a layer of its collection at every zoom "
    "(where live tiles would answer too many items, for requests of exactly its quality "
    "and filters); repeatable. Adds to TILER_BAKED.",
)
def serve(
    sources: tuple[str, ...],
    collection_ids: tuple[str, ...],
    baked: tuple[str, ...],
    host: str,
    port: int,
    forwarded_allow_ips: str,
    workers: int,
) -> None:
    """Serve STAC collection files, PgSTAC databases and STAC API collections.

    SOURCE is a collection file, a PgSTAC URL (postgresql://user@host:port/db) or a STAC API
    collection URL (https://host/stac/v1/collections/sentinel-2-l2a).

    No SOURCE: the database of TILER_DATABASE_URL / DATABASE_URL when set, else the
    built-in demo collection.
    """
    import os

    from tiler.catalog.pgstac import is_dsn
    from tiler.catalog.stacapi import is_stac_api
    from tiler.process import (
        MULTIPROC_ENV,
        configure_logging,
        prepare_metrics_dir,
        remove_metrics_dir,
    )
    from tiler.settings import Settings

    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    layers = dict(settings.baked)
    for entry in baked:
        name, _, href = (part.strip() for part in entry.partition("="))
        if not name or not href:
            raise click.BadParameter(f"{entry!r}: expected NAME=PATH_OR_URL", param_hint="--baked")
        if "://" not in href and not href.startswith("/vsi"):
            if not Path(href).is_file():
                raise click.BadParameter(f"{name}: {href!r} is not a file", param_hint="--baked")
            href = str(Path(href).resolve())
        layers[name] = href
    resolved: list[str | Path] = []
    for source in sources:
        if is_dsn(source) or is_stac_api(source):
            resolved.append(source)
        elif Path(source).is_file():
            resolved.append(Path(source).resolve())
        else:
            raise click.BadParameter(
                f"{source!r} is neither a collection file, a postgresql:// URL nor a STAC "
                "API collection URL (https://.../collections/{id})",
                param_hint="SOURCE",
            )
    update: dict[str, object] = {}
    if resolved:
        update["collections"] = resolved
    if collection_ids:
        update["pgstac_collections"] = list(collection_ids)
    if layers:
        update["baked"] = layers
    settings = settings.model_copy(update=update)
    _check_baked(settings)
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "http": JSONErrorsProtocol,
        "forwarded_allow_ips": forwarded_allow_ips,
        "access_log": False,  # the app's access log (tiler.access) has no query strings
        "log_config": None,  # uvicorn's loggers go to the root logger's format
    }
    # the workers' metrics add up in files (prometheus-client's multiprocess mode)
    metrics_dir = None
    if settings.metrics and (workers > 1 or os.environ.get(MULTIPROC_ENV)):
        metrics_dir = prepare_metrics_dir()
    try:
        _run(settings, workers, options)
    finally:
        remove_metrics_dir(metrics_dir)


def _check_baked(settings: Settings) -> None:
    """Open the baked layers once before any worker starts: a bad one is a message.

    Not a traceback per worker; each worker checks them against its collections again.
    """
    if not settings.baked:
        return
    from tiler.catalog.baked import BakedLayerError
    from tiler.engine.baked import open_layers
    from tiler.engine.credentials import credentials_from
    from tiler.engine.datasets import DatasetCache

    datasets = DatasetCache(len(settings.baked), credentials_from(settings))
    try:
        open_layers(settings.baked, datasets)
    except BakedLayerError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        datasets.close()


def _run(settings: Settings, workers: int, options: dict[str, Any]) -> None:
    """Run uvicorn: ``workers`` processes, or the app in this process."""
    if workers > 1:
        # workers import the app factory and read the settings from the environment
        chosen = list(settings.collections)
        if not chosen and settings.database_url is None:
            from tiler.tools.demo import ensure_demo

            chosen = [ensure_demo(settings.demo_dir)]
        os.environ["TILER_COLLECTIONS"] = json.dumps([str(c) for c in chosen])
        os.environ["TILER_PGSTAC_COLLECTIONS"] = json.dumps(settings.pgstac_collections)
        os.environ["TILER_BAKED"] = json.dumps(settings.baked)
        config = uvicorn.Config("tiler.app:serve_app", factory=True, workers=workers, **options)
        sock = config.bind_socket()
        try:
            DrainingMultiprocess(config, sockets=[sock]).run()
        finally:
            sock.close()
        return
    from tiler.app import serve_app

    uvicorn.run(serve_app(settings), **options)


@cli.command()
@click.argument(
    "paths", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option("--dsn", required=True, envvar="DATABASE_URL", help="PgSTAC database URL.")
@click.option(
    "--collection",
    "collection_id",
    default=None,
    help="Collection id (one file only; default: as tiler serve names it).",
)
def load(paths: tuple[Path, ...], dsn: str, collection_id: str | None) -> None:
    """Create or update collections in a PgSTAC database from collection files."""
    from tiler.catalog.loaders import load_collection
    from tiler.errors import CollectionLoadError
    from tiler.tools.load import load as load_file

    if collection_id is not None and len(paths) > 1:
        raise click.BadParameter("--collection names one file's collection", param_hint="PATHS")
    for path in paths:
        try:
            catalog = load_collection(path, collection_id)
            with click.progressbar(length=len(catalog.items), label=path.name) as bar:
                cid, count = load_file(path, dsn, catalog, progress=bar.update)
        except CollectionLoadError as exc:
            raise click.ClickException(str(exc)) from exc
        click.echo(f"{path}: {count} items in collection {cid}")


@cli.group()
def pgstac() -> None:
    """PgSTAC database administration."""


@pgstac.command()
@click.option("--dsn", required=True, envvar="DATABASE_URL", help="PgSTAC database URL.")
@click.option(
    "--to-version",
    default=None,
    metavar="X.Y.Z",
    help="PgSTAC version to install or upgrade to (default: the installed pypgstac's).",
)
def migrate(dsn: str, to_version: str | None) -> None:
    """Install or upgrade the PgSTAC schema (as pypgstac migrate does); prints its version."""
    from tiler.tools.load import MigrationError
    from tiler.tools.load import migrate as run

    try:
        version = run(dsn, to_version)
    except MigrationError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"pgstac {version}")


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


cli.add_command(export)


if __name__ == "__main__":  # pragma: no cover
    cli()
