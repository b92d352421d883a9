"""Faults of remote COGs, shared by tests/engine/test_remote_faults.py and
test_faults_recover.py: the case (a tile and the item whose loss changes it most, chosen with
the oracle alone), a collection over a :class:`~support.remote_servers.RangeServer` with one
failing file, and the checks of a tile and a skip reason."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import morecantile
import numpy

from support.oracle import days, naive_mosaic
from support.remote_servers import RangeServer
from tiler.catalog.filters import Search
from tiler.catalog.loaders import load_collection
from tiler.engine.grids import TileGrid

WMQ = morecantile.tms.get("WebMercatorQuad")
TIMEOUT = 2.0  # the engine's item timeout in these tests (s)
QUALITY = "q"
OUT = ["a", "b", "q", "quality", "_index"]

#: fault -> words its skip reason must hold (None: any reason, e.g. a broken transfer)
FAULTS: dict[str, str | None] = {
    "500": "server error",
    "403": "access denied",
    "404": "not found",
    "refused": "unreachable",
    "hang": "timed out",
    "truncate": None,
}


@contextmanager
def closed_port() -> Iterator[int]:
    """A loopback port that refuses connections (bound, never listening) while held."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


def fault_case(synthetic: dict[str, Any], tile_reader: Any) -> dict[str, Any]:
    """A z15 tile and the item whose loss changes it most, chosen with the oracle alone.

    Also the oracle's tile without that item (its reads None, positions kept).
    """
    local = load_collection(synthetic["path"])
    w, s, e, n = local.info().bounds
    best: tuple[int, Any, int] | None = None
    for t in WMQ.tiles(w, s, e, n, [15]):
        items = local.search(Search(), footprint(t))
        if len(items) < 3:
            continue
        wins = quality_winners(tile_reader, items, t)
        for k in range(1, len(items) - 1):  # items before and after: positions are kept
            if best is None or int((wins == k).sum()) > best[0]:
                best = (int((wins == k).sum()), t, k)
    assert best is not None and best[0] > 500, best
    _, t, k = best
    items = local.search(Search(), footprint(t))
    reads = [None if i == k else local_reads(tile_reader, it, t) for i, it in enumerate(items)]
    data, valid = naive_mosaic(reads, lambda v: v[QUALITY], [QUALITY], OUT, days(items))
    return {
        "tile": t,
        "ids": [it.id for it in items],
        "faulty": k,
        "wins": quality_winners(tile_reader, items, t) == k,  # where it wins when it answers
        "data": data,
        "valid": valid,
        "root": Path(synthetic["root"]),
    }


def quality_winners(tile_reader: Any, items: list[Any], t: Any) -> numpy.ndarray:
    """Per pixel, the oracle's winner on quality among all ``items`` (-1: none)."""
    reads = [local_reads(tile_reader, it, t) for it in items]
    index, has = naive_mosaic(reads, lambda v: v[QUALITY], [QUALITY], ["_index"], days(items))
    return numpy.where(has, index[0], -1).astype(int)


def footprint(t: Any) -> Any:
    return TileGrid(WMQ, t.x, t.y, t.z, 256).footprint()


def local_reads(tile_reader: Any, item: Any, t: Any) -> Any:
    return tile_reader({k: b.href for k, b in item.bands.items()}, t.x, t.y, t.z)


def remote_copy(
    synthetic: dict[str, Any],
    dst: Path,
    server: RangeServer,
    faulty_id: str,
    band: str,
    fault: str,
    refused_port: int | None = None,
) -> tuple[Path, str]:
    """The collection over fresh URLs of ``server``, ``band`` of ``faulty_id`` failing.

    Returns the collection file and the faulty file's href.
    """
    base = server.fresh()
    doc = json.loads(Path(synthetic["path"]).read_text())
    faulty_href = ""
    for feature in doc["features"]:
        for key, asset in feature["assets"].items():
            href = f"{base}/{asset['href']}"
            if feature["id"] == faulty_id and key == band:
                if fault == "refused":
                    href = f"http://127.0.0.1:{refused_port}/{asset['href']}"
                else:
                    server.faults[href.removeprefix(server.url)] = fault
                faulty_href = href
            asset["href"] = href
    assert faulty_href
    dst.write_text(json.dumps(doc))
    return dst, faulty_href


def check_reason(reason: str, fault: str, href: str, root: Path) -> None:
    """The reason says what went wrong and names neither the URL nor a path."""
    path = href.split("://", 1)[1].split("/", 1)[1]  # e.g. ~12/item3/a.tif
    for leak in (href, path, "://", "127.0.0.1", ".tif", "~", str(root), root.name):
        assert leak not in reason, (leak, reason)
    for part in path.split("/"):
        assert part not in reason, (part, reason)
    words = FAULTS[fault]
    if words is not None:
        assert words in reason.lower(), reason


def assert_equals_oracle(img: Any, case: dict[str, Any]) -> None:
    """Mask and data of every band equal the oracle without the faulty item, bit for bit."""
    data, valid = case["data"], case["valid"]
    assert img.array.shape == (len(OUT), *valid.shape)
    holes = int((img.array.mask[0] & valid).sum())
    extra = int((~img.array.mask[0] & ~valid).sum())
    theirs = int((img.array.mask[0] & valid & case["wins"]).sum())
    assert not holes and not extra, (
        f"{holes} pixels masked that the rest of the items fill ({theirs} of them won on "
        f"quality by the faulty item when it answers; it wins {int(case['wins'].sum())}), "
        f"{extra} pixels valid that the oracle masks"
    )
    for i, name in enumerate(OUT):
        numpy.testing.assert_array_equal(~img.array.mask[i], valid, err_msg=f"mask of {name}")
        numpy.testing.assert_array_equal(
            img.array.data[i][valid], data[i][valid], err_msg=f"data of {name}"
        )
