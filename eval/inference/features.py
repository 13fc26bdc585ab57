"""A video's stored features as inference reads them: rows (1-fps CLIP frames, or S3D windows) and where each
whole second of the video lies among them.

Second s is the frame at t = s (eval/predictions/format.py). A CLIP row is the frame at its time, so second s is the
row at t = s. An S3D row is a window of `window` frames at the encoder's rate whose grid has T' = window / 8
temporal cells; second s is the window containing t = s among its real frames (`valid`) and the cell covering
t = s, so a per-cell map becomes a per-second map by taking the cell that covers the second.
Features holding NaN or inf are refused here, where inference loads them (eval.feature_checks).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from eval.feature_checks import check_frames, empty_rows
from pipeline.store import FeatureStore, NotInStoreError

_TOLERANCE = 1e-3  # seconds: stored times are start + i / fps in float64


class MissingFeatures(LookupError):
    """The store cannot give what a video's inference needs (no features, or too few seconds)."""

    def __init__(self, video_id: str, reason: str):
        self.video_id, self.reason = video_id, reason
        super().__init__(f"{video_id}: {reason}")


@dataclass(frozen=True)
class VideoFeatures:
    video_id: str
    times: np.ndarray          # [N] start time of each row, seconds
    ends: np.ndarray           # [N] end of each row's real frames, seconds
    window_s: float            # length a row's temporal cells divide: 1 / fps (clip) or window / fps (s3d)
    cells_t: int               # temporal cells per row: 1 (clip frame) or T' (s3d window)
    global_: np.ndarray        # [N, Dg] float16 as stored
    grid: np.ndarray           # [N, gh, gw, D] (clip) or [N, T', gh, gw, D] (s3d), float16

    def _lookup(self, seconds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(row or -1, cell) of each second."""
        t = np.asarray(seconds, np.float64)
        if not len(self.times):
            return np.full(len(t), -1), np.zeros(len(t), np.int64)
        last = len(self.times) - 1
        if self.cells_t == 1:  # the frame shown at t = s
            rows = np.clip(np.searchsorted(self.times, t - _TOLERANCE), 0, last)
            ok = np.abs(self.times[rows] - t) < _TOLERANCE
            return np.where(ok, rows, -1), np.zeros(len(t), np.int64)
        rows = np.searchsorted(self.times, t + _TOLERANCE, side="right") - 1
        safe = np.clip(rows, 0, last)
        ok = (rows >= 0) & (t < self.ends[safe] - _TOLERANCE)
        cells = np.floor((t - self.times[safe]) * self.cells_t / self.window_s + _TOLERANCE).astype(np.int64)
        return np.where(ok, rows, -1), cells.clip(0, self.cells_t - 1)

    def covered_seconds(self) -> int:
        """n such that seconds 0..n-1 all have features (the length of a per-second prediction)."""
        if not len(self.times):
            return 0
        rows, _ = self._lookup(np.arange(int(np.ceil(self.ends.max())) + 1))
        return int(np.argmax(rows < 0)) if (rows < 0).any() else len(rows)

    def locate(self, seconds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(row, temporal cell) of each second; MissingFeatures names the first second not covered."""
        seconds = np.asarray(seconds, np.int64)
        rows, cells = self._lookup(seconds)
        if (rows < 0).any():
            first = int(seconds[np.argmax(rows < 0)])
            raise MissingFeatures(self.video_id, f"no stored features at second {first} (features cover seconds "
                                                 f"0..{self.covered_seconds() - 1})")
        return rows, cells

    def empty(self) -> np.ndarray:
        """bool [N]: rows whose global vector or grid is all zeros (they show nothing)."""
        return empty_rows(self.global_, self.grid)


def load_video(store: FeatureStore, video_id: str, encoder: str, fps: float) -> VideoFeatures:
    """Every stored row of a video from segments extracted at `fps`; MissingFeatures when there are none."""
    try:
        data = store.frames(video_id, encoder, fps=fps)
    except NotInStoreError:
        data = None
    if data is None or not len(data["times"]):
        raise MissingFeatures(video_id, f"no {encoder} features at {fps:g} fps in the store")
    check_frames(store.root, video_id, encoder, data)
    spec = store.encoders[encoder]
    times = data["times"].astype(np.float64)
    if spec.get("window"):
        rate = float(spec["fps"])
        ends = times + data["valid"].astype(np.float64) / rate
        window_s, cells_t = int(spec["window"]) / rate, int(spec["grid"][0])
    else:
        ends, window_s, cells_t = times + 1.0 / fps, 1.0 / fps, 1
    return VideoFeatures(video_id, times, ends, window_s, cells_t, data["global"], data["grid"])

