"""Extraction units: whole videos, caption windows, merging (hand cases)."""
from __future__ import annotations

import pytest

from manifests.schema import CaptionRow, segment_id
from manifests.segments import WindowSpec, caption_window, merge_windows, whole_video_segments, window_segments


def cap(vid, start, end, n=0, kind="narration"):
    return CaptionRow(f"{vid}:{kind}:{n}", vid, start, end, "text", kind, "test")


def test_segment_ids_are_deterministic():
    assert segment_id("v", 0, None, 1) == "v:0.000-end@1"
    assert segment_id("v", 2.5, 18.5, 5.0) == "v:2.500-18.500@5"
    assert segment_id("v", 1 / 3, 2, 0.5) == "v:0.333-2.000@0.5"


def test_whole_video_segments():
    rows = whole_video_segments(["a", "b"], fps=2)
    assert [(r.segment_id, r.video_id, r.start, r.end, r.fps, r.purpose) for r in rows] == [
        ("a:0.000-end@2", "a", 0.0, None, 2.0, "eval"), ("b:0.000-end@2", "b", 0.0, None, 2.0, "eval")]
    with pytest.raises(ValueError):
        whole_video_segments(["a"], fps=0)


@pytest.mark.parametrize("start,end,anchor,duration,expected", [
    (20, 24, "center", None, (14.0, 30.0)),       # centre 22 +- 8
    (20, 24, "start", None, (20.0, 36.0)),
    (1, 3, "center", 100, (0.0, 10.0)),           # clipped at 0 (not shifted)
    (95, 99, "center", 100, (89.0, 100.0)),       # clipped at the video end
    (120, 130, "center", 100, None),              # wholly past the end: no window
    (10, 10, "center", 12.3456, (2.0, 12.346)),   # rounded to the millisecond
])
def test_caption_window(start, end, anchor, duration, expected):
    assert caption_window(start, end, WindowSpec(anchor=anchor), duration) == expected


@pytest.mark.parametrize("windows,expected", [
    ([], []),
    ([(0, 16)], [(0, 16)]),
    ([(10, 26), (0, 16)], [(0, 26)]),             # overlap, given out of order
    ([(0, 16), (16, 32)], [(0, 32)]),             # touching: one unit
    ([(0, 16), (16.001, 32)], [(0, 16), (16.001, 32)]),
    ([(0, 16), (2, 5), (20, 30), (25, 28)], [(0, 16), (20, 30)]),  # contained windows
    ([(0, 10), (5, 20), (19, 40), (50, 60)], [(0, 40), (50, 60)]),  # a chain
])
def test_merge_windows(windows, expected):
    assert merge_windows(windows) == expected


def test_window_segments_merge_by_default():
    captions = [cap("a", 20, 24, 0), cap("a", 26, 30, 1), cap("a", 100, 104, 2), cap("b", 0, 2, 0),
                cap("a", None, None, 3, kind="query")]
    rows = window_segments(captions, {"a": 110.0, "b": None})
    assert [(r.video_id, r.start, r.end, r.fps, r.purpose) for r in rows] == [
        ("a", 14.0, 36.0, 5.0, "train"), ("a", 94.0, 110.0, 5.0, "train"), ("b", 0.0, 9.0, 5.0, "train")]
    assert rows[0].segment_id == "a:14.000-36.000@5"
    assert len({r.segment_id for r in rows}) == len(rows)


def test_window_segments_without_merging_keep_one_per_distinct_window():
    captions = [cap("a", 20, 24, 0), cap("a", 26, 30, 1), cap("a", 20, 24, 2)]  # the third repeats the first
    rows = window_segments(captions, {"a": None}, WindowSpec(window=8, fps=2, merge=False))
    assert [(r.start, r.end, r.fps) for r in rows] == [(18.0, 26.0, 2.0), (24.0, 32.0, 2.0)]


def test_window_spec_is_checked():
    for bad in (dict(window=0), dict(fps=-1), dict(anchor="end")):
        with pytest.raises(ValueError):
            WindowSpec(**bad)
