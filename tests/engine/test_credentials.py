"""Credentials by host: the SAS token cache against the emulator's token API, and S3 per bucket.

S3: moto's server behind a small checking proxy (moto does not enforce either rule): bucket
``payer`` refuses any request without ``x-amz-request-payer: requester``, bucket ``public``
refuses any signed request (so a read there proves it went unsigned, although the process has
AWS credentials). The per-bucket settings reach GDAL as path-specific options only.
"""

from __future__ import annotations

import http.client
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import boto3
import morecantile
import numpy
import pytest
from support.net import LoopbackServer, http_server
from support.pc_emulator import TokenApi
from support.remote_servers import environ, restore, rewrite_hrefs

from tiler.catalog.loaders import load_collection
from tiler.engine.credentials import AccessRefused, Credentials, SasTokens, s3_options
from tiler.engine.service import Engine

WMQ = morecantile.tms.get("WebMercatorQuad")


def test_one_token_per_container_reused_then_renewed():
    now = [time.time()]
    with TokenApi(ttl=3600, key="k") as api:
        tokens = SasTokens(api.url, "k", clock=lambda: now[0])
        a = tokens.get("acct", "c1")
        assert tokens.get("acct", "c1") == a and api.requests["acct/c1"] == 1
        b = tokens.get("acct", "c2")
        assert b != a and api.requests["acct/c2"] == 1
        now[0] += 3600 - 119  # within 2 minutes of its expiry: renewed
        api.revoke(reissue=True)  # (so the API mints a new one)
        assert tokens.get("acct", "c1") != a and api.requests["acct/c1"] == 2
        c = tokens.get("acct", "c1")
        tokens.renew("acct", "c1", "not the current token")  # a stale refusal: kept
        assert tokens.get("acct", "c1") == c
        tokens.renew("acct", "c1", c)
        api.revoke(reissue=True)
        assert tokens.get("acct", "c1") != c
        assert set(api.keys_seen) == {"k"}


def test_a_refused_subscription_key_is_access_refused_without_the_key():
    with TokenApi(key="right") as api:
        tokens = SasTokens(api.url, "wrong-key-value")
        with pytest.raises(AccessRefused) as info:
            tokens.get("acct", "c")
    assert "127.0.0.1" in str(info.value) and "401" in str(info.value)
    assert "wrong-key-value" not in str(info.value)


def test_signing_and_scrubbing():
    with TokenApi() as api:
        creds = Credentials(SasTokens(api.url), blob_endpoint="http://127.0.0.1:1/{account}")
        href = "https://sentinel2l2a01.blob.core.windows.net/sentinel2-l2/a/b.tif"
        signed = creds.sign(href)
        assert signed.url.startswith("http://127.0.0.1:1/sentinel2l2a01/sentinel2-l2/a/b.tif?st=")
        assert creds.locate(href) == signed.url.split("?")[0]
        text = f"'/vsicurl/{signed.url}' failed; sig={signed.token}"
        clean = creds.scrub(text)
        assert signed.token is not None and signed.token not in clean
        assert "sig=" not in creds.scrub("x https://a.blob.core.windows.net/c/f.tif?se=1&sig=abc y")
        for unsigned in (
            "https://ai4edatasetspublicassets.blob.core.windows.net/c/t.png",
            "https://example.com/a.tif",
            "s3://bucket/a.tif",
            "/data/a.tif",
        ):
            assert creds.sign(unsigned).url == unsigned and creds.sign(unsigned).token is None


def test_s3_bucket_settings_become_gdal_options():
    assert s3_options({"requester_pays": True}) == {"AWS_REQUEST_PAYER": "requester"}
    assert s3_options({"unsigned": True, "region": "us-west-2"}) == {
        "AWS_NO_SIGN_REQUEST": "YES",
        "AWS_REGION": "us-west-2",
    }
    creds = Credentials(s3={"usgs-landsat": {"A": "1"}, "s3://b/prefix/": {"B": "2"}})
    assert sorted(creds.s3.prefixes()) == ["/vsis3/b/prefix", "/vsis3/usgs-landsat/"]


# ---------------------------------------------------------------------------------------
# S3 per bucket


