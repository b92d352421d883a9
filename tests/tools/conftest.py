"""Fixtures of the offline tools' tests: the demo collection, full-size and small.

The full demo (``full_demo``, in tests/conftest.py: the viewer and CLI tests use it too)
takes several seconds to generate, so it is made at most once per run; tests that use it
are marked ``e2e``. The small demo has all 13 scenes on a 256 x 256 pixel grid and takes
well under a second.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tiler.tools.demo import create_demo


@pytest.fixture(scope="session")
def small_demo_size() -> int:
    """Pixels per side of the small demo."""
    return 256


@pytest.fixture(scope="session")
def small_demo(tmp_path_factory: pytest.TempPathFactory, small_demo_size: int) -> Path:
    """Folder of a small demo: the 13 scenes on fewer pixels around the same centre."""
    directory = tmp_path_factory.mktemp("demo-small") / "demo"
    return create_demo(directory, size=small_demo_size).parent
