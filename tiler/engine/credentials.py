"""Credentials by host, applied when a file is opened, never when a search is cached.

- **Azure Blob Storage** (``https://{account}.blob.core.windows.net/{container}/...``, whatever
  catalogue the href came from): signed with a SAS token for its account and container from
  the Planetary Computer token API, as the planetary-computer SDK signs them: GET
  ``{PC_SDK_SAS_URL}/{account}/{container}`` (header ``Ocp-Apim-Subscription-Key`` when
  ``PC_SDK_SUBSCRIPTION_KEY`` is set) answers ``{"token": ..., "msft:expiry": ...}``. One token
  per account and container (:class:`SasTokens`), reused until shortly before it expires, then
  renewed; :meth:`Credentials.renew` drops a token that a read found refused.
- **S3**: per bucket or prefix, GDAL's own path-specific options (``VSISetPathSpecificOption``)
  for ``/vsis3/{bucket}/``: ``AWS_REQUEST_PAYER=requester`` for requester-pays buckets,
  ``AWS_NO_SIGN_REQUEST=YES`` for public ones (:class:`S3Paths`), never process-wide
  environment, so one process reads both kinds.

A signed URL exists only between the open of a dataset and its close: the dataset cache is
keyed by the href, GDAL's per-URL caches of a token that was renewed are cleared
(:func:`~tiler.engine.jobs.forget_remote` on the container), and :meth:`Credentials.scrub`
takes tokens out of any text (messages of GDAL's errors name the file they failed on);
:class:`SecretFilter` does it for rasterio's log records of GDAL errors.
"""

from __future__ import annotations

import ctypes
import datetime as dt
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests

from tiler.engine.jobs import forget_remote, gdal_function
from tiler.settings import Settings

logger = logging.getLogger(__name__)

#: the hosts of Azure Blob Storage accounts
AZURE_SUFFIX = ".blob.core.windows.net"
#: public accounts that the SDK does not sign either (thumbnails)
UNSIGNED_ACCOUNTS = frozenset({"ai4edatasetspublicassets"})
#: the token endpoint of the Planetary Computer (the SDK's default)
PC_SAS_URL = "https://planetarycomputer.microsoft.com/api/sas/v1/token"
#: where an account's containers are (``{account}``: its name)
AZURE_ENDPOINT = "https://{account}.blob.core.windows.net"
#: a token is renewed this many seconds before it expires (or at half of a shorter life)
RENEW_BEFORE = 120.0

#: the query of a URL that carries a SAS signature (``sig=``), and its parameters
_SAS_QUERY = re.compile(r"\?(?=[^\s'\"]*\bsig=)[^\s'\"]*")
_DENIED = ("response code: 401", "response code: 403", "access denied", "permission denied")


class AccessRefused(OSError):
    """A remote file's storage refused the read (401/403), or no token could be had.

    Attributes:
        host: the storage host the href names (never a token).
    """

    def __init__(self, host: str, why: str) -> None:
        super().__init__(
            f"access denied by {host}: credentials are missing, expired or refused ({why})"
        )
        self.host = host


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
class SasToken:
    """A SAS token for one account and container, and when it expires."""

    token: str
    expiry: float  # time.time()
    fetched: float

    def fresh(self, now: float, before: float) -> bool:
        """Valid for longer than ``before`` s (or half its life, if shorter)."""
        margin = min(before, (self.expiry - self.fetched) / 2)
        return now < self.expiry - margin


def _expiry(text: str) -> float:
    """``msft:expiry`` (RFC 3339, ``Z`` or an offset) as a POSIX time."""
    when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.timestamp()


