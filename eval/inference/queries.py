"""The timed text queries of `retrieval` and `moments`: the benchmark's annotated segments (the scorer's own
ground truth, eval.scorers.timed_queries), grouped by video in time order, with their texts' features
(`text.source`), and the frames of a video they are asked about."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from eval.feature_checks import check_frames
from eval.inference.config import query_text
from eval.inference.features import MissingFeatures
from eval.inference.session import Session
from eval.scorers.timed_queries import TimedQuery, load_timed_queries
from pipeline.store import NotInStoreError


@dataclass(frozen=True)
class VideoQueries:
    """The queries of one video with their text features (rows aligned)."""
    video_id: str
    query_ids: tuple[str, ...]
    texts: tuple[str, ...]
    start: np.ndarray          # [Q] seconds
    end: np.ndarray            # [Q]
    sentence: np.ndarray       # [Q, Ds]
    words: np.ndarray          # [Q, W, Dw]
    mask: np.ndarray           # [Q, W]


def benchmark_queries(benchmark: str, benchmark_dir) -> dict[str, list[TimedQuery]]:
    """video -> its timed queries, ordered by start time, then query id."""
    out: dict[str, list[TimedQuery]] = defaultdict(list)
    for q in load_timed_queries(benchmark, benchmark_dir):
        out[q.video_id].append(q)
    return dict(out)


def encode_queries(session: Session, video_id: str, queries: list[TimedQuery]) -> VideoQueries:
    texts = session.texts([query_text(q.text, session.cfg.text) for q in queries], [video_id],
                          [q.query_id for q in queries])
    return VideoQueries(video_id, tuple(q.query_id for q in queries), tuple(q.text for q in queries),
                        np.array([q.start for q in queries], np.float64), np.array([q.end for q in queries], np.float64),
                        texts.sentence, texts.words, texts.mask)


def video_frames(session: Session, video_id: str) -> tuple[np.ndarray, np.ndarray]:
    """(times [N], frame vectors [N, Dg]) of the video's rows extracted at cfg.fps; MissingFeatures if none."""
    try:
        got = session.store.frames(video_id, session.encoder, fps=session.cfg.fps, fields=("global",))
    except NotInStoreError:
        got = None
    if got is None or not len(got["times"]):
        raise MissingFeatures(video_id, f"no {session.encoder} features at {session.cfg.fps:g} fps in the store")
    check_frames(session.store.root, video_id, session.encoder, got)
    return got["times"], got["global"]
