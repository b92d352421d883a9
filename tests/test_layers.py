"""The import structure: no import cycle between modules, TYPE_CHECKING imports included.

The layer contracts themselves are import-linter's (``[tool.importlinter]`` in
pyproject.toml, run by ``lint-imports`` in .ci/run); this test adds what a layers contract
cannot say: that modules of one package do not import each other in a circle.
"""

from __future__ import annotations

import sys
from pathlib import Path

import grimp
import pytest


def cycles(package: str) -> list[tuple[str, str]]:
    """Pairs (module, imported) where ``imported`` leads back to ``module``."""
    graph = grimp.build_graph(package, exclude_type_checking_imports=False, cache_dir=None)
    return sorted(
        (module, imported)
        for module in graph.modules
        for imported in graph.find_modules_directly_imported_by(module)
        if graph.chain_exists(importer=imported, imported=module)
    )


def test_no_module_is_part_of_an_import_cycle() -> None:
    assert cycles("tiler") == []


def test_a_cycle_made_only_of_type_checking_imports_counts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "circular"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from circular import b\n")
    (package / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from circular import a\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        assert cycles("circular") == [("circular.a", "circular.b"), ("circular.b", "circular.a")]
    finally:
        sys.modules.pop("circular", None)