class SasTokens:
    """SAS tokens from a Planetary Computer token API, one per account and container.

    Args:
        sas_url: the token endpoint (``PC_SDK_SAS_URL``).
        subscription_key: the API key (``PC_SDK_SUBSCRIPTION_KEY``), sent as
            ``Ocp-Apim-Subscription-Key``.
        timeout: seconds per token request.
        renew_before: seconds before expiry a token is renewed.
        clock: the wall clock (tests).
    """

    def __init__(
        self,
        sas_url: str = PC_SAS_URL,
        subscription_key: str | None = None,
        timeout: float = 10.0,
        renew_before: float = RENEW_BEFORE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.sas_url = sas_url.rstrip("/")
        self.timeout = timeout
        self.renew_before = renew_before
        self._key = subscription_key
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens: dict[tuple[str, str], SasToken] = {}
        self._fetching: dict[tuple[str, str], threading.Lock] = {}
        self._seen: set[str] = set()  # every token handed out (scrubbed from text)
        self.fetches = 0
        self.on_renew: Callable[[str, str], None] | None = None

    def get(self, account: str, container: str) -> str:
        """The token for ``account``/``container``: the cached one, or a new one.

        Raises:
            AccessRefused: the token API refused or failed (its host is named).
        """
        key = (account, container)
        token = self._tokens.get(key)
        if token is not None and token.fresh(self._clock(), self.renew_before):
            return token.token
        with self._lock:
            fetching = self._fetching.setdefault(key, threading.Lock())
        with fetching:  # one request per container, however many reads wait for it
            token = self._tokens.get(key)
            if token is not None and token.fresh(self._clock(), self.renew_before):
                return token.token
            new = self._fetch(account, container)
            with self._lock:
                self._tokens[key] = new
                self._seen.add(new.token)
        if token is not None and self.on_renew is not None:
            self.on_renew(account, container)
        return new.token

    def renew(self, account: str, container: str, refused: str) -> None:
        """Forget the token ``refused`` (a read was denied with it), if it is still current."""
        key = (account, container)
        with self._lock:
            token = self._tokens.get(key)
            if token is not None and token.token == refused:
                del self._tokens[key]
                logger.info("SAS token for %s/%s refused: renewing it", account, container)
        if self.on_renew is not None:
            self.on_renew(account, container)

    def secrets(self) -> set[str]:
        """Every token handed out so far."""
        with self._lock:
            return set(self._seen)

    def _fetch(self, account: str, container: str) -> SasToken:
        url = f"{self.sas_url}/{account}/{container}"
        host = urlsplit(url).hostname or url
        headers = {"Ocp-Apim-Subscription-Key": self._key} if self._key else {}
        self.fetches += 1
        try:
            response = requests.get(url, headers=headers, timeout=self.timeout)
        except requests.RequestException as exc:
            raise AccessRefused(host, f"token API unreachable: {type(exc).__name__}") from None
        if response.status_code != 200:
            raise AccessRefused(host, f"token API answered HTTP {response.status_code}")
        try:
            body = response.json()
            token = SasToken(str(body["token"]), _expiry(body["msft:expiry"]), self._clock())
        except (ValueError, KeyError, TypeError) as exc:
            why = f"token API answered no token: {type(exc).__name__}"
            raise AccessRefused(host, why) from None
        life = token.expiry - token.fetched
        logger.info("SAS token for %s/%s, valid for %.0f s", account, container, life)
        return token


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


def scrubbed(exc: BaseException, credentials: Credentials) -> BaseException:
    """``exc``, or a copy of its type with the message scrubbed if it held a secret."""
    text = str(exc)
    clean = credentials.scrub(text)
    if clean == text:
        return exc
    try:
        copy = type(exc)(clean)
    except TypeError:  # a constructor with other arguments
        copy = OSError(f"{type(exc).__name__}: {clean}")
    return copy


# ---------------------------------------------------------------------------------------
# S3: GDAL path-specific options per bucket

#: what a bucket's settings may say, as GDAL options
S3_OPTIONS = {
    "requester_pays": ("AWS_REQUEST_PAYER", {True: "requester"}),
    "unsigned": ("AWS_NO_SIGN_REQUEST", {True: "YES", False: "NO"}),
}


def s3_options(settings: Mapping[str, Any]) -> dict[str, str]:
    """GDAL options for one bucket's settings.

    ``requester_pays``, ``unsigned``, ``region``, ``endpoint``, ``https``,
    ``virtual_hosting``; what is unset is left to GDAL.
    """
    out: dict[str, str] = {}
    for name, (option, values) in S3_OPTIONS.items():
        value = settings.get(name)
        if value is not None and value in values:
            out[option] = values[value]
    for name, option in (
        ("region", "AWS_REGION"),
        ("endpoint", "AWS_S3_ENDPOINT"),
    ):
        if settings.get(name):
            out[option] = str(settings[name])
    for name, option in (("https", "AWS_HTTPS"), ("virtual_hosting", "AWS_VIRTUAL_HOSTING")):
        if settings.get(name) is not None:
            out[option] = "YES" if settings[name] else "NO"
    return out


class S3Paths:
    """GDAL options per S3 bucket or prefix, set with ``VSISetPathSpecificOption``.

    Args:
        options: bucket (or ``bucket/prefix``) -> GDAL option -> value.
    """

    def __init__(self, options: Mapping[str, Mapping[str, str]]) -> None:
        self.options = {_s3_prefix(key): dict(values) for key, values in options.items() if values}
        self._set = False

    def prefixes(self) -> Iterable[str]:
        """The path prefixes configured (``/vsis3/bucket/...``)."""
        return self.options.keys()

    def apply(self) -> None:
        """Set the options (GDAL holds them for the process, per path prefix)."""
        setter = gdal_function("VSISetPathSpecificOption")
        if setter is None:
            if self.options:
                logger.warning("GDAL has no VSISetPathSpecificOption: S3 bucket settings ignored")
            return
        for prefix, values in self.options.items():
            for key, value in values.items():
                setter(ctypes.c_char_p(prefix.encode()), key.encode(), value.encode())
            logger.info("S3 %s: %s", prefix, ", ".join(sorted(values)))
        self._set = bool(self.options)

    def clear(self) -> None:
        """Clear the options of the prefixes this object set."""
        if not self._set:
            return
        clear = gdal_function("VSIClearPathSpecificOptions")
        if clear is not None:
            for prefix in self.options:
                clear(ctypes.c_char_p(prefix.encode()))
        self._set = False


def _s3_prefix(key: str) -> str:
    key = key.removeprefix("s3://").strip("/")
    return f"/vsis3/{key}" + ("/" if "/" not in key else "")


# ---------------------------------------------------------------------------------------
# logs


class SecretFilter(logging.Filter):
    """Takes SAS tokens out of log records (GDAL's error messages name the signed URL)."""

    def __init__(self, credentials: Credentials) -> None:
        super().__init__()
        self.credentials = credentials

    def filter(self, record: logging.LogRecord) -> bool:
        """Scrub the record's message in place; always keep it."""
        text = record.getMessage()
        clean = self.credentials.scrub(text)
        if clean != text:
            record.msg, record.args = clean, None
        return True


#: loggers that write GDAL's error messages (rasterio's error handler) and reads' faults
SECRET_LOGGERS = (
    "rasterio",
    "rasterio._env",
    "rasterio._err",
    "rasterio._io",
    "rasterio._base",
    "rasterio._filepath",
    "rasterio.env",
    "rio_tiler",
    "tiler.engine.schedule",
    "tiler.engine.io",
    "tiler.engine.jobs",
)


def hide_secrets(credentials: Credentials) -> Callable[[], None]:
    """Install a :class:`SecretFilter` on :data:`SECRET_LOGGERS`; returns its removal."""
    flt = SecretFilter(credentials)
    loggers = [logging.getLogger(name) for name in SECRET_LOGGERS]
    for log in loggers:
        log.addFilter(flt)

    def remove() -> None:
        for log in loggers:
            log.removeFilter(flt)

    return remove
