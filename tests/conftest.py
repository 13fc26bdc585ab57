"""Shared fixtures. The real benchmark annotation files are read from ../shared/benchmarks (or
$GROUNDCACHE_BENCHMARKS) when present; tests that need them skip otherwise."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
REPORTS: dict[str, str] = {}  # title -> line, printed at the end of the run (e.g. the demo's stage timings)


def _benchmarks_root() -> Path:
    return Path(os.environ.get("GROUNDCACHE_BENCHMARKS", REPO.parent / "shared" / "benchmarks"))


@pytest.fixture(scope="session")
def benchmarks_dir() -> Path:
    root = _benchmarks_root()
    if not root.is_dir():
        pytest.skip(f"real benchmark annotations not found at {root} (set GROUNDCACHE_BENCHMARKS)")
    return root


def _gpu_available() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


def pytest_collection_modifyitems(config, items):
    if _gpu_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


def pytest_terminal_summary(terminalreporter):
    for title, line in REPORTS.items():
        terminalreporter.write_sep("-", title)
        terminalreporter.write_line(line)
