"""YouCook2-Interactions (CoMMA) pickles, read through the restricted unpickler.

- `final_dataset_segments.pkl`: a set of `(video_id, start_sec, end_sec)` YouCook2 validation segments.
- `final_dataset_annotations.pkl`: `{video_id: {frame_id: (xtl, ytl, xbr, ybr)}}`.

Time: `frame_id` k is a 1-based index of frames decoded at 1 fps: frame k is the frame at t = k - 1 seconds
(`frame_time`). The reference evaluation scores frames k = start..end (inclusive) of each segment.

Coordinates: boxes were drawn on frames resized to 640x360 when the video is larger than 640x360 in both
dimensions, else on the original frame; 7 videos (`ORIGINAL_RESOLUTION_VIDEOS`) carry original-resolution
boxes regardless. `box_frame_size` applies that rule.
"""
from __future__ import annotations

import math
import os

from manifests.errors import AnnotationError
from manifests.safe_pickle import safe_load

ANNOTATION_FRAME_SIZE = (640, 360)  # (W, H) the annotators saw for videos larger than this
ORIGINAL_RESOLUTION_VIDEOS = frozenset({
    "WYAFPvlDB_A", "30Q8k57Kbz4",  # about 1920x1080
    "oJZUxU9szWA", "vU2lND4YQjM", "FzhJGCaaYVs", "1vJp-jaIaeE",  # about 1280x720
    "4Y8vVGsv4JE",  # about 854x480
})


def frame_time(frame_id: int) -> float:
    """Seconds of the frame with 1-based id `frame_id` at 1 fps."""
    return float(frame_id - 1)


def box_frame_size(video_id: str, width: int, height: int) -> tuple[int, int]:
    """(W, H) of the frame a video's boxes are drawn in, given the video's displayed size."""
    if video_id in ORIGINAL_RESOLUTION_VIDEOS:
        return (width, height)
    w, h = ANNOTATION_FRAME_SIZE
    return (w, h) if width > w and height > h else (width, height)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _finite(v: int | float) -> bool:
    try:
        return math.isfinite(v)
    except OverflowError:  # an int beyond any float
        return False


def load_segments(path: str | os.PathLike) -> list[tuple[str, int, int]]:
    """The evaluated segments `(video_id, start_sec, end_sec)`, sorted."""
    data = safe_load(path)
    if not isinstance(data, (set, frozenset, list, tuple)):
        raise AnnotationError(path, "top level", f"expected a set of (video_id, start, end), got {type(data).__name__}")
    out = set()
    for item in data:
        ok = (isinstance(item, tuple) and len(item) == 3 and isinstance(item[0], str)
              and _is_int(item[1]) and _is_int(item[2]))
        if not ok:
            raise AnnotationError(path, f"entry {item!r}", "expected a tuple (video_id: str, start: int, end: int)")
        if item in out:  # a list may repeat a segment; it would be evaluated twice
            raise AnnotationError(path, f"entry {item!r}", "listed twice")
        out.add(item)
    return sorted(out)


def load_boxes(path: str | os.PathLike) -> dict[str, dict[int, tuple[float, float, float, float]]]:
    """`{video_id: {frame_id: (x1, y1, x2, y2)}}` as floats; frame_id is 1-based (see `frame_time`).
    Videos with no boxes are kept (one has none in the released file)."""
    data = safe_load(path)
    if not isinstance(data, dict):
        raise AnnotationError(path, "top level", f"expected a dict of videos, got {type(data).__name__}")
    out: dict[str, dict[int, tuple[float, float, float, float]]] = {}
    for vid, frames in data.items():
        if not isinstance(vid, str) or not isinstance(frames, dict):
            raise AnnotationError(path, f"[{vid!r}]", "expected video_id (str) -> {frame_id: box}")
        boxes = {}
        for frame_id, box in frames.items():
            where = f"[{vid!r}][{frame_id!r}]"
            if not _is_int(frame_id) or frame_id < 1:
                raise AnnotationError(path, where, "frame_id must be an integer >= 1 (1-based at 1 fps)")
            numeric = isinstance(box, (tuple, list)) and len(box) == 4 and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and _finite(v) for v in box)
            if not numeric:
                raise AnnotationError(path, where, f"expected a box (xtl, ytl, xbr, ybr) of finite numbers, "
                                                   f"got {box!r}")
            boxes[frame_id] = tuple(float(v) for v in box)
        out[vid] = dict(sorted(boxes.items()))
    return out
