"""Helpers of the manifests tests."""
from __future__ import annotations

import shutil
from pathlib import Path


def place(src: Path, directory: Path, name: str) -> Path:
    """Copy a generated file into `directory` under `name` (e.g. a real benchmark video id + extension)."""
    directory.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copyfile(src, directory / name))
