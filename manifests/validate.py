"""Check a manifest and report every problem with its table file and row (0-based), and the annotation
file/key the row came from when it has one.

    python -m manifests.validate MANIFEST [--json] [--no-files] [--tolerance 0.5] [--ignore CODE[,CODE]]

Exit status 0 when no problem is left after `--ignore`, 1 otherwise. With `--json` the last stdout line is
{"manifest", "ok", "problems", "ignored", "by_code", "items": [{"code", "file", "row", "message", "source"}]}.
Known defects of the real benchmarks show up here on purpose (e.g. GYT has 18 boxes with x2 < x1 and boxes
past the 640x480 frame): accept them with `--ignore inverted_box,box_outside_frame`.
The rules that `Manifest.write`/`Manifest.read` enforce (`manifests.integrity`) are reported here row by row too
(duplicate_id, unsafe_id, unknown_video, path_not_absolute, not_finite, bad_fps, out_of_range, ...).
Exit status 2 when an option is out of range.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator, Sequence

from manifests.errors import ManifestError
from manifests.integrity import (
    COORDINATE, FRAME_SIDE, MAX_SECONDS, ROTATIONS, SAMPLING_FPS, VIDEO_FPS, Bound, bounded_option, id_problem,
    is_under, shown,
)
from manifests.schema import MANIFEST_FILE, TABLE_FILES, Manifest, VideoRow

CODES = {
    "schema": "the manifest cannot be read (file, column or type does not match the schema)",
    "duplicate_id": "an id (video, segment, caption) occurs more than once, or two segments are one unit",
    "unsafe_id": "an id is not a safe name (absolute, '.'/'..'/empty component, backslash, control character, "
                 "too long)",
    "path_outside_video_dir": "a video path lies outside the video directory the manifest was built from",
    "video_missing": "the video file is not there",
    "video_unreadable": "the video file could not be probed",
    "bad_video_info": "probe fields are absent or not positive although no probe error is recorded",
    "path_not_absolute": "a video path is relative",
    "unknown_video": "a row refers to a video_id that is not in videos.parquet",
    "not_finite": "a time or coordinate is NaN or infinite",
    "negative_time": "a time is below 0",
    "inverted_time": "an end lies before its start (segments: end <= start)",
    "missing_time": "a caption other than a query has no start or end",
    "past_end": "a time lies past the end of the video (beyond the tolerance)",
    "bad_fps": f"a segment's sampling fps is outside {SAMPLING_FPS}",
    "out_of_range": f"a number is beyond its bound (times within {MAX_SECONDS:g} s, frame sides within "
                    f"{FRAME_SIDE}, box coordinates within {COORDINATE}, video fps within {VIDEO_FPS}, "
                    f"rotation one of {list(ROTATIONS)})",
    "empty_caption": "a caption's text is empty or blank",
    "inverted_box": "a box has x2 < x1 or y2 < y1",
    "box_outside_frame": "a box extends beyond its frame (x1 < 0, y1 < 0, x2 > frame_width or y2 > frame_height)",
    "no_frame_size": "a box of a probed video has no frame size",
}

TOLERANCE = Bound(0.0, 3_600.0)  # seconds past a video's end; an hour of slack would hide any real error
MAX_PRINT = Bound(0, 1_000_000)


@dataclass(frozen=True)
class Problem:
    code: str
    file: str  # the table file
    row: int | None  # 0-based row of that table
    message: str
    source: str | None = None  # annotation file and key the row came from

    def __str__(self) -> str:
        where = self.file if self.row is None else f"{self.file} row {self.row}"
        return f"{where}: [{self.code}] {self.message}" + (f" (from {self.source})" if self.source else "")


class _Checker:
    def __init__(self, manifest: Manifest, root: Path, check_files: bool, tolerance: float):
        self.m, self.root, self.check_files, self.tol = manifest, root, check_files, tolerance
        self.videos = {v.video_id: v for v in manifest.video_rows()}
        video_dir = manifest.args.get("video_dir")
        # recorded by manifests.build (absolute since the integrity rules; a relative one cannot be judged)
        self.video_dir = video_dir if isinstance(video_dir, str) and os.path.isabs(video_dir) else None

    def file(self, table: str) -> str:
        return str(self.root / TABLE_FILES[table])

    def run(self) -> list[Problem]:
        return [*self.videos_table(), *self.segments_table(), *self.captions_table(), *self.boxes_table()]

    def _duplicates(self, table: str, ids: list, what: str, skip: set[int] = frozenset()) -> Iterator[Problem]:
        first: dict = {}
        for row, ident in enumerate(ids):
            if ident in first and row not in skip:
                yield Problem("duplicate_id", self.file(table), row,
                              f"{what} {shown(ident)} already in row {first[ident]}")
            first.setdefault(ident, row)

    def _unsafe(self, table: str, row: int, ids: dict[str, str], source: str | None = None) -> Iterator[Problem]:
        for column, value in ids.items():
            problem = id_problem(value)
            if problem is not None:
                yield Problem("unsafe_id", self.file(table), row, f"{column} {shown(value)} is not a safe name: it "
                                                                  f"{problem}", source)

    def videos_table(self) -> Iterator[Problem]:
        rows = self.m.video_rows()
        f = self.file("videos")
        yield from self._duplicates("videos", [v.video_id for v in rows], "video_id")
        for row, v in enumerate(rows):
            yield from self._unsafe("videos", row, {"video_id": v.video_id})
            if not os.path.isabs(v.path):
                yield Problem("path_not_absolute", f, row, f"video {v.video_id!r}: path {v.path!r} is relative")
            elif self.video_dir is not None and not is_under(v.path, self.video_dir):
                yield Problem("path_outside_video_dir", f, row, f"video {shown(v.video_id)}: path {shown(v.path)} "
                                                                f"is outside the video directory {self.video_dir}")
            if v.probe_error is not None:
                code = "video_missing" if v.probe_error.startswith("missing:") else "video_unreadable"
                yield Problem(code, f, row, f"video {v.video_id!r}: {v.probe_error}")
            elif self.check_files and not os.path.exists(v.path):
                yield Problem("video_missing", f, row, f"video {v.video_id!r}: {v.path} no longer exists")
            elif not _probed(v):
                yield Problem("bad_video_info", f, row, f"video {v.video_id!r}: duration {v.duration}, "
                                                        f"size {v.width}x{v.height}, fps {v.fps}")
            elif beyond := _beyond(v):
                yield Problem("out_of_range", f, row, f"video {shown(v.video_id)}: {beyond}")

    def _video_checks(self, f: str, row: int, vid: str, times: dict[str, float | None],
                      source: str | None) -> Iterator[Problem]:
        """Reference, finiteness, sign, bound and video-end checks shared by the segment, caption and box
        tables."""
        video = self.videos.get(vid)
        if video is None:
            yield Problem("unknown_video", f, row, f"video_id {shown(vid)} is not in videos.parquet", source)
        past = []
        for name, t in times.items():
            if t is None:
                continue
            if not math.isfinite(t):
                yield Problem("not_finite", f, row, f"{name} is {t}", source)
            elif t < 0:
                yield Problem("negative_time", f, row, f"{name} {t:g} < 0", source)
            elif t > MAX_SECONDS:
                yield Problem("out_of_range", f, row, f"{name} {t:g} s is beyond {MAX_SECONDS:g} s", source)
            elif video is not None and video.duration is not None and t > video.duration + self.tol:
                past.append(f"{name} {t:g} s")
        if past:
            yield Problem("past_end", f, row, f"{' and '.join(past)} past the end of video {vid!r} "
                                              f"({video.duration:g} s)", source)

    def segments_table(self) -> Iterator[Problem]:
        rows, f = self.m.segment_rows(), self.file("segments")
        ids = [s.segment_id for s in rows]
        yield from self._duplicates("segments", ids, "segment_id")
        first_row: dict[str, int] = {}
        for row, sid in enumerate(ids):
            first_row.setdefault(sid, row)
        repeated = {row for row, sid in enumerate(ids) if first_row[sid] != row}  # reported as ids already
        yield from self._duplicates("segments", [(s.video_id, s.start, s.end, s.fps) for s in rows],
                                    "unit (video_id, start, end, fps)", skip=repeated)
        for row, s in enumerate(rows):
            yield from self._unsafe("segments", row, {"segment_id": s.segment_id, "video_id": s.video_id})
            yield from self._video_checks(f, row, s.video_id, {"start": s.start, "end": s.end}, None)
            if s.end is not None and s.end <= s.start:
                yield Problem("inverted_time", f, row, f"segment {s.segment_id!r}: end {s.end:g} <= start {s.start:g}")
            if not SAMPLING_FPS.holds(s.fps):
                yield Problem("bad_fps", f, row, f"segment {shown(s.segment_id)}: fps {s.fps} outside {SAMPLING_FPS}")

    def captions_table(self) -> Iterator[Problem]:
        rows, f = self.m.caption_rows(), self.file("captions")
        yield from self._duplicates("captions", [c.caption_id for c in rows], "caption_id")
        for row, c in enumerate(rows):
            yield from self._unsafe("captions", row, {"caption_id": c.caption_id, "video_id": c.video_id}, c.source)
            yield from self._video_checks(f, row, c.video_id, {"start": c.start, "end": c.end}, c.source)
            if not c.text.strip():
                yield Problem("empty_caption", f, row, f"caption {c.caption_id!r} has empty text", c.source)
            if c.kind != "query" and (c.start is None or c.end is None):
                yield Problem("missing_time", f, row, f"caption {c.caption_id!r} ({c.kind}) has no start/end",
                              c.source)
            if c.start is not None and c.end is not None and c.end < c.start:
                yield Problem("inverted_time", f, row, f"caption {c.caption_id!r}: end {c.end:g} < start "
                                                       f"{c.start:g}", c.source)

    def boxes_table(self) -> Iterator[Problem]:
        f = self.file("boxes")
        for row, b in enumerate(self.m.box_rows()):
            yield from self._unsafe("boxes", row, {"video_id": b.video_id}, b.source)
            yield from self._video_checks(f, row, b.video_id, {"time": b.time}, b.source)
            coords = {"x1": b.x1, "y1": b.y1, "x2": b.x2, "y2": b.y2}
            bad = [k for k, v in coords.items() if not math.isfinite(v)]
            if bad:
                yield Problem("not_finite", f, row, f"box coordinate(s) {bad} not finite", b.source)
                continue
            box = f"box ({b.x1:g}, {b.y1:g}, {b.x2:g}, {b.y2:g})"
            sides = [x for x in (b.frame_width, b.frame_height) if x is not None]
            if not all(COORDINATE.holds(v) for v in coords.values()) or not all(map(FRAME_SIDE.holds, sides)):
                yield Problem("out_of_range", f, row, f"{box} in a {b.frame_width}x{b.frame_height} frame: "
                                                      f"coordinates must lie in {COORDINATE}, sides in {FRAME_SIDE}",
                              b.source)
                continue
            if b.x2 < b.x1 or b.y2 < b.y1:
                yield Problem("inverted_box", f, row, f"{box} has x2 < x1 or y2 < y1", b.source)
            if b.frame_width is None or b.frame_height is None:
                video = self.videos.get(b.video_id)
                if video is not None and video.ok:
                    yield Problem("no_frame_size", f, row, f"{box} has no frame size", b.source)
            elif b.x1 < 0 or b.y1 < 0 or b.x2 > b.frame_width or b.y2 > b.frame_height:
                yield Problem("box_outside_frame", f, row,
                              f"{box} extends beyond its {b.frame_width}x{b.frame_height} frame", b.source)


def _probed(v: VideoRow) -> bool:
    return all(x is not None and x > 0 for x in (v.duration, v.width, v.height, v.fps))


def _beyond(v: VideoRow) -> str:
    """What of a probed video's description is beyond its bound ("" when nothing is)."""
    bad = [f"duration {v.duration:g} s > {MAX_SECONDS:g} s"] if v.duration > MAX_SECONDS else []
    bad += [f"{name} {x} outside {FRAME_SIDE}" for name, x in (("width", v.width), ("height", v.height))
            if not FRAME_SIDE.holds(x)]
    bad += [] if VIDEO_FPS.holds(v.fps) else [f"fps {v.fps:g} outside {VIDEO_FPS}"]
    bad += [] if v.rotation is None or v.rotation in ROTATIONS else [f"rotation {v.rotation} not in {list(ROTATIONS)}"]
    return ", ".join(bad)


