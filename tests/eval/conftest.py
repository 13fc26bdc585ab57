"""Fixtures of the eval tests (the real annotation files come from the top-level `benchmarks_dir` fixture)."""
import pytest

from tests.eval.helpers import CellPoints


@pytest.fixture(scope="session")
def cell_points():
    return CellPoints()
