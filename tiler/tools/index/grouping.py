"""Grouping files into items: by ``group_pattern``, or folder by folder."""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from tiler.tools.index.datetimes import find_date
from tiler.tools.index.errors import IndexingError, NoFilesFoundError
from tiler.tools.index.scan import Scan, Source

logger = logging.getLogger(__name__)

__all__ = [
    "DATA_ASSET",
    "Group",
    "default_groups",
    "groups_from_pattern",
    "match_group_pattern",
]

DATA_ASSET = "data"
"""Asset key of a file that is an item of its own (or has no ``band`` group)."""


@dataclass
class Group:
    """The files of one item, keyed by asset key."""

    item_id: str
    assets: dict[str, Scan] = field(default_factory=dict)


def match_group_pattern(
    sources: list[Source], regex: re.Pattern[str]
) -> list[tuple[Source, str, str | None]]:
    """Apply ``group_pattern``: (source, item id, band or None) of matching files."""
    matched: list[tuple[Source, str, str | None]] = []
    skipped: list[str] = []
    for src in sources:
        match = regex.search(src.rel)
        if match is None or not match.group("item"):
            skipped.append(src.rel)
            continue
        band = match.groupdict().get("band") or None
        matched.append((src, match.group("item"), band))
    if skipped:
        logger.warning(
            "group_pattern %r does not match %d file(s), skipped: %s%s",
            regex.pattern,
            len(skipped),
            ", ".join(skipped[:5]),
            ", ..." if len(skipped) > 5 else "",
        )
    if not matched:
        raise NoFilesFoundError(
            f"group_pattern {regex.pattern!r} matches none of the {len(sources)} file(s) "
            f"(it is searched in paths like {sources[0].rel!r})"
        )
    return matched


def groups_from_pattern(
    matched: list[tuple[Source, str, str | None]],
    scans: dict[Path, Scan],
    pattern: str,
) -> list[Group]:
    """Group files by the ``item`` group; asset keys from ``band`` (or ``data``)."""
    groups: dict[str, Group] = {}
    for src, item_id, band in matched:
        group = groups.setdefault(item_id, Group(item_id))
        key = band or DATA_ASSET
        if key in group.assets:
            other = group.assets[key].source.rel
            hint = (
                "add a named group 'band' to tell them apart"
                if band is None
                else "make the 'band' group unique per file"
            )
            raise IndexingError(
                f"group_pattern {pattern!r} gives item {item_id!r} two files for asset "
                f"{key!r} ({other} and {src.rel}): {hint}"
            )
        group.assets[key] = scans[src.path]
    return list(groups.values())


def _tokens(stem: str) -> list[str]:
    return stem.split("_")


def _has_date(text: str) -> bool:
    return find_date(text) is not None


def default_groups(scans: list[Scan]) -> list[Group]:
    """Group files folder by folder (see the module docstring)."""
    groups: list[Group] = []
    by_folder: dict[Path, list[Scan]] = defaultdict(list)
    for scan in scans:
        by_folder[scan.source.path.parent].append(scan)

    for folder, members in sorted(by_folder.items(), key=lambda kv: str(kv[0])):
        single = sorted((s for s in members if s.count == 1), key=lambda s: s.source.path.name)
        for scan in members:
            if scan.count != 1:
                groups.append(_lone(scan))
        if len(single) < 2:
            groups.extend(_lone(s) for s in single)
            continue
        bands = _folder_bands([s.source.path.stem for s in single])
        if bands is not None:
            group = Group(folder.name)
            for scan, band in zip(single, bands, strict=True):
                group.assets[band] = scan
            logger.debug("%s: one item of %d bands %s", folder, len(bands), bands)
            groups.append(group)
            continue
        # Several scenes in one folder: group by the stem before the last "_".
        by_prefix: dict[str, list[tuple[Scan, str]]] = defaultdict(list)
        for scan in single:
            prefix, sep, band = scan.source.path.stem.rpartition("_")
            by_prefix[prefix if sep and prefix and band else ""].append((scan, band))
        for prefix, files in by_prefix.items():
            keys = [band for _, band in files]
            if prefix and len(files) > 1 and _unique(keys) and not any(map(_has_date, keys)):
                group = Group(prefix)
                for scan, band in files:
                    group.assets[band] = scan
                groups.append(group)
            else:
                groups.extend(_lone(scan) for scan, _ in files)
    _check_unique_ids(groups)
    return groups


def _folder_bands(stems: list[str]) -> list[str] | None:
    """Asset keys when the single-band files of one folder form one item, else None."""
    # <scene>_<band> with one common <scene>: band = the part after the last "_".
    split = [stem.rpartition("_") for stem in stems]
    prefixes = {prefix for prefix, sep, band in split if sep and prefix and band}
    bands = [band for _, _, band in split]
    if (
        len(prefixes) == 1
        and all(sep for _, sep, _ in split)
        and _unique(bands)
        and not any(_has_date(b) for b in bands)
    ):
        return bands
    # Common leading "_"-separated tokens, the rest (not a date) as key.
    tokens = [_tokens(stem) for stem in stems]
    common = 0
    shortest = min(len(t) for t in tokens)
    while common < shortest - 1 and len({t[common] for t in tokens}) == 1:
        common += 1
    if common:
        rest = ["_".join(t[common:]) for t in tokens]
        if _unique(rest) and not any(_has_date(r) for r in rest):
            return rest
        return None
    # Plain band names without any "_" (B02.tif, B03.tif, SCL.tif).
    if all("_" not in stem for stem in stems) and not any(_has_date(s) for s in stems):
        return list(stems) if _unique(stems) else None
    return None


def _unique(values: list[str]) -> bool:
    return len(set(values)) == len(values) and all(values)


def _lone(scan: Scan) -> Group:
    """One file as one item: id = stem, asset ``data``."""
    return Group(scan.source.path.stem, {DATA_ASSET: scan})


def _check_unique_ids(groups: list[Group]) -> None:
    """Refuse two items with the same id (e.g. equal folder names under two roots)."""
    seen: dict[str, Group] = {}
    for group in groups:
        if group.item_id in seen:
            first = next(iter(seen[group.item_id].assets.values())).source.path
            second = next(iter(group.assets.values())).source.path
            raise IndexingError(
                f"two items would have the id {group.item_id!r} ({first.parent} and "
                f"{second.parent}); index them separately or use group_pattern"
            )
        seen[group.item_id] = group
