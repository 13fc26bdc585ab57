"""The narrations a head trains on, indexed without one Python object per narration.

A narration is a timed caption (of `data.kinds`, when set) of a video with features of `data.encoder`, whose
candidate window [lo, lo + candidates / rate) overlaps the video's stored segments; lo centres the window on
the narration (or starts it there). `build_index` finds, in one vectorised pass over the store's mapped caption
and segment columns, how many narrations each video has: O(videos) memory however many captions there are
(HowTo100M: 1.2M videos, 136M narrations). Narration j is the k-th valid caption of video v, where
first[v] <= j < first[v + 1]; `video_narrations` resolves a video's narrations (caption rows, windows) from its
own captions and segments with the same rule, when a sample of that video is assembled.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pipeline.store import FeatureStore
from pipeline.store.reader import VideoIds
from trainer.train_config import DataConfig

CHUNK = 1 << 22   # captions per step of the vectorised pass (bounds its memory)
_US = 1e6         # times compared in whole microseconds inside int64 keys
_T_BITS = 40      # 2^40 us = 12.7 days per video


class DataError(ValueError):
    """The store cannot provide training samples as configured (the message says why)."""


@dataclass(frozen=True)
class NarrationIndex:
    videos: Sequence[str]       # training videos, sorted
    first: np.ndarray           # [V + 1] narrations of video v: first[v] .. first[v + 1] - 1
    stored_rate: np.ndarray     # [V] stored rows per second of each video's segments

    def __len__(self) -> int:
        return int(self.first[-1])

    @property
    def counts(self) -> np.ndarray:
        return np.diff(self.first)

    def video_of(self, j) -> np.ndarray:
        """Video number of narration(s) j."""
        return np.searchsorted(self.first, j, side="right") - 1


@dataclass(frozen=True)
class VideoNarrations:
    """One video's narrations, in caption order: `row` indexes the arrays of `store.captions(video)`."""

    row: np.ndarray
    caption_id: np.ndarray
    lo: np.ndarray       # window start, seconds (may be < 0: padded)
    center: np.ndarray   # narration centre, in candidate units from lo
    rate: float          # candidates per second
    stored_rate: float   # stored rows per second


def stored_rate(spec: dict, segment_fps: np.ndarray) -> np.ndarray:
    """Rows per second: the frame rate for per-frame encoders, windows per second for windowed ones (s3d)."""
    if spec.get("window"):
        return np.full(len(segment_fps), float(spec["fps"]) / float(spec["window"]))
    return np.asarray(segment_fps, np.float64)


def _keys(video: np.ndarray, seconds: np.ndarray) -> np.ndarray:
    us = np.clip(np.nan_to_num(seconds * _US, posinf=2.0 ** _T_BITS - 1, neginf=0.0), 0, 2 ** _T_BITS - 1)
    return (video.astype(np.int64) << _T_BITS) | np.rint(us).astype(np.int64)


