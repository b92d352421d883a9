"""SAS tokens for Azure Blob Storage from a Planetary Computer token API.

As the planetary-computer SDK gets them: GET ``{PC_SDK_SAS_URL}/{account}/{container}``
(header ``Ocp-Apim-Subscription-Key`` when ``PC_SDK_SUBSCRIPTION_KEY`` is set) answers
``{"token": ..., "msft:expiry": ...}``. One token per account and container, reused until
shortly before it expires, then renewed; a token a read found refused is dropped
(:meth:`SasTokens.renew`). :class:`~tiler.engine.credentials.Credentials` signs hrefs with
them.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests

from tiler.engine.jobs import AccessRefused

logger = logging.getLogger(__name__)

#: the token endpoint of the Planetary Computer (the SDK's default)
PC_SAS_URL = "https://planetarycomputer.microsoft.com/api/sas/v1/token"
#: a token is renewed this many seconds before it expires (or at half of a shorter life)
RENEW_BEFORE = 120.0


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
