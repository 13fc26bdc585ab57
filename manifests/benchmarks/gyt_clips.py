"""GroundingYouTube clips: the clip-level spatio-temporal grounding benchmark of the STG paper (Sec. 9.2, Table 7).

"Given an action step, we append the video segments before and after the steps with the same time length of the
action step to form the final video clip" (clips of 9 to 60 s; the action covers 33 % of each clip; the step is
given as the text query). Here, for each segment [s, e] (whole seconds, the frames at t = s .. e) of the segments
file (default `ground_seg_3to20.json`) with step length L = e - s:

- the clip is [s - L, e + L] (inclusive seconds): 3L seconds of time, frames s - L .. e + L (3L + 1 frames), the
  step's L + 1 frames in the middle. L is counted as e - s because the paper's 9..60 s range is exactly 3 x the
  3..20 s of `ground_seg_3to20.json` (which keeps 3 <= e - s <= 20); with L = e - s + 1 it would be 12..63 s.
- steps with L outside `steps` (default 3..20 s) are left out (`step_length`): none of `ground_seg_3to20.json`,
  so the rule only matters for another segments file (`ground_seg.json` gives the same 2,869 steps).
- a clip that would start before second 0 (`edges="drop"`, the default) is left out (`before_start`): cut at
  0 (`edges="clamp"`) it would be shorter than 9 s and its step more than a third of it, outside the paper's
  stated range and share. The annotation files hold no video durations: with a `durations` table {video: seconds}
  the same rule applies at the end (`past_end`; a frame at t exists when t < duration); without one the end is
  not checked here, and a clip reaching past a video's features is a missing item at inference time.
- segments with e < s or e == s have L <= 0 and fall under `step_length`.

The clip id is the segment's annotation id (decimal), unique within a video. On the real files
(`python -m manifests.benchmarks.gyt_clips --benchmark-dir ../shared/benchmarks --out clips.json`): 2,869 steps,
4 dropped before second 0, 2,865 clips (clamp: 2,869), against the paper's 2,895; see eval/README.md.

`build_clips` is what the gyt-clips scorer and inference both read (eval.scorers.gyt_clips.clip_plan), so they
agree on the list; `clip_report` gives the counts, lengths and foreground shares.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from manifests.benchmarks.common import as_dict, as_number, read_json
from manifests.benchmarks.gyt import GytBox, GytSegment, load_boxes, load_segments
from manifests.errors import AnnotationError

SUBDIR = "groundingyoutube"
SEGMENTS_FILE = "ground_seg_3to20.json"
BOXES_FILE = "box_anno.json"
EDGES = ("drop", "clamp")
STEP_RANGE = (3, 20)  # step lengths e - s in seconds: clips of 9..60 s (paper Sec. 9.2)
PAPER_CLIPS = 2895


@dataclass(frozen=True)
class GytClip:
    video_id: str
    clip_id: str      # the segment's annotation id, decimal
    start: int        # first second of the clip (inclusive)
    end: int          # last second of the clip (inclusive)
    step_start: int   # the step [s, e], inclusive, inside [start, end]
    step_end: int
    query: str        # the step's sentence: the text query

    @property
    def step_length(self) -> int:
        return self.step_end - self.step_start

    @property
    def length(self) -> int:
        """Duration in seconds (end - start; the clip has length + 1 frames at 1 fps)."""
        return self.end - self.start


@dataclass
class ClipSet:
    clips: list[GytClip]
    dropped: dict[str, list[str]] = field(default_factory=dict)  # reason -> ["<video>/<segment id>", ...]
    segments: int = 0


def last_second(duration: float) -> int:
    """The last whole second s with a frame at t = s < duration."""
    return math.ceil(duration) - 1


def build_clips(segments: dict[str, list[GytSegment]], edges: str = "drop",
                durations: dict[str, float] | None = None, steps: tuple[int, int] = STEP_RANGE) -> ClipSet:
    """Clips of every segment (file order within a video, videos in file order); see the module docstring."""
    if edges not in EDGES:
        raise ValueError(f"unknown edge rule {edges!r} (one of {EDGES})")
    lo, hi = steps
    out = ClipSet([], {"step_length": [], "before_start": [], "past_end": []})
    for vid, segs in segments.items():
        last = last_second(durations[vid]) if durations is not None and vid in durations else None
        for seg in segs:
            out.segments += 1
            key = f"{vid}/{seg.id}"
            length = seg.end - seg.start
            if length <= 0 or not lo <= length <= hi:
                out.dropped["step_length"].append(key)
                continue
            start, end = seg.start - length, seg.end + length
            if start < 0:
                if edges == "drop":
                    out.dropped["before_start"].append(key)
                    continue
                start = 0
            if last is not None and end > last:
                if edges == "drop" or seg.end > last:
                    out.dropped["past_end"].append(key)
                    continue
                end = last
            out.clips.append(GytClip(vid, str(seg.id), start, end, seg.start, seg.end, seg.sentence))
    return out


def _has_extent(box: tuple[float, float, float, float]) -> bool:
    return box[2] >= box[0] and box[3] >= box[1]


def clip_report(clip_set: ClipSet, boxes: dict[str, list[GytBox]] | None = None) -> dict:
    """Counts, clip lengths and the step's share of each clip: of its duration (L / (end - start), exactly 1/3
    for an unclamped clip) and of its frames ((L + 1) / (end - start + 1)); with boxes, how many clips have a
    boxed second of their step inside the step (`with_boxes`), one whose box is not inverted (`with_located_boxes`,
    the clips with a ground-truth tube) and the boxed frames."""
    clips = clip_set.clips
    n = len(clips)
    lengths = [c.length for c in clips]
    out = {"segments": clip_set.segments, "clips": n, "paper_clips": PAPER_CLIPS,
           "videos": len({c.video_id for c in clips}),
           "dropped": {k: len(v) for k, v in clip_set.dropped.items()},
           "dropped_items": {k: v for k, v in clip_set.dropped.items() if v},
           "clip_seconds": {"min": min(lengths), "max": max(lengths), "mean": sum(lengths) / n} if n else None,
           "step_seconds": dict(sorted(Counter(c.step_length for c in clips).items())),
           "foreground_share_of_duration": sum(c.step_length / c.length for c in clips) / n if n else None,
           "foreground_share_of_frames": sum((c.step_length + 1) / (c.length + 1) for c in clips) / n if n else None,
           "foreground_frames_pooled": (sum(c.step_length + 1 for c in clips) / sum(c.length + 1 for c in clips)
                                        if n else None)}
    if boxes is not None:
        with_boxes = located = frames = 0
        for c in clips:
            by_second = {b.second: b for b in boxes.get(c.video_id, [])}
            own = [by_second[t] for t in range(c.step_start, c.step_end + 1)
                   if t in by_second and by_second[t].step == c.query]
            with_boxes += bool(own)
            located += any(_has_extent(b.box) for b in own)
            frames += len(own)
        out.update(with_boxes=with_boxes, with_located_boxes=located, boxed_frames=frames)
    return out


def load_durations(path: str | os.PathLike) -> dict[str, float]:
    """JSON {video_id: duration in seconds} (positive numbers)."""
    data = as_dict(read_json(path), path, "top level")
    out = {vid: as_number(v, path, f"[{vid!r}]") for vid, v in data.items()}
    bad = [vid for vid, v in out.items() if not v > 0]
    if bad:
        raise AnnotationError(path, f"[{bad[0]!r}]", "a duration must be a positive number of seconds")
    return out


def resolve(benchmark_dir: str | os.PathLike, name: str | os.PathLike) -> Path:
    """An annotation file: an existing path as is, else DIR/groundingyoutube/<name>, else DIR/<name>."""
    candidates = [Path(name), Path(benchmark_dir) / SUBDIR / name, Path(benchmark_dir) / name]
    for path in candidates:
        if path.is_file():
            return path
    raise FileNotFoundError(f"annotation file {str(name)!r} not found (looked at "
                            f"{', '.join(map(str, candidates[1:]))})")


def parse_steps(text: str) -> tuple[int, int]:
    lo, sep, hi = text.partition("-")
    if not (sep and lo.isdigit() and hi.isdigit() and 0 < int(lo) <= int(hi)):
        raise argparse.ArgumentTypeError(f"expected MIN-MAX whole seconds with 0 < MIN <= MAX, got {text!r}")
    return int(lo), int(hi)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m manifests.benchmarks.gyt_clips",
                                description="Write the GroundingYouTube clip list of the gyt-clips task (STG paper "
                                            "Sec. 9.2, Table 7) with its counts.")
    p.add_argument("--benchmark-dir", required=True, type=Path,
                   help="benchmarks root (with groundingyoutube/) or the groundingyoutube folder itself")
    p.add_argument("--out", required=True, type=Path, help="JSON file to write: {rules, report, clips}")
    p.add_argument("--segments", default=SEGMENTS_FILE, help=f"segments file (default {SEGMENTS_FILE})")
    p.add_argument("--boxes", default=BOXES_FILE, help=f"boxes file for the report (default {BOXES_FILE})")
    p.add_argument("--edges", default="drop", choices=EDGES,
                   help="a clip that would start before second 0 (or end past --durations): drop it (default, "
                        "the paper's 9-60 s range) or clamp it")
    p.add_argument("--durations", help="JSON {video_id: seconds}: apply --edges at the videos' ends too")
    p.add_argument("--steps", default=STEP_RANGE, type=parse_steps,
                   help="step lengths e - s kept, MIN-MAX seconds (default 3-20: clips of 9-60 s)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        segments_path = resolve(args.benchmark_dir, args.segments)
        boxes_path = resolve(args.benchmark_dir, args.boxes)
        durations = load_durations(resolve(args.benchmark_dir, args.durations)) if args.durations else None
        clip_set = build_clips(load_segments(segments_path), args.edges, durations, args.steps)
        report = clip_report(clip_set, load_boxes(boxes_path))
    except (AnnotationError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    rules = {"segments_file": str(segments_path), "boxes_file": str(boxes_path), "edges": args.edges,
             "durations_file": args.durations, "step_seconds": list(args.steps),
             "clip": "[s - L, e + L] with L = e - s (inclusive seconds)"}
    clips = [{"video_id": c.video_id, "clip_id": c.clip_id, "start": c.start, "end": c.end,
              "step": [c.step_start, c.step_end], "query": c.query} for c in clip_set.clips]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"rules": rules, "report": report, "clips": clips}, indent=1) + "\n")
    shown = {k: v for k, v in report.items() if k not in ("dropped_items", "step_seconds")}
    for key, value in shown.items():
        print(f"{key:<30} {value}")
    print(f"wrote {args.out} ({len(clips)} clips)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
