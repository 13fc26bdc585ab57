"""Evaluation never scores corrupted input: the features it reads from a store are checked where they are loaded
(eval.inference.features and eval.inference.queries: frames; eval.inference.session: stored caption
features read with text.source=store), once per video.

- A NaN or infinite value is an error naming the store, the video and the second (the frame's or window's start
  time; a caption's id and start), never a score: a NaN passed on silently turns a whole video into background.
- An all-zero row is finite and may be real (a black frame under an encoder that maps it to zeros), so it is
  not an error: `empty_rows` finds such rows, and temporal inference treats them as seconds that show nothing
  (eval.inference.temporal).
"""
from __future__ import annotations

import numpy as np

_BLOCK = 256  # rows checked at a time, so the check's boolean temporaries stay small for long videos


class CorruptFeaturesError(ValueError):
    """Features that are not finite (the message names the store, the video and the second)."""


def bad_rows(array: np.ndarray) -> np.ndarray:
    """Indices of the rows (first axis) holding a NaN or infinite value."""
    if array.dtype.kind not in "fc" or not len(array):
        return np.zeros(0, np.int64)
    flat = array.reshape(len(array), -1)
    found = [lo + np.flatnonzero(~np.isfinite(flat[lo:lo + _BLOCK]).all(axis=1))
             for lo in range(0, len(flat), _BLOCK)]
    return np.concatenate(found)


def check_frames(store_root: str, video_id: str, encoder: str, data: dict[str, np.ndarray]) -> None:
    """Refuse frame (or window) features [N, ...] of `data` holding NaN or inf; `data["times"]` are the rows'
    start times in seconds."""
    times = np.asarray(data["times"], np.float64)
    if not np.isfinite(times).all():
        row = int(np.flatnonzero(~np.isfinite(times))[0])
        raise CorruptFeaturesError(f"{store_root}: video {video_id!r}: {encoder} row {row} has no finite time; "
                                   f"the store is corrupt: re-extract the video")
    for name in sorted(k for k in data if k not in ("times", "valid")):
        rows = bad_rows(data[name])
        if len(rows):
            raise CorruptFeaturesError(
                f"{store_root}: video {video_id!r}: {encoder} {name} features are NaN or infinite at second "
                f"{times[rows[0]]:g} ({len(rows)} row(s) in all); the store is corrupt: re-extract the video")


def check_captions(store_root: str, video_id: str, encoder: str, caption_ids, starts,
                   arrays: dict[str, np.ndarray]) -> None:
    """Refuse caption features (rows aligned with `caption_ids` and their `starts`) holding NaN or inf."""
    for name in sorted(arrays):
        rows = bad_rows(arrays[name])
        if len(rows):
            start = starts[rows[0]]
            when = "" if start is None or not np.isfinite(start) else f" (starting at second {start:g})"
            raise CorruptFeaturesError(
                f"{store_root}: video {video_id!r}: {encoder} {name} features of caption {caption_ids[rows[0]]}"
                f"{when} are NaN or infinite ({len(rows)} caption(s) in all); the store is corrupt: re-extract "
                f"the video")


def empty_rows(*arrays: np.ndarray) -> np.ndarray:
    """bool [N]: rows that are all zeros in any of the arrays [N, ...] (a row that shows nothing)."""
    n = len(arrays[0])
    out = np.zeros(n, bool)
    for array in arrays:
        flat = array.reshape(n, -1)
        for lo in range(0, n, _BLOCK):
            out[lo:lo + _BLOCK] |= ~flat[lo:lo + _BLOCK].any(axis=1)
    return out
