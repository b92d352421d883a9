"""End-to-end test of the browser viewer served at `/`, in Debian's headless Chromium.

Starts the real server (built-in demo collection) in a subprocess and drives the built page
(tiler/static/viewer) with Playwright. Skips when Playwright or /usr/bin/chromium is missing.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from support.net import tiler_serve

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

CHROMIUM = Path("/usr/bin/chromium")
REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
STARTUP_TIMEOUT_S = 240  # the demo collection is generated on first use
BACKGROUND = (0xDF, 0xE3, 0xE8)  # the map's background colour (frontend/src/main.ts)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is not installed"),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, full_demo: Path) -> Iterator[str]:
    # README's first command (`tiler serve`: the demo), on the run's one copy of the demo
    env = {
        **os.environ,
        "XDG_CACHE_HOME": str(tmp_path_factory.mktemp("cache")),
        "TILER_DEMO_DIR": str(full_demo),
    }
    log = tmp_path_factory.mktemp("server") / "server.log"
    with tiler_serve(log=log, env=env, timeout=STARTUP_TIMEOUT_S, cwd=REPO) as served:
        yield served.url


@pytest.fixture(scope="module")
def browser() -> Iterator[sync_api.Browser]:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield browser
        browser.close()


def _decode_png(data: bytes) -> np.ndarray:
    """RGB pixels (rows, cols, 3) of a PNG screenshot."""
    from rasterio.io import MemoryFile

    with MemoryFile(data) as memory, memory.open() as dataset:
        return np.moveaxis(dataset.read()[:3], 0, -1).astype(np.int16)


def _map_pixels(page: sync_api.Page) -> np.ndarray:
    return _decode_png(page.locator("#map canvas").screenshot())


def _painted_fraction(pixels: np.ndarray) -> float:
    """Share of pixels that are not the empty map background."""
    return float((np.abs(pixels - np.array(BACKGROUND)).sum(axis=-1) > 12).mean())


def _changed_fraction(a: np.ndarray, b: np.ndarray) -> float:
    return float((np.abs(a - b).sum(axis=-1) > 24).mean())


def _wait_for_tiles(page: sync_api.Page, fragment: str, *, exact: bool = False) -> str:
    """Waits until the map's tile URL contains (or is) `fragment` and its tiles are loaded."""
    page.wait_for_function(
        """([fragment, exact]) => {
            const map = document.getElementById("map");
            const tiles = map.dataset.tiles ?? "";
            const shown = exact ? tiles === fragment : tiles.includes(fragment);
            return shown && map.dataset.loading === "false";
        }""",
        arg=[fragment, exact],
        timeout=120_000,
    )
    page.wait_for_timeout(300)  # let the last frame paint
    return page.locator("#map").get_attribute("data-tiles") or ""


def _server_error(base: str, query: dict[str, str]) -> str:
    """The `detail` the server answers for a tile request with these parameters."""
    url = (
        f"{base}/collections/demo/tiles/WebMercatorQuad/12/873/1548.png?"
        + urllib.parse.urlencode(query)
    )
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(url, timeout=60)
    assert 400 <= error.value.code < 500
    return json.loads(error.value.read())["detail"]


def test_viewer(server: str, browser: sync_api.Browser) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 860})
    problems: list[str] = []
    expected_400 = False

    def on_console(message: sync_api.ConsoleMessage) -> None:
        if message.type != "error":
            return
        if expected_400 and "status of 400" in message.text:
            return
        problems.append(f"console: {message.text}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))

    # The page loads and best-pixel tiles paint the map.
    page.goto(f"{server}/")
    assert page.title() == "Quality mosaic viewer"
    best_url = _wait_for_tiles(page, "quality=-MSK_CLDPRB")
    assert "/collections/demo/tiles/WebMercatorQuad/{z}/{x}/{y}.png?" in best_url
    assert page.locator("#collection").input_value() == "demo"
    best = _map_pixels(page)
    assert _painted_fraction(best) > 0.5

    # Best -> worst pixel changes the tiles, and the URL.
    page.check("input[name=layer][value=worst]")
    _wait_for_tiles(page, "quality=MSK_CLDPRB")
    worst = _map_pixels(page)
    assert _painted_fraction(worst) > 0.5
    assert _changed_fraction(best, worst) > 0.05
    assert "layer=worst" in page.url

    # A custom quality expression changes the tiles.
    page.fill("#quality", "(B8-B4)/(B8+B4)")
    page.press("#quality", "Enter")
    _wait_for_tiles(page, "quality=(B8-B4)/(B8%2BB4)")
    greenest = _map_pixels(page)
    assert page.locator("input[name=layer][value=custom]").is_checked()
    assert _changed_fraction(best, greenest) > 0.05

    # A bad expression shows the server's message; the map keeps the last good layer.
    detail = _server_error(server, {"quality": "B4 *"})
    expected_400 = True
    page.fill("#quality", "B4 *")
    page.press("#quality", "Enter")
    page.wait_for_selector("#error:not([hidden])", timeout=60_000)
    assert detail in page.locator("#error-text").inner_text()
    assert "quality=(B8-B4)" in (page.locator("#map").get_attribute("data-tiles") or "")
    page.wait_for_timeout(500)
    expected_400 = False

    # Fixing the expression clears the error.
    page.fill("#quality", "-MSK_CLDPRB")
    page.press("#quality", "Enter")
    _wait_for_tiles(page, "quality=-MSK_CLDPRB")
    assert page.locator("#error").is_hidden()

    # The provenance layer paints winners' dates, with a legend of the item dates.
    page.check("input[name=layer][value=provenance]")
    _wait_for_tiles(page, "bands=_date")
    assert page.locator("#legend").is_visible()
    assert page.locator("#legend-dates li").count() >= 2

    # Single items, one at a time.
    page.check("input[name=layer][value=item]")
    first_item = _wait_for_tiles(page, "ids=")
    page.click("#item-next")
    page.wait_for_function(
        "url => document.getElementById('map').dataset.tiles !== url", arg=first_item
    )
    _wait_for_tiles(page, "ids=")

    # Clicking the map opens the inspector with the point route's winner and the charts.
    page.check("input[name=layer][value=best]")
    _wait_for_tiles(page, best_url, exact=True)
    box = page.locator("#map").bounding_box()
    assert box is not None
    with page.expect_response(lambda response: "/point/" in response.url) as point:
        page.mouse.click(box["x"] + box["width"] * 0.4, box["y"] + box["height"] * 0.45)
    result = point.value.json()
    assert point.value.status == 200, result
    assert result["winner"] is not None
    page.wait_for_selector("#inspector[data-state=ready]", timeout=60_000)
    assert page.locator("#winner-id").inner_text() == result["winner"]["id"]
    assert page.locator("#inspector .charts svg").count() == 2
    assert page.locator("#inspector .charts circle.winner").count() >= 1

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "viewer.png"))

    # The URL restores the view in a new page.
    shared = browser.new_page(viewport={"width": 1280, "height": 860})
    shared.goto(page.url)
    _wait_for_tiles(shared, best_url, exact=True)
    assert shared.locator("input[name=layer][value=best]").is_checked()
    shared.close()

    assert problems == []
    page.close()
