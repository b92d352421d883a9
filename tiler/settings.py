"""Server settings, read from the environment with the ``TILER_`` prefix."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def parse_baked(value: Any) -> dict[str, str]:
    """Baked layers as {name: path or URL}, from ``NAME=PATH_OR_URL,...`` or a JSON object.

    A path or URL holding a comma is given in the JSON form.

    Raises:
        ValueError: an entry without a name or a path, or a name given twice.
    """
    if isinstance(value, dict):
        pairs = [(str(k), str(v)) for k, v in value.items()]
    else:
        text = str(value or "").strip()
        if text.startswith("{"):
            loaded = json.loads(text)
            if not isinstance(loaded, dict):
                raise ValueError("expected a JSON object {name: path or URL}")
            return parse_baked(loaded)
        pairs = []
        for entry in text.split(",") if text else []:
            name, sep, href = entry.partition("=")
            pairs.append((name, href) if sep else ("", entry))
    out: dict[str, str] = {}
    for name, href in pairs:
        name, href = name.strip(), href.strip()
        if not name or not href:
            raise ValueError(f"baked layer {(name or href)!r}: expected NAME=PATH_OR_URL")
        if name in out:
            raise ValueError(f"baked layer {name!r} is named twice")
        out[name] = href
    return out


class S3Bucket(BaseModel):
    """How to read one S3 bucket (or prefix): GDAL options for its paths only."""

    model_config = ConfigDict(extra="forbid")

    requester_pays: bool = Field(
        default=False, description="Send x-amz-request-payer: requester (AWS_REQUEST_PAYER)."
    )
    unsigned: bool | None = Field(
        default=None,
        description="Read without signing (AWS_NO_SIGN_REQUEST): for public buckets when no "
        "credentials are configured.",
    )
    region: str | None = Field(default=None, description="The bucket's region (AWS_REGION).")
    endpoint: str | None = Field(
        default=None, description="host[:port] of an S3-compatible service (AWS_S3_ENDPOINT)."
    )
    https: bool | None = Field(default=None, description="AWS_HTTPS (default YES).")
    virtual_hosting: bool | None = Field(
        default=None, description="AWS_VIRTUAL_HOSTING (default TRUE)."
    )


class Settings(BaseSettings):
    """All knobs of the server. Every field can be set as ``TILER_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="TILER_", env_file=None, extra="ignore")

    collections: list[str | Path] = Field(
        default_factory=list,
        description="What to serve: STAC collection files, PgSTAC database URLs "
        "(postgresql://...) and STAC API collection URLs (https://.../collections/{id}); "
        "empty means the database of TILER_DATABASE_URL / DATABASE_URL "
        "when set, else the built-in demo.",
    )
    database_url: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("TILER_DATABASE_URL", "DATABASE_URL"),
        description="PgSTAC database served when no collection is named (libpq fills what "
        "it leaves out from PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE).",
    )
    baked: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=dict,
        description="Baked layers: COGs made by tiler export, served where live tiles would "
        "answer too many items, for requests asking exactly what they computed. "
        "NAME=PATH_OR_URL,... or a JSON object {name: path or URL}; operator-given only.",
    )
    pgstac_collections: list[str] = Field(
        default_factory=list,
        description="Collections of the PgSTAC databases to serve (empty: all of them).",
    )
    db_min_conn_size: int = Field(
        default=1, ge=0, le=100, description="Connections a PgSTAC pool keeps open."
    )
    db_max_conn_size: int = Field(
        default=10, ge=1, le=100, description="Most connections of a PgSTAC pool."
    )
    db_timeout: float = Field(
        default=10.0,
        gt=0,
        le=300,
        description="Seconds to wait for a PgSTAC connection, and the statement timeout.",
    )
    search_cache_ttl: float = Field(
        default=300.0,
        ge=0,
        description="Seconds a database catalogue keeps a search's item list (0: off).",
    )
    stac_api_headers: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="Request headers for STAC APIs (JSON object, e.g. an Authorization "
        "token); never logged.",
    )
    stac_api_timeout: float = Field(
        default=10.0, gt=0, le=300, description="Seconds per request to a STAC API."
    )
    search_cache_size: int = Field(
        default=5000,
        ge=0,
        description="Items a database or STAC API catalogue keeps in its search cache, in all "
        "searches (an item costs ~10 KB).",
    )
    demo_dir: Path | None = Field(
        default=None,
        description="Where the demo collection is created (default: user cache).",
    )
    read_threads: int = Field(
        default_factory=lambda: max(2, os.cpu_count() or 2),
        ge=1,
        le=64,
        description="Reads of local files at once per worker (they are CPU work: "
        "decompression and resampling; default: the core count).",
    )
    io_threads: int = Field(
        default=32,
        ge=1,
        le=256,
        description="Reads of remote files (http, s3, /vsi...) at once per worker: they wait "
        "on the network, not the CPU, so a tile issues each pass's reads together and "
        "waits about one round trip per pass.",
    )
    max_items_per_tile: int = Field(
        default=500,
        ge=1,
        description="Requests selecting more items than this get a 400 asking to narrow them.",
    )
    max_tile_size: int = Field(
        default=1024, ge=64, description="Largest tile edge in pixels (tilesize x scale)."
    )
    max_export_pixels: int = Field(
        default=2048 * 2048,
        ge=1,
        description="Largest export (width x height) in pixels. An export holds ~80 bytes "
        "per pixel while it is computed (2048 x 2048: ~320 MB; 4096 x 4096: ~1.3 GB and "
        "16 s or more on 2 cores), so a worker may need TILER_MAX_IN_FLIGHT times that.",
    )
    max_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        description="Largest request body (the GeoJSON of POST /feature) in bytes; larger "
        "ones answer 413 before they are read or parsed.",
    )
    item_timeout: float = Field(
        default=5.0,
        gt=0,
        le=600,
        description="Seconds a tile's reads may wait on slow files in all (one deadline "
        "per tile, from its first read that waits on its file; longer for larger exports, in "
        "proportion to their pixels beyond 1024 x 1024); items still being read then are "
        "skipped and reported in X-Items-Skipped: what a web map can wait for.",
    )
    cors_origins: list[str] = Field(
        default_factory=lambda: ["*"], description="Origins allowed by CORS."
    )
    cache_control: str = Field(
        default="public, max-age=3600", description="Cache-Control header of tiles."
    )
    tile_cache_bytes: int = Field(
        default=128 * 1024 * 1024, ge=0, description="Rendered-tile cache size (0: off)."
    )
    root_path: str = Field(default="", description="ASGI root path behind a proxy.")
    public_url: str | None = Field(
        default=None,
        pattern=r"^https?://[^\s/?#@]+(/[^\s?#]*)?$",
        description="Base of every absolute URL the API writes (TileJSON, WMTS, tilesets, "
        "links), e.g. https://tiles.example.com/qm; unset: taken from each request's Host "
        "header, which a client can set to anything.",
    )
    max_in_flight: int | None = Field(
        default=None,
        ge=1,
        le=1024,
        description="Tiles, points and exports computed at once per worker process "
        "(default: 2 x read_threads). Beyond it a request waits its turn (see "
        "TILER_MAX_QUEUE_WAIT) or is answered 503 with Retry-After at once, before any "
        "work; tiles in the rendered-tile cache and requests identical to one being "
        "computed (which share its answer) do not count.",
    )
    max_queue_wait: float = Field(
        default=0.5,
        ge=0,
        le=60,
        description="When all TILER_MAX_IN_FLIGHT computations are busy, up to twice as many "
        "requests wait their turn whatever the wait (a map page's burst is served without "
        "holes), more only while their expected wait (requests ahead x recent computation "
        "time / max_in_flight) is under this many seconds; the others get 503 at once. A "
        "waiting request gets 503 after TILER_REQUEST_TIMEOUT. 0: no queue at all.",
    )
    request_timeout: float = Field(
        default=60.0,
        gt=0,
        le=3600,
        description="Seconds of work a request may take. Past it no further reads are "
        "scheduled and the answer is 504; a request stuck outside the reads is answered "
        "504 one second later.",
    )
    open_datasets: int = Field(
        default=64,
        ge=0,
        le=4096,
        description="Open datasets kept for reuse per worker (all read threads together); "
        "each keeps its file's header and, with VSI_CACHE, up to VSI_CACHE_SIZE bytes.",
    )
    pc_sas_url: str = Field(
        default="https://planetarycomputer.microsoft.com/api/sas/v1/token",
        pattern=r"^https?://\S+$",
        validation_alias=AliasChoices("TILER_PC_SAS_URL", "PC_SDK_SAS_URL"),
        description="Planetary Computer token endpoint (the SDK's PC_SDK_SAS_URL): hrefs on "
        "*.blob.core.windows.net are signed with the token that GET {url}/{account}/{container} "
        "answers.",
    )
    pc_subscription_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("TILER_PC_SUBSCRIPTION_KEY", "PC_SDK_SUBSCRIPTION_KEY"),
        description="Planetary Computer API key (the SDK's PC_SDK_SUBSCRIPTION_KEY), sent to "
        "the token endpoint only; never logged.",
    )
    azure_sas: bool = Field(
        default=True,
        description="Sign hrefs on *.blob.core.windows.net with SAS tokens from the token "
        "endpoint (false: read them as they are).",
    )
    azure_blob_endpoint: str = Field(
        default="https://{account}.blob.core.windows.net",
        pattern=r"^https?://\S*\{account\}\S*$",
        description="Where an Azure account's containers are read ({account} replaced): "
        "Azure itself by default; an emulator's, e.g. http://127.0.0.1:10000/{account}.",
    )
    s3_buckets: dict[str, S3Bucket] = Field(
        default_factory=dict,
        description="Per S3 bucket or bucket/prefix, how to read it (JSON), e.g. "
        '{"usgs-landsat": {"requester_pays": true}, "sentinel-cogs": {"unsigned": true}}; '
        "applied as GDAL path-specific options, never process-wide.",
    )
    log_level: str = Field(
        default="INFO",
        pattern=r"^(?i:debug|info|warning|error|critical)$",
        description="Level of the application's log in each worker process (when the "
        "process has no logging configured yet, e.g. uvicorn workers).",
    )
    log_format: str = Field(
        default="text",
        pattern=r"^(text|json)$",
        description="Log lines as text, or json: one JSON object per line (time, level, "
        "logger, message, request_id and the access log's fields).",
    )
    metrics: bool = Field(
        default=True,
        description="Serve Prometheus metrics at /metrics and count requests for them "
        "(false: no /metrics, nothing counted).",
    )
    metrics_collection_labels: bool = Field(
        default=False,
        description="Label request metrics with the collection id (one series per served "
        "collection and route group); off: no collection label.",
    )

    @field_validator("baked", mode="before")
    @classmethod
    def _baked(cls, value: Any) -> dict[str, str]:
        return parse_baked(value)
