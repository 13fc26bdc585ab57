"""Extraction units shared by all builders.

- Evaluation sets: whole videos (start 0, end null) at `fps` (default 1).
- Training sets: a window around each caption (default 16 s centred on the caption, 5 fps), clipped to
  [0, duration]. By default the windows of one video that overlap or touch are merged into one segment, so
  overlapping narrations never decode the same frames twice; `merge=False` keeps one segment per caption
  (identical windows still give one segment: a segment id names one unit).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Literal, Mapping

from manifests.integrity import SAMPLING_FPS, WINDOW_SECONDS, check_range
from manifests.schema import CaptionRow, SegmentRow, segment_id

Anchor = Literal["center", "start"]
DEFAULT_EVAL_FPS = 1.0
DEFAULT_TRAIN_FPS = 5.0
DEFAULT_WINDOW = 16.0


@dataclass(frozen=True)
class WindowSpec:
    window: float = DEFAULT_WINDOW  # seconds
    fps: float = DEFAULT_TRAIN_FPS
    anchor: Anchor = "center"  # centre the window on the caption, or start it at the caption start
    merge: bool = True

    def __post_init__(self) -> None:
        check_range("window (s)", self.window, WINDOW_SECONDS)
        check_range("fps", self.fps, SAMPLING_FPS)
        if self.anchor not in ("center", "start"):
            raise ValueError(f"anchor must be 'center' or 'start', got {self.anchor!r}")


def whole_video_segments(video_ids: Iterable[str], fps: float = DEFAULT_EVAL_FPS,
                         purpose: str = "eval") -> list[SegmentRow]:
    """One segment per video covering all of it."""
    check_range("fps", fps, SAMPLING_FPS)
    return [SegmentRow(segment_id(v, 0.0, None, fps), v, 0.0, None, float(fps), purpose) for v in video_ids]


def caption_window(start: float, end: float, spec: WindowSpec,
                   duration: float | None) -> tuple[float, float] | None:
    """The window of one caption, clipped to [0, duration] and rounded to the millisecond (the precision of
    segment ids); None when nothing of it lies inside the video."""
    if spec.anchor == "center":
        lo = (start + end) / 2.0 - spec.window / 2.0
    else:
        lo = start
    hi = lo + spec.window
    lo = max(lo, 0.0)
    if duration is not None:
        hi = min(hi, duration)
    lo, hi = round(lo, 3), round(hi, 3)
    return (lo, hi) if hi > lo else None


def merge_windows(windows: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    """Union of intervals: overlapping or touching windows become one, sorted by start."""
    merged: list[list[float]] = []
    for lo, hi in sorted(windows):
        if merged and lo <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    return [(lo, hi) for lo, hi in merged]


def window_segments(captions: Iterable[CaptionRow], durations: Mapping[str, float | None],
                    spec: WindowSpec = WindowSpec(), purpose: str = "train") -> list[SegmentRow]:
    """Caption-window segments of every video, in order of first appearance of the video.

    Captions without times (kind "query") have no window. `durations` maps video_id to its probed duration
    (None when unknown: the window is then clipped at 0 only and the extraction truncates it)."""
    per_video: dict[str, list[tuple[float, float]]] = {}
    for cap in captions:
        if cap.start is None or cap.end is None:
            continue
        win = caption_window(cap.start, cap.end, spec, durations.get(cap.video_id))
        if win is not None:
            per_video.setdefault(cap.video_id, []).append(win)
    out = []
    for vid, wins in per_video.items():
        chosen = merge_windows(wins) if spec.merge else sorted(set(wins))
        out += [SegmentRow(segment_id(vid, lo, hi, spec.fps), vid, lo, hi, float(spec.fps), purpose)
                for lo, hi in chosen]
    return out
