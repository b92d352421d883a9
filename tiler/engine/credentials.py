"""Credentials by host, applied when a file is opened, never when a search is cached.

- **Azure Blob Storage** (``https://{account}.blob.core.windows.net/{container}/...``, whatever
  catalogue the href came from): signed with a SAS token for its account and container from
  the Planetary Computer token API (:class:`~tiler.engine.sas.SasTokens`), renewed shortly
  before it expires; :meth:`Credentials.renew` drops a token that a read found refused.
- **S3**: per bucket or prefix, GDAL's own path-specific options
  (:class:`~tiler.engine.s3.S3Paths`), never process-wide environment, so one process reads
  requester-pays and public buckets alike.

A signed URL exists only between the open of a dataset and its close: the dataset cache is
keyed by the href, GDAL's per-URL caches of a token that was renewed are cleared
(:func:`~tiler.engine.jobs.forget_remote` on the container), and :meth:`Credentials.scrub`
takes tokens out of any text (messages of GDAL's errors name the file they failed on);
:mod:`tiler.engine.scrubbing` applies it to faults and rasterio's log records.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from tiler.engine.jobs import AccessRefused, forget_remote
from tiler.engine.s3 import S3Paths, s3_options
from tiler.engine.sas import SasTokens
from tiler.settings import Settings

__all__ = [
    "AZURE_ENDPOINT",
    "AZURE_SUFFIX",
    "UNSIGNED_ACCOUNTS",
    "AccessRefused",
    "Credentials",
    "SasTokens",
    "Signed",
    "credentials_from",
    "denied",
    "host_of",
    "s3_options",
]

#: the hosts of Azure Blob Storage accounts
AZURE_SUFFIX = ".blob.core.windows.net"
#: public accounts that the SDK does not sign either (thumbnails)
UNSIGNED_ACCOUNTS = frozenset({"ai4edatasetspublicassets"})
#: where an account's containers are (``{account}``: its name)
AZURE_ENDPOINT = "https://{account}.blob.core.windows.net"
#: the query of a URL that carries a SAS signature (``sig=``), and its parameters
_SAS_QUERY = re.compile(r"\?(?=[^\s'\"]*\bsig=)[^\s'\"]*")
_DENIED = ("response code: 401", "response code: 403", "access denied", "permission denied")


def denied(exc: BaseException) -> bool:
    """Whether a read's fault (or one it was raised from) says 401/403."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, AccessRefused) or any(w in str(seen).lower() for w in _DENIED):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def host_of(href: str) -> str:
    """The storage host an href names: a URL's host, ``s3://bucket``, else ``local``."""
    parts = urlsplit(href)
    if parts.scheme in ("http", "https"):
        return parts.hostname or href
    if parts.scheme:
        return f"{parts.scheme}://{parts.netloc}"
    if href.startswith("/vsis3/"):
        return "s3://" + href.split("/")[2]
    return "local"


@dataclass(frozen=True)
class Signed:
    """How one href is opened: the URL GDAL reads, and the token in it (if any)."""

    href: str
    url: str
    token: str | None = None
    account: str = ""
    container: str = ""


class Credentials:
    """What the engine opens for an href: signed Azure URLs, S3 options per bucket.

    Args:
        tokens: the SAS token source (None: Azure hrefs are read as they are).
        blob_endpoint: where an account's containers are (``{account}`` replaced); the
            default is Azure's own, an emulator (Azurite, the tests') is e.g.
            ``http://127.0.0.1:10000/{account}``.
        s3: GDAL options per S3 bucket or prefix (``{"usgs-landsat": {"AWS_REQUEST_PAYER":
            "requester"}}``), set by :meth:`apply` and cleared by :meth:`close`.
        forget: makes GDAL forget what it cached under a URL prefix.
    """

    def __init__(
        self,
        tokens: SasTokens | None = None,
        blob_endpoint: str = AZURE_ENDPOINT,
        s3: Mapping[str, Mapping[str, str]] | None = None,
        forget: Callable[[str], None] = forget_remote,
    ) -> None:
        self.tokens = tokens
        self.blob_endpoint = blob_endpoint.rstrip("/")
        self.s3 = S3Paths(s3 or {})
        self._forget = forget
        if tokens is not None:
            tokens.on_renew = self._forget_container

    def apply(self) -> None:
        """Set the S3 options in GDAL (process-wide, per path prefix)."""
        self.s3.apply()

    def close(self) -> None:
        """Clear the S3 options this object set."""
        self.s3.clear()

    def blob(self, href: str) -> tuple[str, str, str] | None:
        """(account, container, blob path) of an Azure Blob href to sign, else None."""
        parts = urlsplit(href)
        host = (parts.hostname or "").lower()
        if parts.scheme not in ("http", "https") or not host.endswith(AZURE_SUFFIX):
            return None
        account = host.removesuffix(AZURE_SUFFIX)
        container, _, path = parts.path.lstrip("/").partition("/")
        if not container or account in UNSIGNED_ACCOUNTS or "sig=" in parts.query:
            return None
        return account, container, path

    def locate(self, href: str) -> str:
        """The URL GDAL reads for ``href``, without any secret (the endpoint applied)."""
        blob = self.blob(href)
        if blob is None or self.tokens is None:
            return href
        account, container, path = blob
        return f"{self.blob_endpoint.format(account=account)}/{container}/{path}"

    def sign(self, href: str) -> Signed:
        """How to open ``href`` now (a token fetched or renewed if needed).

        Raises:
            AccessRefused: the token API refused or failed.
        """
        blob = self.blob(href)
        if blob is None or self.tokens is None:
            return Signed(href, href)
        account, container, _ = blob
        token = self.tokens.get(account, container)
        return Signed(href, f"{self.locate(href)}?{token}", token, account, container)

    def renew(self, signed: Signed) -> None:
        """``signed`` was refused: renew its token and make GDAL forget the refusal."""
        if signed.token is None or self.tokens is None:
            return
        self.tokens.renew(signed.account, signed.container, signed.token)
        self._forget(signed.url)

    def forget(self, signed: Signed) -> None:
        """Make GDAL forget what it cached of ``signed.url`` (its next open asks again)."""
        if signed.token is not None:
            self._forget(signed.url)

    def _forget_container(self, account: str, container: str) -> None:
        """A token was renewed: GDAL's caches of URLs with the old one are dropped."""
        prefix = f"{self.blob_endpoint.format(account=account)}/{container}/"
        self._forget(prefix)

    def scrub(self, text: str) -> str:
        """``text`` without any SAS token (known ones, and any URL query with ``sig=``)."""
        if self.tokens is not None:
            for token in self.tokens.secrets():
                text = text.replace(token, "<token>")
        return _SAS_QUERY.sub("?<token>", text)


def credentials_from(settings: Settings) -> Credentials:
    """The credentials ``settings`` describe (token endpoint and key, blob endpoint, S3)."""
    tokens = None
    if settings.azure_sas:
        key = settings.pc_subscription_key
        tokens = SasTokens(
            settings.pc_sas_url,
            None if key is None else key.get_secret_value(),
            timeout=settings.stac_api_timeout,
        )
    s3 = {
        name: s3_options(bucket.model_dump(exclude_none=True))
        for name, bucket in settings.s3_buckets.items()
    }
    return Credentials(tokens, settings.azure_blob_endpoint, s3)