def validate(path: str | os.PathLike, *, check_files: bool = True, tolerance: float = 0.5) -> list[Problem]:
    """Every problem of the manifest at `path` (an unreadable manifest gives one "schema" problem)."""
    root = Path(path).absolute()
    try:
        manifest = Manifest.read(root, check=False)  # report broken rules row by row instead of stopping
    except ManifestError as exc:
        return [Problem("schema", str(root / MANIFEST_FILE), None, str(exc))]
    return _Checker(manifest, root, check_files, tolerance).run()


def report(problems: Sequence[Problem], ignore: set[str], max_print: int) -> tuple[list[str], dict]:
    """Text lines (at most `max_print` per code) and the JSON report."""
    kept = [p for p in problems if p.code not in ignore]
    by_code = Counter(p.code for p in kept)
    lines, printed = [], Counter()
    for p in kept:
        printed[p.code] += 1
        if printed[p.code] <= max_print:
            lines.append(str(p))
    lines += [f"... and {n - max_print} more [{code}]" for code, n in by_code.items() if n > max_print]
    ignored = len(problems) - len(kept)
    if kept:
        lines.append(f"{len(kept)} problem(s): " + ", ".join(f"{c} {n}" for c, n in by_code.most_common()))
    else:
        lines.append("clean: no problems")
    if ignored:
        lines.append(f"({ignored} ignored: {', '.join(sorted(ignore))})")
    data = {"ok": not kept, "problems": len(kept), "ignored": ignored, "by_code": dict(by_code),
            "items": [asdict(p) for p in kept]}
    return lines, data


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m manifests.validate", description=__doc__.split("\n\n")[0])
    parser.add_argument("manifest", type=Path)
    parser.add_argument("--json", action="store_true", help="print a JSON report as the last line")
    parser.add_argument("--no-files", action="store_true", help="do not check that video files still exist")
    parser.add_argument("--tolerance", type=bounded_option(float, TOLERANCE), default=0.5,
                        help=f"seconds allowed past the video end, in {TOLERANCE}")
    parser.add_argument("--ignore", default="", help="comma-separated problem codes not to count: "
                                                     + ", ".join(CODES))
    parser.add_argument("--max-print", type=bounded_option(int, MAX_PRINT), default=20,
                        help=f"problems printed per code, in {MAX_PRINT}")
    args = parser.parse_args(argv)
    ignore = {c.strip() for c in args.ignore.split(",") if c.strip()}
    unknown = ignore - set(CODES)
    if unknown:
        parser.error(f"unknown problem code(s) {sorted(unknown)}; known: {', '.join(CODES)}")
    problems = validate(args.manifest, check_files=not args.no_files, tolerance=args.tolerance)
    lines, data = report(problems, ignore, args.max_print)
    print("\n".join(lines))
    if args.json:
        print(json.dumps({"manifest": str(args.manifest.absolute()), **data}))
    return 0 if data["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
