"""Whole-video training items from the store for the COOT and WSRA heads (the sampler is the narration
sampler of trainer.data; a sampled narration names its video).

- COOT (`CootDataset`): one item per video, its narrations in time order (data.max_clips of them at most: the
  run around the sampled narration). Clip i = the frame vectors of narration i's candidate window
  (data.clip=window: data.candidates slots at data.fps, as the STG loader places them) or of the caption's
  own span (data.clip=caption: up to data.candidates stored frames, centres of equal intervals); sentence i =
  its word tokens; the whole video = data.video_frames frames at the centres of equal intervals of all its
  stored frames (COOT Sec. 4: "up to 80 frame features ... the center frame" of each interval). Narrations
  without word tokens or without frames are left out of the sequence.
- WSRA (`WsraDataset`): one item per narration: its query (sentence, words) and its video's untrimmed
  snippets: stored frame vectors mean-pooled over data.snippet_s seconds, merged into data.video_frames equal
  groups when there are more.
Frames are read once per video (global vectors only) and kept in a per-worker LRU of data.caption_cache videos.
"""
from __future__ import annotations

import os
from collections import OrderedDict

import numpy as np

from trainer.data import DataError, NarrationDataset, NarrationIndex, place_rows
from trainer.train_config import DataConfig


def uniform_centres(n: int, k: int) -> np.ndarray:
    """Indices of up to k of n items: all when n <= k, else the centre of each of k equal intervals."""
    if n <= k:
        return np.arange(n)
    return np.floor((np.arange(k) + 0.5) * n / k).astype(np.int64)


def snippets(times: np.ndarray, feats: np.ndarray, snippet_s: float, max_n: int = 0) -> tuple[np.ndarray, ...]:
    """(start [n], end [n], mean feature [n, D]) of the snippets [k s, (k + 1) s) that hold frames; with max_n > 0
    and more snippets than that, consecutive snippets are merged into max_n equal groups (mean of their means)."""
    if len(times) == 0:
        return np.zeros(0), np.zeros(0), np.zeros((0, feats.shape[-1]), np.float32)
    bins = np.floor(np.asarray(times, np.float64) / snippet_s + 1e-9).astype(np.int64)
    keys, first = np.unique(bins, return_index=True)
    sums = np.add.reduceat(feats.astype(np.float32), first, axis=0)
    means = sums / np.diff(np.append(first, len(bins)))[:, None]
    starts, ends = keys * snippet_s, (keys + 1) * snippet_s
    if max_n and len(keys) > max_n:
        groups = np.array_split(np.arange(len(keys)), max_n)
        means = np.stack([means[g].mean(0) for g in groups])
        starts, ends = np.array([starts[g[0]] for g in groups]), np.array([ends[g[-1]] for g in groups])
    return starts, ends, means


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


