"""Helpers of the manifests tests."""
from __future__ import annotations

import shutil
from pathlib import Path


def place(src: Path, directory: Path, name: str) -> Path:
    """Copy a generated file into `directory` under `name` (e.g. a real benchmark video id + extension)."""
    directory.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copyfile(src, directory / name))


def write_narration_csvs(root: Path, narrations: dict) -> Path:
    """root/csv/<vid>.csv in MIL-NCE's HowTo100M format (start,end,text) from {vid: [(start, end, text), ...]}."""
    d = root / "csv"
    d.mkdir()
    for vid, rows in narrations.items():
        lines = ["start,end,text"] + [f'{s},{e},"{t}"' for s, e, t in rows]
        (d / f"{vid}.csv").write_text("\n".join(lines) + "\n")
    return d
