"""The integrity rules of a manifest, defined once: safe ids, numeric bounds, unique ids.

`check_tables` applies them to whole columns (pyarrow compute, no Python object per row: a HowTo100M manifest
holds ~136M captions). `Manifest.write` and `Manifest.read` enforce it, so a manifest that breaks a rule is
neither written by a builder nor read for extraction. `manifests.validate` reports the same rules row by row
with the scalar helpers (`id_problem`, the `Bound`s), and the command line checks its options with the `Bound`s.

Rules a builder keeps "as written" (a caption ending before it starts, a box past its frame, a caption before 0)
are not refused here; `manifests.validate` reports them.
"""
from __future__ import annotations

import argparse
import math
import os
import re
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from manifests.errors import ManifestError


@dataclass(frozen=True)
class Bound:
    """A closed interval [lo, hi], or (lo, hi] with `lo_open`; NaN and infinities are never inside."""

    lo: float
    hi: float
    lo_open: bool = False

    def holds(self, value: float) -> bool:
        try:
            finite = math.isfinite(value)
        except OverflowError:  # an int beyond any float
            return False
        return finite and (value > self.lo if self.lo_open else value >= self.lo) and value <= self.hi

    def mask(self, column: pa.ChunkedArray) -> pa.ChunkedArray:
        """True where a value is outside the bound (NaN included), False where inside or null."""
        low = pc.greater(column, self.lo) if self.lo_open else pc.greater_equal(column, self.lo)
        inside = pc.and_(low, pc.less_equal(column, self.hi))
        return pc.fill_null(pc.invert(inside), False)

    def __str__(self) -> str:
        return f"{'(' if self.lo_open else '['}{self.lo:g}, {self.hi:g}]"


MAX_SECONDS = 86_400.0  # 24 h: longer than any supported video (YouTube stops uploads at 12 h), and a time given
#                         in milliseconds by mistake lands beyond it
SAMPLING_FPS = Bound(0.0, 120.0, lo_open=True)  # above the fastest common camera rate sampling only repeats
#                                                 frames, and ffmpeg's memory grows with it (1e6 fps took 21 GB)
WINDOW_SECONDS = Bound(0.0, 3_600.0, lo_open=True)  # caption windows last seconds (16 by default); an hour-long
#                                                      unit is a whole-video segment (--segments whole)
TIME = Bound(0.0, MAX_SECONDS)  # segment start/end and box times
SIGNED_TIME = Bound(-MAX_SECONDS, MAX_SECONDS)  # captions and boxes keep their sign as written; validate reports it
DURATION = Bound(0.0, MAX_SECONDS, lo_open=True)
FRAME_SIDE = Bound(1, 16_384)  # 16K; 8K is 7680 wide, and one RGB frame of 16384^2 is already 800 MB
COORDINATE = Bound(-16_384, 16_384)  # box pixels; beyond any allowed frame side they are nonsense, not a defect
VIDEO_FPS = Bound(0.0, 1_000.0)  # a stream's average rate (0 = unknown); high-speed cameras stop near 1000
PROBE_JOBS = Bound(1, 256)  # concurrent ffprobe processes; more only thrash the disk
ROTATIONS = (0, 90, 180, 270)
MAX_ID_CHARS = 1_024  # far above any dataset id or relative path; ids end up in paths, keys and log lines

# (pattern, reason): an id matching a pattern is not a safe name. One list serves both the scalar check
# (Python re) and the column check (RE2 via pyarrow); the syntax used is common to both.
_ID_RULES = (
    (r"^$", "is empty"),
    (r"^/", "is an absolute path"),
    (r"(?:^|/)\.\.?(?:/|$)", "has a '.' or '..' path component"),
    (r"//|/$", "has an empty path component"),
    (r"\\", "has a backslash (a path separator on Windows)"),
    (r"[\x00-\x1f\x7f-\x9f]", "has a control character"),
)
UNSAFE_ID_PATTERN = "|".join(f"(?:{p})" for p, _ in _ID_RULES)
_COMPILED_RULES = tuple((re.compile(p), reason) for p, reason in _ID_RULES)