class CheckingProxy(LoopbackServer):
    """Forwards to moto; refuses what the real buckets would refuse (see the module doc)."""

    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        self.refused: Counter[str] = Counter()
        self.passed: Counter[str] = Counter()
        self._server = http_server(self._handler())
        self.port = self._server.server_port

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _forward(self, method: str) -> None:
                bucket = self.path.lstrip("/").split("/", 1)[0].split("?", 1)[0]
                signed = "Authorization" in self.headers or "X-Amz-Signature" in self.path
                payer = self.headers.get("x-amz-request-payer") == "requester"
                if (bucket == "payer" and not payer) or (bucket == "public" and signed):
                    outer.refused[bucket] += 1
                    body = b"<Error><Code>AccessDenied</Code></Error>"
                    self.send_response(403)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    if method == "GET":
                        self.wfile.write(body)
                    return
                outer.passed[bucket] += 1
                conn = http.client.HTTPConnection("127.0.0.1", outer.upstream, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                headers["Host"] = f"127.0.0.1:{outer.upstream}"
                conn.request(method, self.path, headers=headers)
                answer = conn.getresponse()
                data = answer.read()
                self.send_response(answer.status)
                for key, value in answer.getheaders():
                    if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(key, value)
                self.send_header("Content-Length", answer.getheader("Content-Length") or "0")
                self.end_headers()
                if method == "GET":
                    self.wfile.write(data)
                conn.close()

            def do_GET(self) -> None:  # noqa: N802
                self._forward("GET")

            def do_HEAD(self) -> None:  # noqa: N802
                self._forward("HEAD")

        return Handler


@pytest.fixture(scope="module")
def s3_buckets(synthetic: dict[str, Any]) -> Iterator[tuple[CheckingProxy, dict[str, Any]]]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    port = server.get_host_and_port()[1]
    old = environ(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": "us-east-1",
        }
    )
    try:
        s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1")
        root = Path(synthetic["root"])
        for bucket in ("payer", "public"):
            s3.create_bucket(Bucket=bucket)
            acl = {"ACL": "public-read"} if bucket == "public" else {}  # anonymous reads
            for path in root.rglob("*.tif"):
                s3.upload_file(str(path), bucket, str(path.relative_to(root)), ExtraArgs=acl)
        with CheckingProxy(port) as proxy:
            where = {"endpoint": f"127.0.0.1:{proxy.port}", "https": False}
            buckets = {
                "payer": s3_options({"requester_pays": True, **where, "virtual_hosting": False}),
                "public": s3_options({"unsigned": True, **where, "virtual_hosting": False}),
            }
            yield proxy, buckets
    finally:
        restore(old)
        server.stop()


@pytest.mark.e2e  # a moto S3 server behind a checking proxy
@pytest.mark.parametrize("bucket", ["payer", "public"])
def test_s3_buckets_read_as_their_settings_say(synthetic, s3_buckets, tmp_path, bucket):
    proxy, buckets = s3_buckets
    path = rewrite_hrefs(synthetic["path"], tmp_path / f"{bucket}.json", f"s3://{bucket}")
    local, remote = load_collection(synthetic["path"]), load_collection(path)
    from tiler.catalog.filters import Search
    from tiler.engine.expression import parse
    from tiler.engine.grids import TileGrid
    from tiler.engine.io import ReadOptions

    engines = [Engine(read_threads=2), Engine(read_threads=2, credentials=Credentials(s3=buckets))]
    try:
        w, s, e, n = local.info().bounds
        checked = 0
        for t in WMQ.tiles(w, s, e, n, [15]):
            grid = TileGrid(WMQ, t.x, t.y, t.z, 256)
            expr = parse("q", local.info().bands)
            a, _ = engines[0].mosaic(local, Search(), grid, expr, ["a", "q"], ReadOptions())
            b, stats = engines[1].mosaic(remote, Search(), grid, expr, ["a", "q"], ReadOptions())
            assert not stats.skipped, stats.skipped
            numpy.testing.assert_array_equal(a.array.mask, b.array.mask)
            assert a.array.data.tobytes() == b.array.data.tobytes()
            checked += stats.read
        assert checked > 0
    finally:
        for engine in engines:
            engine.close()
    assert proxy.passed[bucket] > 0 and proxy.refused[bucket] == 0
