"""TILER_PUBLIC_URL is the base of every absolute URL the API writes; a client's Host header
is then never echoed back (without it, the request's own address is used, as before)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tiler.app import create_app
from tiler.settings import Settings

PUBLIC = "https://tiles.example.org/qm"
EVIL = {"Host": "evil.example", "X-Forwarded-Host": "evil.example"}
URLS = re.compile(r"https?://[^\s\"'<>]+")

# id: path of a document that carries absolute URLs
DOCUMENTS = {
    "tilejson": "/collections/demo/WebMercatorQuad/tilejson.json",
    "wmts": "/collections/demo/WebMercatorQuad/WMTSCapabilities.xml",
    "tilesets": "/collections/demo/tiles",
    "tileset": "/collections/demo/tiles/WebMercatorQuad",
    "collection": "/collections/demo",
    "collections": "/collections",
    "items_next_link": "/collections/demo/items?limit=1",
}
#: URLs in those documents that are identifiers of standards, not links of this API
FOREIGN = (
    "http://www.opengis.net/",
    "https://www.opengis.net/",
    "http://schemas.opengis.net/",
    "http://www.w3.org/",
    "https://developmentseed.org/",  # the WMTS template names its software
    "https://stac-extensions.github.io/",  # in the items themselves
)


@pytest.fixture(scope="module")
def public(demo_path: Path) -> Iterator[TestClient]:
    app = create_app(Settings(collections=[demo_path], public_url=PUBLIC + "/"))
    with TestClient(app) as c:
        yield c


def _links(text: str) -> list[str]:
    return [u for u in URLS.findall(text) if not u.startswith(FOREIGN)]


@pytest.mark.parametrize("doc", list(DOCUMENTS))
def test_every_absolute_url_starts_with_the_public_url(public: TestClient, doc: str) -> None:
    r = public.get(DOCUMENTS[doc], headers=EVIL)
    assert r.status_code == 200, r.text
    assert "evil.example" not in r.text
    links = _links(r.text)
    assert links, r.text[:300]
    assert all(u.startswith(PUBLIC + "/") for u in links), links


def test_the_wmts_capabilities_address_is_the_public_one(public: TestClient) -> None:
    r = public.get(DOCUMENTS["wmts"], params={"quality": "B8"}, headers=EVIL)
    assert f'xlink:href="{PUBLIC}/collections/demo/WebMercatorQuad/WMTSCapabilities.xml?' in (
        r.text
    )
    assert f'template="{PUBLIC}/collections/demo/tiles/WebMercatorQuad/{{TileMatrix}}' in r.text


def test_without_a_public_url_links_follow_the_request(client: Any) -> None:
    r = client.get(DOCUMENTS["tilejson"], headers={"Host": "maps.example.net"})
    assert r.json()["tiles"][0].startswith("http://maps.example.net/collections/demo/tiles/")


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("javascript:alert(1)", id="not_http"),
        pytest.param("https://user@evil.example", id="credentials"),
        pytest.param("https://a b", id="space"),
        pytest.param("tiles.example.org", id="no_scheme"),
    ],
)
def test_a_public_url_that_is_not_an_http_base_is_refused_at_start(value: str) -> None:
    with pytest.raises(ValueError, match="public_url"):
        Settings(public_url=value)


def test_tile_matrix_set_links_follow_the_public_url(demo_path: Path) -> None:
    # titiler's /tileMatrixSets routes build links from the Host header; PublicTMSFactory's
    # use TILER_PUBLIC_URL (create_app must include its router instead of TMSFactory's)
    from fastapi import FastAPI

    from tiler.api.maps import PublicTMSFactory

    app = FastAPI()
    app.state.settings = Settings(collections=[demo_path], public_url=PUBLIC)
    app.include_router(PublicTMSFactory().router)
    r = TestClient(app).get("/tileMatrixSets", headers=EVIL)
    links = _links(r.text)
    assert links and all(u.startswith(f"{PUBLIC}/tileMatrixSets/") for u in links), links
    assert "evil.example" not in r.text


# ---------------------------------------------------------------------------------------
# the trailing-slash redirect, and forwarded headers that a proxy (or uvicorn) trusts

#: every header a client or a proxy may use to say where it was asked
FORWARDED = {
    **EVIL,
    "X-Forwarded-Proto": "http",
    "X-Forwarded-Port": "666",
    "X-Forwarded-Prefix": "/evil",
    "Forwarded": "for=1.2.3.4;host=evil.example;proto=http",
}


@pytest.fixture(scope="module")
def behind_trusted_proxy(demo_path: Path) -> Iterator[TestClient]:
    """The app as uvicorn serves it to a trusted peer (--forwarded-allow-ips '*')."""
    from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

    app = create_app(Settings(collections=[demo_path], public_url=PUBLIC))
    with TestClient(ProxyHeadersMiddleware(app, trusted_hosts="*")) as c:
        yield c


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        pytest.param("/collections/demo/", "/collections/demo", id="collection"),
        pytest.param("/collections/", "/collections", id="collections"),
        pytest.param(
            "/collections/demo/items/?limit=1&sortby=id",
            "/collections/demo/items?limit=1&sortby=id",
            id="query_kept",
        ),
        pytest.param("/collections/de%0Amo/", "/collections/de%0Amo", id="newline_stays_quoted"),
    ],
)
def test_the_slash_redirect_goes_to_the_public_url(
    behind_trusted_proxy: TestClient, path: str, expected: str
) -> None:
    r = behind_trusted_proxy.get(path, headers=FORWARDED, follow_redirects=False)
    assert r.status_code == 307, r.text
    assert r.headers["location"] == PUBLIC + expected


def test_without_a_public_url_the_slash_redirect_names_no_host(client: Any) -> None:
    r = client.get("/collections/demo/?limit=1", headers=FORWARDED, follow_redirects=False)
    assert r.status_code == 307
    assert r.headers["location"] == "/collections/demo?limit=1"  # relative: the host asked


def test_a_path_served_under_neither_spelling_is_a_json_404(client: Any) -> None:
    r = client.get("/nothing/here/", headers=FORWARDED, follow_redirects=False)
    assert r.status_code == 404
    assert "location" not in r.headers
    assert r.headers["content-type"].startswith("application/json")


@pytest.mark.parametrize("doc", list(DOCUMENTS))
def test_trusted_forwarded_headers_do_not_change_public_urls(
    behind_trusted_proxy: TestClient, doc: str
) -> None:
    r = behind_trusted_proxy.get(DOCUMENTS[doc], headers=FORWARDED)
    assert r.status_code == 200, r.text
    assert "evil" not in r.text and ":666" not in r.text
    links = _links(r.text)
    assert links and all(u.startswith(PUBLIC + "/") for u in links), links