class _VideoFrames(NarrationDataset):
    """NarrationDataset with a per-worker LRU of whole videos' frame vectors."""

    def __init__(self, root: str, index: NarrationIndex, cfg: DataConfig):
        super().__init__(root, index, cfg)
        self._frames: OrderedDict[str, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._frames_pid = -1

    def frames_of(self, video_id: str) -> tuple[np.ndarray, np.ndarray]:
        """(times [N], global [N, D]) of every stored frame of the video (data.store_fps segments only)."""
        if self._frames_pid != os.getpid():
            self._frames, self._frames_pid = OrderedDict(), os.getpid()
        if video_id not in self._frames:
            got = self.store().frames(video_id, self.cfg.encoder, fps=self.cfg.store_fps, fields=("global",))
            self._frames[video_id] = (got["times"], got["global"])
            while len(self._frames) > max(1, self.cfg.caption_cache):
                self._frames.popitem(last=False)
        self._frames.move_to_end(video_id)
        return self._frames[video_id]

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        return {k: v[0] for k, v in self.__getitems__([i]).items()}


class CootDataset(_VideoFrames):
    """Video items for the COOT head (module docstring); needs data.sampling=per_video."""

    def __init__(self, root: str, index: NarrationIndex, cfg: DataConfig):
        if cfg.sampling != "per_video":
            raise DataError("the coot head trains on whole videos: set data.sampling=per_video")
        super().__init__(root, index, cfg)

    def __getitems__(self, indices: list[int]) -> dict[str, np.ndarray]:
        spec, cfg = self.store().encoders[self.cfg.encoder], self.cfg
        d, w, n, c = spec["dims"], spec["max_words"], len(indices), cfg.max_clips
        out = {"clip_frames": np.zeros((n, c, cfg.candidates, d["global"]), np.float16),
               "clip_frame_mask": np.zeros((n, c, cfg.candidates), bool), "clip_mask": np.zeros((n, c), bool),
               "words": np.zeros((n, c, w, d["words"]), np.float16), "word_mask": np.zeros((n, c, w), bool),
               "sentence": np.zeros((n, c, d["sentence"]), np.float16),
               "video_frames": np.zeros((n, cfg.video_frames, d["global"]), np.float16),
               "video_mask": np.zeros((n, cfg.video_frames), bool), "index": np.zeros(n, np.int64)}
        for b, i in enumerate(indices):
            self._fill_video(out, b, int(i))
        return out

    def _run(self, k: int, usable: list[int]) -> list[int]:
        """At most data.max_clips consecutive narrations of `usable` (time order), centred on narration k."""
        c = self.cfg.max_clips
        if len(usable) <= c:
            return usable
        pos = usable.index(k) if k in usable else len(usable) // 2
        first = min(max(pos - c // 2, 0), len(usable) - c)
        return usable[first:first + c]

    def _fill_video(self, out: dict[str, np.ndarray], b: int, i: int) -> None:
        cfg = self.cfg
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
        keep = uniform_centres(len(times), cfg.video_frames)
        out["video_frames"][b, :len(keep)], out["video_mask"][b, :len(keep)] = feats[keep], True
        out["index"][b] = i

    def _clip_rows(self, j: int, caps: dict, nar, times: np.ndarray) -> np.ndarray:
        """Stored rows of narration j's clip (-1 for empty window slots); empty when it has no frame."""
        cfg = self.cfg
        if cfg.clip == "caption":
            row = nar.row[j]
            return span_rows(times, caps["start"][row], caps["end"][row], nar.stored_rate, cfg.candidates)
        rows, ok = place_rows(times, float(nar.lo[j]), nar.rate, nar.stored_rate, cfg.candidates)
        return rows if ok.any() else rows[:0]


class WsraDataset(_VideoFrames):
    """Query items for the WSRA head (module docstring)."""

    def __init__(self, root: str, index: NarrationIndex, cfg: DataConfig):
        super().__init__(root, index, cfg)
        self._snippets: dict[str, np.ndarray] = {}

    def video_snippets(self, video_id: str) -> np.ndarray:
        """Snippet features [n, D] of the whole video (computed once per worker and video)."""
        times, feats = self.frames_of(video_id)
        key = f"{os.getpid()}:{video_id}"
        if key not in self._snippets:
            if len(self._snippets) >= max(1, self.cfg.caption_cache):
                self._snippets.pop(next(iter(self._snippets)))
            self._snippets[key] = snippets(times, feats, self.cfg.snippet_s, self.cfg.video_frames)[2]
        return self._snippets[key]

    def __getitems__(self, indices: list[int]) -> dict[str, np.ndarray]:
        spec, cfg, n = self.store().encoders[self.cfg.encoder], self.cfg, len(indices)
        d, w, t = spec["dims"], spec["max_words"], cfg.video_frames
        out = {"snippets": np.zeros((n, t, d["global"]), np.float16), "snippet_mask": np.zeros((n, t), bool),
               "words": np.zeros((n, w, d["words"]), np.float16), "word_mask": np.zeros((n, w), bool),
               "sentence": np.zeros((n, d["sentence"]), np.float16), "video": np.zeros(n, np.int64),
               "index": np.zeros(n, np.int64)}
        for b, i in enumerate(indices):
            v, k = self.locate(int(i))
            video_id, caps, nar = self.video(v)
            j, _ = self._with_words(k, caps, nar)
            row = nar.row[j]
            feats = self.video_snippets(video_id)
            out["snippets"][b, :len(feats)], out["snippet_mask"][b, :len(feats)] = feats, True
            out["words"][b], out["word_mask"][b] = caps["words"][row], caps["mask"][row]
            out["sentence"][b], out["video"][b] = caps["sentence"][row], v
            out["index"][b] = int(self.index.first[v]) + j
        return out
