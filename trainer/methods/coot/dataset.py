"""COOT's training items (`CootDataset`): one item per video, its narrations in time order (coot.data.max_clips of
them at most: the run around the sampled narration). Clip i = the frame vectors of narration i's candidate
window (coot.data.clip=window: data.candidates slots at data.fps, as the STG loader places them) or of the
caption's own span (clip=caption: up to data.candidates stored frames, one per equal interval); sentence i =
its word tokens; the whole video = coot.data.video_frames frames, one per equal interval of all its stored
frames. Narrations without word tokens or without frames are left out of the sequence. Needs
data.sampling=per_video.

Frame choice (COOT Sec. 4: "we split the frames into 80 equal length intervals and uniformly sample a frame from
each interval during training or take the center frame during validation"): with coot.data.frames=random, a
training item takes, in each interval, the frame at a uniformly random point of it (in a window, slot k's
interval is the 1/data.fps seconds centred on its time); evaluation (`training = False`: the held-out
validation of trainer.validation, and the inference adapter) takes the frame at each interval's centre, as
coot.data.frames=centre does in training too. The random points are drawn from numpy default_rng([seed, the
batch's item indices...]): a function of the seed and the batch alone (a resumed run, any number of loader
workers, gives the same draws), different in each epoch since the sampler draws new batches.
"""
from __future__ import annotations

import numpy as np

from trainer.data import DataError, NarrationIndex, place_rows
from trainer.methods.coot.config import CootDataConfig
from trainer.train_config import DataConfig
from trainer.video_frames import VideoFramesDataset


def interval_picks(n: int, k: int, offsets: np.ndarray | None = None) -> np.ndarray:
    """Indices of up to k of n items: all when n <= k, else one per each of k equal intervals of [0, n): the item
    at point (j + offsets[j]) n / k of interval j (offsets in [0, 1); None: 0.5, the centre)."""
    if n <= k:
        return np.arange(n)
    at = np.full(k, 0.5) if offsets is None else np.asarray(offsets, np.float64)[:k]
    return np.minimum(np.floor((np.arange(k) + at) * n / k), n - 1).astype(np.int64)


def uniform_centres(n: int, k: int) -> np.ndarray:
    """Indices of up to k of n items: all when n <= k, else the centre of each of k equal intervals."""
    return interval_picks(n, k)


def span_rows(times: np.ndarray, start: float, end: float, stored: float, n: int,
              offsets: np.ndarray | None = None) -> np.ndarray:
    """Rows of up to n stored frames inside [start, end) (one per equal interval: `interval_picks`); for a span
    shorter than a stored period, the frame nearest its middle when within half a period of the span."""
    inside = np.flatnonzero((times >= start - 1e-9) & (times < end - 1e-9))
    if len(inside):
        return inside[interval_picks(len(inside), n, offsets)]
    if len(times) == 0:
        return inside
    nearest = int(np.argmin(np.abs(times - (start + end) / 2)))
    near = start - 0.5 / stored <= times[nearest] < end + 0.5 / stored
    return np.array([nearest]) if near else inside


def window_rows(times: np.ndarray, lo: float, rate: float, stored: float, n: int,
                offsets: np.ndarray | None = None) -> np.ndarray:
    """Rows of a window's n slots (-1: none): slot k takes the stored row nearest the point lo + (k - 0.5 +
    offsets[k]) / rate of its interval, if within half a stored period of it; offsets None (0.5): the slot times
    lo + k / rate, as trainer.data.place_rows places them."""
    if offsets is None:
        return place_rows(times, lo, rate, stored, n)[0]
    points = lo + (np.arange(n) - 0.5 + np.asarray(offsets, np.float64)[:n]) / rate
    if len(times) == 0:
        return np.full(n, -1)
    pos = np.clip(np.searchsorted(times, points), 1, max(1, len(times) - 1)) if len(times) > 1 else np.zeros(n, int)
    nearest = np.where(np.abs(times[pos - 1] - points) <= np.abs(times[pos] - points), pos - 1, pos) \
        if len(times) > 1 else pos
    gap = times[nearest] - points
    ok = (gap >= -0.5 / stored - 1e-9) & (gap < 0.5 / stored - 1e-9)
    return np.where(ok, nearest, -1)


class CootDataset(VideoFramesDataset):
    """Video items for the COOT head (module docstring); needs data.sampling=per_video. `training` (True) picks
    random frames within intervals when coot.data.frames=random; False: the centres (evaluation)."""

    def __init__(self, root: str, index: NarrationIndex, cfg: DataConfig, coot: CootDataConfig, seed: int = 0):
        if cfg.sampling != "per_video":
            raise DataError("the coot method trains on whole videos: set data.sampling=per_video")
        super().__init__(root, index, cfg)
        self.coot, self.seed, self.training = coot, seed, True
        self._rng: np.random.Generator | None = None

    def offsets(self, n: int) -> np.ndarray | None:
        """n interval offsets in [0, 1) of the batch being assembled, or None (centres)."""
        if self._rng is None:
            return None
        return self._rng.random(n)

    def __getitems__(self, indices: list[int]) -> dict[str, np.ndarray]:
        spec, cfg, k = self.store().encoders[self.cfg.encoder], self.cfg, self.coot
        d, w, n, c = spec["dims"], spec["max_words"], len(indices), k.max_clips
        out = {"clip_frames": np.zeros((n, c, cfg.candidates, d["global"]), np.float16),
               "clip_frame_mask": np.zeros((n, c, cfg.candidates), bool), "clip_mask": np.zeros((n, c), bool),
               "words": np.zeros((n, c, w, d["words"]), np.float16), "word_mask": np.zeros((n, c, w), bool),
               "sentence": np.zeros((n, c, d["sentence"]), np.float16),
               "video_frames": np.zeros((n, k.video_frames, d["global"]), np.float16),
               "video_mask": np.zeros((n, k.video_frames), bool), "index": np.zeros(n, np.int64)}
        random = self.training and k.frames == "random"
        self._rng = np.random.default_rng([self.seed, *map(int, indices)]) if random else None
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
        keep = interval_picks(len(times), self.coot.video_frames, self.offsets(self.coot.video_frames))
        out["video_frames"][b, :len(keep)], out["video_mask"][b, :len(keep)] = feats[keep], True
        out["index"][b] = i

    def _clip_rows(self, j: int, caps: dict, nar, times: np.ndarray) -> np.ndarray:
        """Stored rows of narration j's clip (-1 for empty window slots); empty when it has no frame."""
        cfg = self.cfg
        offsets = self.offsets(cfg.candidates)
        if self.coot.clip == "caption":
            row = nar.row[j]
            return span_rows(times, caps["start"][row], caps["end"][row], nar.stored_rate, cfg.candidates, offsets)
        rows = window_rows(times, float(nar.lo[j]), nar.rate, nar.stored_rate, cfg.candidates, offsets)
        return rows if (rows >= 0).any() else rows[:0]


