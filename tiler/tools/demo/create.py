"""Creating the demo once, atomically, in a cache directory."""

from __future__ import annotations

import logging
import os
import pathlib
import shutil
import tempfile
import time

import platformdirs

from tiler.tools.demo.grid import DEMO_SIZE, demo_grid
from tiler.tools.demo.scenes import SCENES
from tiler.tools.demo.writing import generate

logger = logging.getLogger(__name__)

DEMO_VERSION: str = "1"
"""Version of the generated data; part of the default cache directory name."""

DEMO_SCENES = len(SCENES)
"""Number of scenes of the full demo."""

_STALE_SECONDS = 3600.0


def _commit(tmp: pathlib.Path, directory: pathlib.Path) -> None:
    """Move a finished temporary demo into place; ``demo.json`` goes last.

    Args:
        tmp: The complete temporary demo directory.
        directory: The final directory.
    """
    try:
        os.rename(tmp, directory)  # atomic; works if directory is missing or empty
        return
    except OSError:
        pass
    # The directory exists and holds something: move item folders one by one (each
    # atomically), then publish demo.json, which marks the demo as complete.
    for child in sorted(tmp.iterdir()):
        if child.name == "demo.json":
            continue
        target = directory / child.name
        try:
            os.rename(child, target)
        except OSError:
            if not target.is_dir():
                raise
            # Same version, same bytes: left by a concurrent or interrupted commit.
    os.replace(tmp / "demo.json", directory / "demo.json")
    shutil.rmtree(tmp, ignore_errors=True)


def _remove_stale_temporaries(directory: pathlib.Path) -> None:
    """Delete temporary siblings of ``directory`` left by killed runs.

    Only those older than an hour go: a younger one may belong to a running
    generation.

    Args:
        directory: The demo directory.
    """
    if not directory.parent.is_dir():
        return
    now = time.time()
    for tmp in directory.parent.glob(f".{directory.name}.tmp-*"):
        try:
            if now - tmp.stat().st_mtime > _STALE_SECONDS:
                logger.debug("demo: removing stale %s", tmp)
                shutil.rmtree(tmp, ignore_errors=True)
        except OSError:
            pass


def default_demo_dir() -> pathlib.Path:
    """Where the demo is created by default: the user cache directory.

    Returns:
        ``<user cache>/qualitymosaic/demo-v<DEMO_VERSION>``.
    """
    return platformdirs.user_cache_path("qualitymosaic") / f"demo-v{DEMO_VERSION}"


def create_demo(
    directory: pathlib.Path,
    *,
    size: int = DEMO_SIZE,
    scenes: int = DEMO_SCENES,
) -> pathlib.Path:
    """Create the synthetic demo collection in ``directory`` unless it exists.

    The files are written into a temporary sibling directory which is renamed into
    place at the end, so an interrupted run never leaves a partial collection and
    concurrent runs do not interfere. An existing ``demo.json`` is returned as it
    is, whatever its size and number of scenes.

    Args:
        directory: Target directory (created if needed).
        size: Pixels per side (20 m each), a multiple of 8 in 64..2048. A smaller
            demo covers less ground around the same centre; the random textures of
            its landscape differ from the full demo's.
        scenes: Number of scenes, 1..13: the first ones of the full demo's
            acquisitions (same ids, dates and cloud recipes).

    Returns:
        The collection file, ``directory / "demo.json"``.

    Raises:
        ValueError: ``size`` or ``scenes`` is out of range.
    """
    grid = demo_grid(size)
    if not isinstance(scenes, int) or isinstance(scenes, bool) or not 1 <= scenes <= len(SCENES):
        raise ValueError(f"demo scenes must be an integer in 1..{len(SCENES)}, not {scenes!r}")
    directory = pathlib.Path(directory)
    collection = directory / "demo.json"
    if collection.is_file():
        return collection
    _remove_stale_temporaries(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    tmp = pathlib.Path(tempfile.mkdtemp(prefix=f".{directory.name}.tmp-", dir=directory.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; the demo is not secret
    try:
        generate(tmp, grid, SCENES[:scenes])
        if collection.is_file():  # a concurrent run finished first
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            _commit(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info(
        "demo: created %d scenes in %s (%.1f s)",
        scenes,
        directory,
        time.perf_counter() - started,
    )
    return collection


def ensure_demo(directory: pathlib.Path | None = None) -> pathlib.Path:
    """Create the demo collection if needed and return its collection file.

    Args:
        directory: Target directory; :func:`default_demo_dir` when ``None``.

    Returns:
        The collection file ``demo.json``.
    """
    return create_demo(directory if directory is not None else default_demo_dir())
