"""What a predictions file will hold, gathered by a task's inference and written at the end (so that its
metadata can list the misses), and the progress bar over videos."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from eval.predictions import PredictionsMeta, PredictionsWriter


@dataclass
class Output:
    spatial: list[tuple] = field(default_factory=list)     # PredictionsWriter.add_spatial arguments
    temporal: list[tuple] = field(default_factory=list)    # add_temporal
    retrieval: list[tuple] = field(default_factory=list)   # add_retrieval
    moments: list[tuple] = field(default_factory=list)     # add_moments
    missing: dict[str, str] = field(default_factory=dict)  # video, video/segment or video/query -> reason
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    files: dict = field(default_factory=dict)

    def write(self, path: Path, meta: PredictionsMeta) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with PredictionsWriter(path, meta) as writer:
            for args in self.temporal:
                writer.add_temporal(*args)
            for args in self.spatial:
                writer.add_spatial(*args)
            for args in self.retrieval:
                writer.add_retrieval(*args)
            for args in self.moments:
                writer.add_moments(*args)


def progress(session, ids: list[str], desc: str):
    return tqdm(ids, desc=desc, unit="video", disable=not session.cfg.progress, leave=False)
