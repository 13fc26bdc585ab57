"""The fault-injection suite's world: six narrated generated videos, their manifest, and a reference store
extracted without interruption. Each case damages or races a fresh copy and must end either in a clear error
that names the problem and its repair, or in a repaired store equal to the reference."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pipeline.extract import main as extract_main
from tests.pipeline.helpers import ARGS, narrated_world


def extract_args(manifest: Path, store: Path, *extra: str) -> list[str]:
    return ["--manifest", str(manifest), "--store", str(store), *ARGS, "--videos-per-shard", "2", *extra]


@pytest.fixture(scope="session")
def reference(tmp_path_factory) -> tuple[Path, Path]:
    """(manifest, reference store)."""
    root = tmp_path_factory.mktemp("faults")
    manifest = narrated_world(root, videos=6)
    store = root / "reference.zarr"
    assert extract_main(extract_args(manifest, store)) == 0
    return manifest, store


@pytest.fixture()
def damaged(reference, tmp_path) -> tuple[Path, Path]:
    """(manifest, a copy of the reference store to damage)."""
    manifest, store = reference
    copy = tmp_path / "store.zarr"
    shutil.copytree(store, copy)
    return manifest, copy