class _Segments:
    """The fps-filtered segments of a set of videos as sorted (video, start) keys with the running max end."""

    def __init__(self, video: np.ndarray, start: np.ndarray, end: np.ndarray):
        order = np.lexsort((start, video))
        self.video = video[order]
        self.start_key = _keys(self.video, start[order])
        self.max_end_key = np.maximum.accumulate(_keys(self.video, end[order])) if len(order) else np.zeros(0, np.int64)

    def overlaps(self, video: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """Whether [max(lo, 0), hi) of each caption overlaps one of its video's segments."""
        idx = np.searchsorted(self.start_key, _keys(video, hi), side="left") - 1
        ok = idx >= 0
        idx = np.maximum(idx, 0)
        if not len(self.video):
            return np.zeros(len(video), bool)
        ok &= self.video[idx] == video
        return ok & (self.max_end_key[idx] > _keys(video, np.maximum(lo, 0.0)))


def _segment_table(cols: dict, spec: dict, cfg: DataConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(keep mask, start, end, stored rate) of segment rows, filtered to data.store_fps."""
    fps = np.asarray(cols["fps"])
    keep = np.ones(len(fps), bool) if cfg.store_fps is None else np.abs(fps - cfg.store_fps) <= 1e-6
    end = np.where(np.isnan(cols["end_actual"]), cols["end"], cols["end_actual"])
    return keep, np.asarray(cols["start"]), np.where(np.isnan(end), np.inf, end), stored_rate(spec, fps)


def _video_rates(n_videos: int, seg_video: np.ndarray, srate: np.ndarray, ids, cfg: DataConfig) -> np.ndarray:
    """Each video's stored rate (NaN: no segment); several rates in one video are an error."""
    lo = np.full(n_videos, np.inf)
    hi = np.full(n_videos, -np.inf)
    np.minimum.at(lo, seg_video, np.round(srate, 6))
    np.maximum.at(hi, seg_video, np.round(srate, 6))
    bad = np.flatnonzero(hi > lo)
    if len(bad):
        raise DataError(f"video {ids[int(bad[0])]!r} has {cfg.encoder} segments at several rates "
                        f"{sorted({lo[bad[0]], hi[bad[0]]})}: set data.store_fps to the training segments' fps")
    return np.where(np.isfinite(lo), lo, np.nan)


def _windows(start, end, rate, cfg: DataConfig) -> tuple[np.ndarray, np.ndarray]:
    lo = (start + end) / 2 - cfg.window_s / 2 if cfg.anchor == "center" else start
    return lo, lo + cfg.candidates / rate


def _check_rates(srate: np.ndarray, ids, cfg: DataConfig) -> None:
    have = np.flatnonzero(np.isfinite(srate))
    rate = srate[have] if cfg.fps is None else np.full(len(have), float(cfg.fps))
    above = np.flatnonzero(rate > srate[have] + 1e-6)
    if len(above):
        raise DataError(f"data.fps={cfg.fps} is above the stored rate {srate[have][above[0]]} of video "
                        f"{ids[int(have[above[0]])]!r}")
    wrong = np.flatnonzero(np.abs(cfg.candidates / rate - cfg.window_s) > 1.0 / rate + 1e-6)
    if len(wrong):
        r = rate[wrong[0]]
        raise DataError(f"data.candidates={cfg.candidates} at {r:g} per second cover {cfg.candidates / r:g} s, "
                        f"not data.window_s={cfg.window_s:g} s")


def _valid(start, end, kind, video, segs: _Segments, srate, kind_ok, cfg: DataConfig) -> np.ndarray:
    """Which captions are narrations (the rule of the module docstring), vectorised."""
    stored = srate[video]  # NaN: the video has no segment to train on (or a newer run replaces it)
    rate = stored if cfg.fps is None else np.full(len(video), float(cfg.fps))
    ok = np.isfinite(start) & np.isfinite(end) & np.isfinite(stored) & kind_ok[kind]
    lo, hi = _windows(start, end, np.where(np.isfinite(rate), rate, 1.0), cfg)
    return ok & segs.overlaps(video, lo, hi)


def _kind_ok(kinds: list[str], cfg: DataConfig) -> np.ndarray:
    """Per kind code (the last entry: no kind), whether data.kinds admits it."""
    return np.array([not cfg.kinds or k in cfg.kinds for k in kinds] + [not cfg.kinds], bool)


def _part_counts(seg, cap, spec: dict, cfg: DataConfig) -> tuple[np.ndarray, np.ndarray]:
    """(narrations per video, stored rate per video) of one index run (`FeatureStore.table_parts`)."""
    n_videos = len(seg.offsets) - 1
    keep, s_start, s_end, s_rate = _segment_table(seg.columns, spec, cfg)
    s_video = np.repeat(np.arange(n_videos), np.diff(seg.offsets))[keep]
    srate = _video_rates(n_videos, s_video, s_rate[keep], seg.ids, cfg)
    if seg.live is not None:
        srate[~seg.live] = np.nan
    _check_rates(srate, seg.ids, cfg)
    segs = _Segments(s_video, s_start[keep], s_end[keep])
    kind_ok = _kind_ok(cap.kinds, cfg)
    counts = np.zeros(n_videos, np.int64)
    for a in range(0, int(cap.offsets[-1]), CHUNK):
        b = min(a + CHUNK, int(cap.offsets[-1]))
        video = np.searchsorted(cap.offsets, np.arange(a, b), side="right") - 1
        c = cap.columns
        valid = _valid(c["start"][a:b], c["end"][a:b], c["kind"][a:b], video, segs, srate, kind_ok, cfg)
        counts += np.bincount(video[valid], minlength=n_videos)
    return counts, srate


def build_index(store: FeatureStore, cfg: DataConfig) -> NarrationIndex:
    """Every video's narration count (see the module docstring); videos without narrations are left out."""
    if cfg.encoder not in store.encoders:
        raise DataError(f"{store.root}: no {cfg.encoder!r} features (store has {sorted(store.encoders)})")
    spec = store.encoders[cfg.encoder]
    segs = store.table_parts("segments", ("start", "end", "end_actual", "fps"))
    caps = store.table_parts("captions", ("start", "end", "kind"))
    parts = [(seg, *_part_counts(seg, cap, spec, cfg)) for seg, cap in zip(segs, caps)]
    if len(parts) == 1:
        seg, counts, srate = parts[0]
        keep = np.flatnonzero(counts)
        videos = VideoIds(seg.ids, keep)
    else:  # several index runs (a store extracted in several steps): merge by id
        rows = sorted((seg.ids[int(i)], int(n), float(r)) for seg, counts, srate in parts
                      for i, n, r in zip(np.flatnonzero(counts), counts[counts > 0], srate[counts > 0]))
        videos, counts, srate = [r[0] for r in rows], np.array([r[1] for r in rows]), np.array([r[2] for r in rows])
        keep = np.arange(len(rows))
    if not len(keep):
        raise DataError(f"{store.root}: no narration has {cfg.encoder} features in its window")
    first = np.concatenate([[0], np.cumsum(counts[keep])]).astype(np.int64)
    return NarrationIndex(videos, first, np.asarray(srate[keep], np.float64))


def video_narrations(store: FeatureStore, video_id: str, captions: dict, rate_stored: float,
                     cfg: DataConfig) -> VideoNarrations:
    """A video's narrations from its captions (`store.captions`) and segments, by `build_index`'s rule."""
    spec = store.encoders[cfg.encoder]
    rows = store.segments(video_id, cfg.encoder)
    cols = {k: np.array([np.nan if r[k] is None else r[k] for r in rows], np.float64)
            for k in ("start", "end", "end_actual", "fps")}
    keep, s_start, s_end, _ = _segment_table(cols, spec, cfg)
    segs = _Segments(np.zeros(int(keep.sum()), np.int64), s_start[keep], s_end[keep])
    kinds = sorted({k for k in captions["kind"] if k is not None})
    code = np.array([kinds.index(k) if k is not None else len(kinds) for k in captions["kind"]], np.int64)
    start, end = np.asarray(captions["start"], np.float64), np.asarray(captions["end"], np.float64)
    video = np.zeros(len(start), np.int64)
    valid = _valid(start, end, code, video, segs, np.array([rate_stored]), _kind_ok(kinds, cfg), cfg)
    row = np.flatnonzero(valid)
    rate = rate_stored if cfg.fps is None else float(cfg.fps)
    lo, _ = _windows(start[row], end[row], rate, cfg)
    return VideoNarrations(row, np.asarray(captions["caption_id"])[row], lo,
                           ((start[row] + end[row]) / 2 - lo) * rate, rate, rate_stored)


def narration_table(store: FeatureStore, index: NarrationIndex, cfg: DataConfig) -> dict[str, np.ndarray]:
    """Every narration's video number, caption id, window start, centre and rates, in narration order: for
    looking into small stores (it holds one row per narration)."""
    parts = []
    for v, vid in enumerate(index.videos):
        nar = video_narrations(store, vid, store.captions(vid, cfg.encoder), float(index.stored_rate[v]), cfg)
        n = len(nar.row)
        parts.append({"video": np.full(n, v), "caption_id": nar.caption_id, "lo": nar.lo, "center": nar.center,
                      "rate": np.full(n, nar.rate), "stored_rate": np.full(n, nar.stored_rate)})
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
