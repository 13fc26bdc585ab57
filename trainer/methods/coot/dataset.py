"""COOT's training items (`CootDataset`): one item per video, its narrations in time order (coot.data.max_clips of
them at most: the run around the sampled narration). Clip i = the frame vectors of narration i's candidate
window (coot.data.clip=window: data.candidates slots at data.fps, as the STG loader places them) or of the
caption's own span (clip=caption: up to data.candidates stored frames, centres of equal intervals); sentence i =
its word tokens; the whole video = coot.data.video_frames frames at the centres of equal intervals of all its
stored frames (COOT Sec. 4: "up to 80 frame features ... the center frame" of each interval). Narrations without
word tokens or without frames are left out of the sequence. Needs data.sampling=per_video.
"""
from __future__ import annotations

import numpy as np

from trainer.data import DataError, NarrationIndex, place_rows
from trainer.methods.coot.config import CootDataConfig
from trainer.train_config import DataConfig
from trainer.video_frames import VideoFramesDataset


def uniform_centres(n: int, k: int) -> np.ndarray:
    """Indices of up to k of n items: all when n <= k, else the centre of each of k equal intervals."""
    if n <= k:
        return np.arange(n)
    return np.floor((np.arange(k) + 0.5) * n / k).astype(np.int64)


def span_rows(times: np.ndarray, start: float, end: float, stored: float, n: int) -> np.ndarray:
    """Rows of up to n stored frames inside [start, end) (centres of equal intervals); for a span shorter than a
    stored period, the frame nearest its middle when within half a period of the span."""
    inside = np.flatnonzero((times >= start - 1e-9) & (times < end - 1e-9))
    if len(inside):
        return inside[uniform_centres(len(inside), n)]
    if len(times) == 0:
        return inside
    nearest = int(np.argmin(np.abs(times - (start + end) / 2)))
    near = start - 0.5 / stored <= times[nearest] < end + 0.5 / stored
    return np.array([nearest]) if near else inside


class CootDataset(VideoFramesDataset):
    """Video items for the COOT head (module docstring); needs data.sampling=per_video."""

    def __init__(self, root: str, index: NarrationIndex, cfg: DataConfig, coot: CootDataConfig):
        if cfg.sampling != "per_video":
            raise DataError("the coot method trains on whole videos: set data.sampling=per_video")
        super().__init__(root, index, cfg)
        self.coot = coot

    def __getitems__(self, indices: list[int]) -> dict[str, np.ndarray]:
        spec, cfg, k = self.store().encoders[self.cfg.encoder], self.cfg, self.coot
        d, w, n, c = spec["dims"], spec["max_words"], len(indices), k.max_clips
        out = {"clip_frames": np.zeros((n, c, cfg.candidates, d["global"]), np.float16),
               "clip_frame_mask": np.zeros((n, c, cfg.candidates), bool), "clip_mask": np.zeros((n, c), bool),
               "words": np.zeros((n, c, w, d["words"]), np.float16), "word_mask": np.zeros((n, c, w), bool),
               "sentence": np.zeros((n, c, d["sentence"]), np.float16),
               "video_frames": np.zeros((n, k.video_frames, d["global"]), np.float16),
               "video_mask": np.zeros((n, k.video_frames), bool), "index": np.zeros(n, np.int64)}
        for b, i in enumerate(indices):
            self._fill_video(out, b, int(i))
        return out

    def _run(self, k: int, usable: list[int]) -> list[int]:
        """At most coot.data.max_clips consecutive narrations of `usable` (time order), centred on narration k."""
        c = self.coot.max_clips
        if len(usable) <= c:
            return usable
        pos = usable.index(k) if k in usable else len(usable) // 2
        first = min(max(pos - c // 2, 0), len(usable) - c)
        return usable[first:first + c]

    def _fill_video(self, out: dict[str, np.ndarray], b: int, i: int) -> None:
        v, k = self.locate(i)
        video_id, caps, nar = self.video(v)
        times, feats = self.frames_of(video_id)
        rows_of: dict[int, np.ndarray] = {}
        for j in map(int, np.argsort(nar.lo, kind="stable")):
            rows = self._clip_rows(j, caps, nar, times)
            if caps["mask"][nar.row[j]].any() and len(rows):
                rows_of[j] = rows
        if not rows_of:
            raise DataError(f"video {video_id!r}: no narration has both word tokens and frames")
        for slot, j in enumerate(self._run(k, list(rows_of))):
            row, rows = nar.row[j], rows_of[j]
            ok = rows >= 0
            out["clip_frames"][b, slot, :len(rows)][ok] = feats[rows[ok]]
            out["clip_frame_mask"][b, slot, :len(rows)] = ok
            out["clip_mask"][b, slot] = True
            out["words"][b, slot], out["word_mask"][b, slot] = caps["words"][row], caps["mask"][row]
            out["sentence"][b, slot] = caps["sentence"][row]
        keep = uniform_centres(len(times), self.coot.video_frames)
        out["video_frames"][b, :len(keep)], out["video_mask"][b, :len(keep)] = feats[keep], True
        out["index"][b] = i

    def _clip_rows(self, j: int, caps: dict, nar, times: np.ndarray) -> np.ndarray:
        """Stored rows of narration j's clip (-1 for empty window slots); empty when it has no frame."""
        cfg = self.cfg
        if self.coot.clip == "caption":
            row = nar.row[j]
            return span_rows(times, caps["start"][row], caps["end"][row], nar.stored_rate, cfg.candidates)
        rows, ok = place_rows(times, float(nar.lo[j]), nar.rate, nar.stored_rate, cfg.candidates)
        return rows if ok.any() else rows[:0]


