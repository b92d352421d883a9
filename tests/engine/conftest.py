"""Fixtures of the engine's tests."""

from __future__ import annotations

from typing import Any

import pytest
from support.faults import fault_case


@pytest.fixture(scope="module")
def case(synthetic: dict[str, Any], tile_reader: Any) -> dict[str, Any]:
    """A z15 tile and the item whose loss changes it most, chosen with the oracle alone,
    and the oracle's tile without that item (:func:`support.faults.fault_case`)."""
    return fault_case(synthetic, tile_reader)
