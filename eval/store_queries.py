"""What the COOT/WSRA inference reads from the store: a trained run with the store it is applied to (encoder
specs checked), the timed text queries of a video (captions of given kinds with their features), and its frames.

Query ids are the last field of the caption id ("<video>:step:12" -> "12"): the manifest builders number
captions by the annotation's own id, which is what eval.scorers.timed_queries reads from the annotation files.
Features holding NaN or inf are refused here, where they are loaded (eval.feature_checks).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from eval.feature_checks import check_captions, check_frames
from pipeline.store import FeatureStore, open_store
from trainer.checkpoint import TrainedHead, load_trained


class RankedInferenceError(ValueError):
    """The run, the store or the queries cannot produce the predictions (the message says why)."""


@dataclass(frozen=True)
class VideoQueries:
    """The queries of one video with their caption features (rows aligned)."""
    video_id: str
    query_ids: tuple[str, ...]
    texts: tuple[str, ...]
    start: np.ndarray          # [Q] seconds (nan for captions without times)
    end: np.ndarray            # [Q]
    sentence: np.ndarray       # [Q, Ds]
    words: np.ndarray          # [Q, W, Dw]
    mask: np.ndarray           # [Q, W]


def open_run(run: str, store: str, head: str, device: str = "cpu") -> tuple[TrainedHead, FeatureStore]:
    """The trained head (eval mode) of a run dir / checkpoint, and the store, whose features must have the
    encoder spec the run was trained on."""
    trained = load_trained(run, device)
    if trained.config.head.name != head:
        raise RankedInferenceError(f"{run}: a {trained.config.head.name!r} run; this inference needs {head!r}")
    feature_store = open_store(store)
    encoder = trained.config.data.encoder
    have = feature_store.encoders.get(encoder)
    if have != trained.encoder_spec:
        raise RankedInferenceError(f"{store}: {encoder} spec differs from the one the run was trained on:\n"
                                   f"  store: {have}\n  run:   {trained.encoder_spec}")
    return trained, feature_store


def video_queries(store: FeatureStore, video_id: str, encoder: str, kinds: tuple[str, ...],
                  timed: bool = True) -> VideoQueries | None:
    """Captions of `kinds` (with times when `timed`), in time order; None when the video has none."""
    caps = store.captions(video_id, encoder)
    start = np.array([np.nan if v is None else v for v in caps["start"]], np.float64)
    end = np.array([np.nan if v is None else v for v in caps["end"]], np.float64)
    keep = np.array([k in kinds for k in caps["kind"]], bool)
    if timed:
        keep &= np.isfinite(start) & np.isfinite(end)
    rows = np.flatnonzero(keep)
    if not len(rows):
        return None
    rows = rows[np.argsort(start[rows], kind="stable")] if timed else rows
    check_captions(store.root, video_id, encoder, caps["caption_id"][rows], start[rows],
                   {k: caps[k][rows] for k in ("sentence", "words")})
    return VideoQueries(video_id, tuple(str(c).rsplit(":", 1)[-1] for c in caps["caption_id"][rows]),
                        tuple(str(t) for t in caps["text"][rows]), start[rows], end[rows],
                        caps["sentence"][rows], caps["words"][rows], caps["mask"][rows])


def video_frames(store: FeatureStore, video_id: str, encoder: str,
                 store_fps: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(times [N], frame vectors [N, Dg]) of the video's stored frames."""
    got = store.frames(video_id, encoder, fps=store_fps, fields=("global",))
    check_frames(store.root, video_id, encoder, got)
    return got["times"], got["global"]
