"""Puts tests/ on ``sys.path``, so that a benchmark run as ``python benchmarks/x.py`` imports
the tests' support package (``from support.oracle import ...``): the one place the
benchmarks edit ``sys.path``. Import it before ``support``: ``import support_path``.
"""

import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1] / "tests"
if str(TESTS) not in sys.path:
    sys.path.insert(1, str(TESTS))  # after the script's own folder (benchmarks/)