def shown(value: object, limit: int = 80) -> str:
    """repr() of a value, cut for messages (an id may be megabytes long)."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}...({len(text)} chars)"


def id_problem(value: object) -> str | None:
    """Why `value` is not a safe id, or None when it is one.

    A safe id is a relative POSIX path of normal components: no absolute path, no "." or ".." or empty
    component, no backslash, no control character, at most MAX_ID_CHARS characters. So "-1okAudsnAc",
    "sub/clip" and "clip.mkv" are safe and `<root>/<id>.<ext>` never leaves `<root>`."""
    if not isinstance(value, str):
        return f"is not a string ({type(value).__name__})"
    if len(value) > MAX_ID_CHARS:
        return f"is {len(value)} characters long (at most {MAX_ID_CHARS})"
    for pattern, reason in _COMPILED_RULES:
        if pattern.search(value):
            return reason
    return None


def safe_id(value: object, what: str = "id") -> str:
    """`value` when it is a safe id (see `id_problem`); ValueError naming it otherwise."""
    problem = id_problem(value)
    if problem is not None:
        raise ValueError(f"{what} {shown(value)} is not a safe name: it {problem}")
    return value  # type: ignore[return-value]


def is_under(path: str | os.PathLike, root: str | os.PathLike) -> bool:
    """Whether `path` lies inside directory `root`, judged on the normalised absolute paths (symlinks that
    the user placed inside `root` are followed later on purpose: pointing at files is what they are for)."""
    p, r = os.path.abspath(path), os.path.abspath(root)
    return p != r and os.path.commonpath([p, r]) == r


def check_range(name: str, value: float, bound: Bound) -> float:
    """`value` when inside `bound`; ValueError naming the option otherwise."""
    if not bound.holds(value):
        raise ValueError(f"{name} must be in {bound}, got {value!r}")
    return value


def probe_problem(duration: float, width: int, height: int, fps: float, rotation: int) -> str:
    """What of a probe result lies beyond the bounds above ("" when nothing): such a video is recorded as
    unreadable rather than decoded (a 100000x100000 frame would not fit in memory)."""
    bad = [f"{name} {value!r} outside {bound}" for name, value, bound in (
        ("duration (s)", duration, DURATION), ("width", width, FRAME_SIDE), ("height", height, FRAME_SIDE),
        ("average fps", fps, VIDEO_FPS)) if not bound.holds(value)]
    if rotation not in ROTATIONS:
        bad.append(f"rotation {rotation!r} not one of {list(ROTATIONS)}")
    return f"implausible probe result: {', '.join(bad)}" if bad else ""


def bounded_option(kind: type, bound: Bound):
    """An argparse `type=` that parses with `kind` and accepts only values inside `bound` (argparse then
    prints `error: argument --x: ...` and exits with status 2)."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a {kind.__name__}: {text!r}") from None
        if not bound.holds(value):
            raise argparse.ArgumentTypeError(f"must be in {bound}, got {text}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


# ---- whole-table checks -----------------------------------------------------------------------------------

_MAX_ROWS_SHOWN = 5
# (table, column, bound, what it is): numeric columns and their bounds; nulls are checked by the schema
# Captions and boxes first: they name the annotation they came from, which is where a bad number starts.
_RANGES = (
    ("captions", "start", SIGNED_TIME, "start (s)"), ("captions", "end", SIGNED_TIME, "end (s)"),
    ("boxes", "time", SIGNED_TIME, "time (s)"), ("boxes", "frame_width", FRAME_SIDE, "frame width (px)"),
    ("boxes", "frame_height", FRAME_SIDE, "frame height (px)"),
    *(("boxes", c, COORDINATE, "box coordinate (px)") for c in ("x1", "y1", "x2", "y2")),
    ("videos", "duration", DURATION, "duration (s)"), ("videos", "width", FRAME_SIDE, "width (px)"),
    ("videos", "height", FRAME_SIDE, "height (px)"), ("videos", "fps", VIDEO_FPS, "average frame rate"),
    ("segments", "start", TIME, "start (s)"), ("segments", "end", TIME, "end (s)"),
    ("segments", "fps", SAMPLING_FPS, "sampling fps"),
)
_ID_COLUMNS = (("videos", "video_id"), ("segments", "segment_id"), ("segments", "video_id"),
               ("captions", "caption_id"), ("captions", "video_id"), ("boxes", "video_id"))
_UNIQUE = (("videos", ("video_id",)), ("segments", ("segment_id",)), ("captions", ("caption_id",)),
           ("segments", ("video_id", "start", "end", "fps")))


def _rows(mask: pa.ChunkedArray | pa.Array) -> np.ndarray:
    return np.flatnonzero(np.asarray(pc.fill_null(mask, False).to_numpy(zero_copy_only=False), dtype=bool))


def _row_list(rows: Sequence[int]) -> str:
    head = ", ".join(str(int(r)) for r in rows[:_MAX_ROWS_SHOWN])
    return head + (f" and {len(rows) - _MAX_ROWS_SHOWN} more" if len(rows) > _MAX_ROWS_SHOWN else "")


def _value(table: pa.Table, column: str, row: int) -> str:
    return shown(table.column(column)[int(row)].as_py())


def _source(table: pa.Table, row: int) -> str:
    if "source" not in table.column_names:
        return ""
    src = table.column("source")[int(row)].as_py()
    return f" (from {src})" if src else ""


def _range_errors(tables: Mapping[str, pa.Table | None], files: Mapping[str, str]) -> list[str]:
    out = []
    for name, column, bound, what in _RANGES:
        t = tables.get(name)
        if t is None or not t.num_rows:
            continue
        rows = _rows(bound.mask(t.column(column)))
        if len(rows):
            out.append(f"{files[name]}: row(s) {_row_list(rows)}: {column} {_value(t, column, rows[0])} outside "
                       f"{bound} ({what}){_source(t, rows[0])}")
    videos, segments = tables.get("videos"), tables.get("segments")
    if videos is not None and videos.num_rows:
        bad = pc.invert(pc.is_in(videos.column("rotation"), value_set=pa.array(ROTATIONS, pa.int16())))
        rows = _rows(pc.and_(bad, pc.is_valid(videos.column("rotation"))))
        if len(rows):
            out.append(f"{files['videos']}: row(s) {_row_list(rows)}: rotation {_value(videos, 'rotation', rows[0])}"
                       f" is not one of {list(ROTATIONS)}")
        rows = _rows(pc.invert(pc.starts_with(videos.column("path"), "/")))
        if len(rows):
            out.append(f"{files['videos']}: row(s) {_row_list(rows)}: path {_value(videos, 'path', rows[0])} is "
                       "not absolute")
    if segments is not None and segments.num_rows:
        rows = _rows(pc.less_equal(segments.column("end"), segments.column("start")))
        if len(rows):
            r = rows[0]
            out.append(f"{files['segments']}: row(s) {_row_list(rows)}: end {_value(segments, 'end', r)} <= start "
                       f"{_value(segments, 'start', r)}")
    return out


def _id_errors(tables: Mapping[str, pa.Table | None], files: Mapping[str, str]) -> list[str]:
    out = []
    for name, column in _ID_COLUMNS:
        t = tables.get(name)
        if t is None or not t.num_rows:
            continue
        col = t.column(column)
        bad = pc.or_(pc.match_substring_regex(col, UNSAFE_ID_PATTERN), pc.greater(pc.utf8_length(col), MAX_ID_CHARS))
        rows = _rows(bad)
        if len(rows):
            value = col[int(rows[0])].as_py()
            out.append(f"{files[name]}: row(s) {_row_list(rows)}: {column} {shown(value)} is not a safe name "
                       f"(it {id_problem(value)}){_source(t, rows[0])}")
    return out


def _unique_errors(tables: Mapping[str, pa.Table | None], files: Mapping[str, str]) -> list[str]:
    out = []
    for name, keys in _UNIQUE:
        t = tables.get(name)
        if t is None or t.num_rows < 2:
            continue
        if len(keys) == 1 and len(pc.unique(t.column(keys[0]))) == t.num_rows:  # the common case, fast
            continue
        rows = pa.array(np.arange(t.num_rows, dtype=np.int64))
        groups = t.select(list(keys)).append_column("_row", rows).group_by(list(keys)).aggregate(
            [("_row", "count"), ("_row", "list")])
        dup = groups.filter(pc.greater(groups.column("_row_count"), 1))
        if dup.num_rows:
            first = sorted(dup.column("_row_list")[0].as_py())
            what = keys[0] if len(keys) == 1 else f"unit ({', '.join(keys)})"
            value = ", ".join(_value(t, k, first[0]) for k in keys)
            out.append(f"{files[name]}: rows {_row_list(first)}: {what} {value} occurs {len(first)} times"
                       f"{_source(t, first[0])}" + (f" ({dup.num_rows - 1} more duplicated)" if dup.num_rows > 1
                                                    else ""))
    return out


def _reference_errors(tables: Mapping[str, pa.Table | None], files: Mapping[str, str]) -> list[str]:
    videos = tables.get("videos")
    known = videos.column("video_id") if videos is not None else pa.chunked_array([], pa.string())
    out = []
    for name in ("segments", "captions", "boxes"):
        t = tables.get(name)
        if t is None or not t.num_rows:
            continue
        rows = _rows(pc.invert(pc.is_in(t.column("video_id"), value_set=known.combine_chunks())))
        if len(rows):
            out.append(f"{files[name]}: row(s) {_row_list(rows)}: video_id {_value(t, 'video_id', rows[0])} is not "
                       f"in videos.parquet{_source(t, rows[0])}")
    return out


def table_errors(tables: Mapping[str, pa.Table | None], files: Mapping[str, str]) -> list[str]:
    """One message per broken rule (naming the file, the first rows and the value), for tables that already
    match the schema (`manifests.schema.conform`)."""
    return [*_id_errors(tables, files), *_unique_errors(tables, files), *_reference_errors(tables, files),
            *_range_errors(tables, files)]


def check_tables(tables: Mapping[str, pa.Table | None], files: Mapping[str, str], hint: str) -> None:
    """ManifestError, one line: the first broken rule, how many more, and `hint` (what happens or what to run)."""
    errors = table_errors(tables, files)
    if errors:
        more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
        raise ManifestError(f"{errors[0]}{more}; {hint}")
