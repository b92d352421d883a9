"""Fixtures of the offline tools' tests: the demo collection, full-size and small.

The full demo takes several seconds to generate, so it is made at most once per run;
tests that use it (directly or through a parametrized fixture) are marked ``e2e``.
The small demo has all 13 scenes on a 256 x 256 pixel grid and takes well under a
second.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tiler.tools.demo import create_demo


@pytest.fixture(scope="session")
def full_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folder of the full-size demo (13 scenes of 1536 x 1536 pixels); mark users e2e."""
    return create_demo(tmp_path_factory.mktemp("demo-full") / "demo").parent


@pytest.fixture(scope="session")
def small_demo_size() -> int:
    """Pixels per side of the small demo."""
    return 256


@pytest.fixture(scope="session")
def small_demo(tmp_path_factory: pytest.TempPathFactory, small_demo_size: int) -> Path:
    """Folder of a small demo: the 13 scenes on fewer pixels around the same centre."""
    directory = tmp_path_factory.mktemp("demo-small") / "demo"
    return create_demo(directory, size=small_demo_size).parent
