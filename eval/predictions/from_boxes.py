"""Detector outputs (boxes with scores for text queries) -> a predictions file, so that GLIP, RegionCLIP (per-frame
boxes) and TubeDETR, STCAT (spatio-temporal tubes) are scored by the project's own scorers.

    python -m eval.predictions from-boxes --task {gyt,gyt-spatial,youcook} --boxes DETS.json --benchmark-dir DIR
        --out P [--protocol paper|reference] [--layout runs|coverage] [--min-score S] [--method NAME]
        [--gt-boxes F] [--segments F] [--pools F] [--sizes F | --frame-size WxH]

The detections file (JSON) holds, per video, per-frame detections and/or tubes:

    {"method": "GLIP",                                   optional; the predictions' `method` (else --method)
     "videos": {
       "<video_id>": {                                    a video listed was run (an empty list: nothing found)
         "size": [W, H],                                  optional: the frame size the boxes are in; they are
                                                          rescaled to the scorer's frame size of the video
         "detections": [                                  per-frame detectors (GLIP, RegionCLIP), any number
           {"second": 12, "query": "cut_onion", "box": [x1, y1, x2, y2], "score": 0.71}, ...],
         "tubes": [                                       spatio-temporal detectors (TubeDETR, STCAT)
           {"query": "cut_onion", "start": 10, "end": 12, "score": 0.9,
            "boxes": [[x1, y1, x2, y2], [...], [...]]}, ...]}}}   one box per second start..end (inclusive)

Second s is the frame at t = s (`ffmpeg -vf fps=1`, frame k counted from 1 is second k - 1; YouCook2-Interactions
frame id k is second k - 1). Boxes are pixels (x1 <= x2, y1 <= y2) of the frame the scorer uses (GYT:
id2wh_new.json; YouCook2-Interactions: the 640x360 box space), unless the video gives "size". A query is the text as
the annotation spells it (the scorer's query plan: the step name or sentence; for gyt a label of the video's pool in
vid2step.json, underscores included). A tube is the same as a detection of its query at each of its seconds, with
the tube's score.

Conversion (CVPR appendix 8.3, "GLIP, RegionCLIP baseline inference"): at each second and query the detection
with the highest score is the prediction (the first in file order on ties); its box is the region and its centre
the point. Detections scoring below `--min-score` are dropped first (default: none dropped).

- gyt-spatial, youcook: one `/points` group (points and boxes) per query of the scorer's query plan
  (`query_plan`) of a listed video; a second without a detection of the query gets the point (-1, -1) and the
  empty box [-1, -1, -1, -1]: it points at nothing and has no region (a miss). Videos not listed are not
  written (the scorer fails on them, or scores them as misses under `--missing miss`).
- gyt: all the pool's labels are the candidates ("we input all possible action description labels"): per second,
  the label of the best-scoring detection is predicted, and background when there is none ("if the model made
  no prediction"). `/temporal/<vid>` holds per second and label the best detection score (labels without one
  score below every detection) and a background column below every detection score; its seconds run to the
  last annotated or detected second. `--layout runs` (default, the paper's inference): one `/points` tube per
  maximal run of a predicted label (`eval.inference.temporal.label_runs`), with the label's best box at each
  second (the tube's score in the scorer is then the mean detection score). `--layout coverage`: one
  `/points` group per action label of the pool spanning every second of the video (a miss where the label has
  no detection): not the paper's inference, but the spatial input of `python -m eval.predictions merge`, which
  takes from it the boxes of the tubes another method's temporal predictions imply (MIL-NCE + RegionCLIP).

Boxes of an annotated video absent from the frame-size table are refused only when the video gives "size"
(rescaling needs the target size). Bad input (JSON not in this format, a non-finite or inverted box, a gyt
query outside the video's pool) is a `FromBoxesError` naming the file and the entry.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from eval.inference.temporal import label_runs
from eval.predictions.format import BACKGROUND, PredictionsMeta
from eval.predictions.writer import PredictionsWriter
from eval.scorers import gyt, gyt_spatial, youcook
from eval.scorers.common import FrameSizes, frame_sizes, resolve_file
from manifests.benchmarks.gyt import load_vid2step

TASKS = ("gyt", "gyt-spatial", "youcook")
LAYOUTS = ("runs", "coverage")
NO_POINT = (-1.0, -1.0)                # a second without detection: points at nothing ...
NO_BOX = (-1.0, -1.0, -1.0, -1.0)      # ... and has no region (pixel_ranges clips it to an empty range)
_TOP_KEYS, _VIDEO_KEYS = {"method", "videos"}, {"size", "detections", "tubes"}
_DET_KEYS, _TUBE_KEYS = {"second", "query", "box", "score"}, {"query", "start", "end", "score", "boxes"}


class FromBoxesError(ValueError):
    """The detections file (or its use with these annotations) is wrong; the message names the file and entry."""

    def __init__(self, path, where: str, problem: str):
        super().__init__(f"{path}: {where}: {problem}")


@dataclass(frozen=True)
class VideoDetections:
    size: tuple[float, float] | None
    best: dict[tuple[str, int], tuple[tuple[float, ...], float]]  # (query, second) -> (box, score)
    count: int  # detections read (a tube counts one per second)


@dataclass(frozen=True)
class Detections:
    path: str
    method: str | None
    videos: dict[str, VideoDetections]
    sha256: str


# ------------------------------------------------------------------------------------------- reading
def _int(path, where: str, value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise FromBoxesError(path, where, f"{what} must be a whole number >= 0, got {value!r}")
    return value


def _number(path, where: str, value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise FromBoxesError(path, where, f"{what} must be a finite number, got {value!r}")
    return float(value)


def _box(path, where: str, value) -> tuple[float, ...]:
    if not isinstance(value, list) or len(value) != 4:
        raise FromBoxesError(path, where, f"a box is [x1, y1, x2, y2], got {value!r}")
    box = tuple(_number(path, where, v, "a box coordinate") for v in value)
    if box[2] < box[0] or box[3] < box[1]:
        raise FromBoxesError(path, where, f"box {list(value)} needs x1 <= x2 and y1 <= y2")
    return box


def _query(path, where: str, value) -> str:
    if not isinstance(value, str) or not value:
        raise FromBoxesError(path, where, f"query must be a non-empty string, got {value!r}")
    return value


def _keys(path, where: str, entry, allowed: set[str], required: set[str]) -> dict:
    if not isinstance(entry, dict):
        raise FromBoxesError(path, where, f"expected an object, got {type(entry).__name__}")
    if set(entry) - allowed:
        raise FromBoxesError(path, where, f"unknown key(s) {sorted(set(entry) - allowed)} (allowed: {sorted(allowed)})")
    if required - set(entry):
        raise FromBoxesError(path, where, f"missing key(s) {sorted(required - set(entry))}")
    return entry


def _video(path, vid: str, entry, min_score: float | None) -> VideoDetections:
    where = f"videos[{vid!r}]"
    entry = _keys(path, where, entry, _VIDEO_KEYS, set())
    size = None
    if "size" in entry:
        raw = entry["size"]
        if not isinstance(raw, list) or len(raw) != 2:
            raise FromBoxesError(path, f"{where}['size']", f"expected [W, H], got {raw!r}")
        size = tuple(_number(path, f"{where}['size']", v, "a frame side") for v in raw)
        if min(size) <= 0:
            raise FromBoxesError(path, f"{where}['size']", f"frame sides must be > 0, got {raw!r}")
    items: list[tuple[str, int, tuple[float, ...], float]] = []
    for key in ("detections", "tubes"):
        if not isinstance(entry.get(key, []), list):
            raise FromBoxesError(path, f"{where}[{key!r}]", "expected a list")
    for i, det in enumerate(entry.get("detections", [])):
        at = f"{where}['detections'][{i}]"
        det = _keys(path, at, det, _DET_KEYS, _DET_KEYS)
        items.append((_query(path, at, det["query"]), _int(path, at, det["second"], "second"),
                      _box(path, at, det["box"]), _number(path, at, det["score"], "score")))
    for i, tube in enumerate(entry.get("tubes", [])):
        at = f"{where}['tubes'][{i}]"
        tube = _keys(path, at, tube, _TUBE_KEYS, _TUBE_KEYS)
        start, end = _int(path, at, tube["start"], "start"), _int(path, at, tube["end"], "end")
        if end < start:
            raise FromBoxesError(path, at, f"need start <= end, got {start}, {end}")
        boxes = tube["boxes"]
        if not isinstance(boxes, list) or len(boxes) != end - start + 1:
            raise FromBoxesError(path, at, f"'boxes' must hold one box per second {start}..{end} "
                                           f"({end - start + 1}), got "
                                           f"{len(boxes) if isinstance(boxes, list) else boxes!r}")
        query, score = _query(path, at, tube["query"]), _number(path, at, tube["score"], "score")
        items += [(query, start + j, _box(path, f"{at}['boxes'][{j}]", b), score) for j, b in enumerate(boxes)]
    best: dict[tuple[str, int], tuple[tuple[float, ...], float]] = {}
    for query, second, box, score in items:
        if min_score is not None and score < min_score:
            continue
        key = (query, second)
        if key not in best or score > best[key][1]:  # the first in file order on ties
            best[key] = (box, score)
    return VideoDetections(size, best, len(items))


def load_detections(path: str | os.PathLike, min_score: float | None = None) -> Detections:
    """Read and check a detections file; per video, the best detection of each (query, second)."""
    path = str(path)
    try:
        raw = Path(path).read_bytes()
        data = json.loads(raw)
    except OSError as exc:
        raise FromBoxesError(path, "file", f"cannot read ({exc.strerror or exc})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FromBoxesError(path, "file", f"not JSON ({exc})") from None
    data = _keys(path, "top level", data, _TOP_KEYS, {"videos"})
    method = data.get("method")
    if method is not None and (not isinstance(method, str) or not method):
        raise FromBoxesError(path, "['method']", f"expected a non-empty string, got {method!r}")
    if not isinstance(data["videos"], dict):
        raise FromBoxesError(path, "['videos']", "expected an object {video_id: {...}}")
    videos = {str(vid): _video(path, str(vid), entry, min_score) for vid, entry in data["videos"].items()}
    return Detections(path, method, videos, hashlib.sha256(raw).hexdigest())


# ---------------------------------------------------------------------------------------- converting
@dataclass(frozen=True)
class Options:
    task: str
    detections: str
    benchmark_dir: str
    out: Path
    protocol: str = "paper"
    layout: str = "runs"
    min_score: float | None = None
    method: str | None = None
    gt_boxes: str | None = None
    segments: str | None = None
    pools: str = "vid2step.json"
    sizes: str | None = None
    frame_size: tuple[int, int] | None = None


class _Scaled:
    """Boxes of one video in the scorer's frame: rescaled from the video's "size" when it gives one."""

    def __init__(self, dets: Detections, vid: str, sizes: FrameSizes):
        video = dets.videos[vid]
        self.best = video.best
        self.scale = np.ones(4)
        if video.size is not None:
            try:
                width, height = sizes.of(vid)
            except ValueError as exc:
                raise FromBoxesError(dets.path, f"videos[{vid!r}]['size']", f"cannot rescale: {exc}") from None
            sx, sy = width / video.size[0], height / video.size[1]
            self.scale = np.array([sx, sy, sx, sy])

    def at(self, query: str, seconds) -> tuple[np.ndarray, np.ndarray, int]:
        """(points [n, 2], boxes [n, 4], seconds without detection) of `query` at `seconds`."""
        boxes = np.array([np.array(self.best[(query, s)][0]) * self.scale if (query, s) in self.best else NO_BOX
                          for s in seconds], np.float64).reshape(-1, 4)
        found = np.array([(query, s) in self.best for s in seconds], bool)
        points = np.where(found[:, None], np.stack([boxes[:, [0, 2]].mean(1), boxes[:, [1, 3]].mean(1)], 1),
                          np.array(NO_POINT))
        return points.astype(np.float32), boxes.astype(np.float32), int((~found).sum())


@dataclass
class _Groups:
    """What the file will hold, gathered first so that the metadata can carry the counts."""
    temporal: list[tuple] = field(default_factory=list)  # add_temporal arguments
    points: list[tuple] = field(default_factory=list)    # (video, segment, start, end, query, points, boxes)


def _unused(dets: Detections, used: set[tuple[str, str, int]]) -> list[str]:
    return [f"{vid}/{q!r}@{s}s" for vid, video in dets.videos.items() for (q, s) in video.best
            if (vid, q, s) not in used]


def _spatial(opts: Options, dets: Detections, out: _Groups) -> dict:
    if opts.task == "gyt-spatial":
        cfg = gyt_spatial.GytSpatialConfig(opts.benchmark_dir, opts.protocol, opts.gt_boxes, opts.segments,
                                           opts.sizes, opts.frame_size)
        plan, info = gyt_spatial.query_plan(cfg)
        sizes = gyt_spatial.sizes_for(cfg)
    else:
        cfg = youcook.YouCookConfig(opts.benchmark_dir, opts.protocol, sizes=opts.sizes, frame_size=opts.frame_size,
                                    **{k: v for k, v in (("segments", opts.segments), ("boxes", opts.gt_boxes)) if v})
        plan, info = youcook.query_plan(cfg)
        sizes = youcook.sizes_for(cfg)
    used, counts, not_listed = set(), defaultdict(int), set()
    for q, frames in plan:
        if q.video_id not in dets.videos:
            not_listed.add(q.video_id)
            continue
        seconds = range(q.start, q.end + 1)
        points, boxes, undetected = _Scaled(dets, q.video_id, sizes).at(q.query, seconds)
        out.points.append((q.video_id, q.segment_id, q.start, q.end, q.query, points, boxes))
        used.update((q.video_id, q.query, s) for s in seconds)
        annotated = {s for s, _ in frames}
        counts["queries"] += 1
        counts["seconds"] += len(seconds)
        counts["seconds_without_detection"] += undetected
        counts["annotated_frames_without_detection"] += sum((q.query, s) not in dets.videos[q.video_id].best
                                                            for s in annotated)
    return {**info, **counts, "videos_not_listed": sorted(not_listed), "unused": _unused(dets, used)}


def _gyt_scores(best: dict, actions: list[str], n_sec: int) -> np.ndarray:
    """[n_sec, len(actions) + 1]: the best score of each action label per second, background last and below every
    detection, labels without detection lower still (so background is the first maximum of an empty second)."""
    lowest = min((score for _, score in best.values()), default=0.0)
    gap = max(1.0, abs(lowest))  # wide enough to survive float32 whatever the detector's scale
    scores = np.full((n_sec, len(actions) + 1), lowest - 2 * gap, np.float64)
    scores[:, -1] = lowest - gap
    for (query, second), (_, score) in best.items():
        scores[second, actions.index(query)] = score
    return scores.astype(np.float32)


def _gyt(opts: Options, dets: Detections, out: _Groups) -> dict:
    cfg = gyt.GytConfig(opts.benchmark_dir, opts.protocol,
                        **{k: v for k, v in (("boxes", opts.gt_boxes), ("segments", opts.segments)) if v})
    truths, info = gyt.video_truths(cfg)
    pools_path = resolve_file(opts.benchmark_dir, gyt.SUBDIR, opts.pools)
    pools = load_vid2step(pools_path)
    sizes_file = None if opts.frame_size else resolve_file(opts.benchmark_dir, gyt.SUBDIR,
                                                           opts.sizes or "id2wh_new.json")
    sizes = frame_sizes(sizes_file, opts.frame_size, None)
    used, counts, not_listed = set(), defaultdict(int), []
    for vid, truth in truths.items():
        if vid not in dets.videos:
            not_listed.append(vid)
            continue
        if vid not in pools:
            raise FromBoxesError(pools_path, vid, f"no label pool for video {vid!r} of {info['segments_file']}")
        actions = [label for label in pools[vid] if label != BACKGROUND]
        best = dets.videos[vid].best
        outside = sorted({q for q, _ in best} - set(actions))
        if outside:
            raise FromBoxesError(dets.path, f"videos[{vid!r}]", f"queries {outside[:5]} are not action labels of the "
                                 f"video's pool in {pools_path} ({actions}); spell them as the pool does")
        last = int(truth.frame_seconds.max()) + 1 if len(truth.frame_seconds) else 0
        n_sec = max([last, 1] + [s + 1 for _, s in best])
        labels = [*actions, BACKGROUND]
        scores = _gyt_scores(best, actions, n_sec)
        out.temporal.append((vid, labels, scores))
        scaled = _Scaled(dets, vid, sizes)
        if opts.layout == "runs":
            groups = label_runs(scores, labels)
        else:
            groups = [(label, 0, n_sec - 1) for label in actions]
        for i, (label, a, b) in enumerate(groups):
            points, boxes, undetected = scaled.at(label, range(a, b + 1))
            out.points.append((vid, str(i), a, b, label, points, boxes))
            counts["seconds_without_detection"] += undetected
        used.update((vid, q, s) for q, s in best)
        counts["videos"] += 1
        counts["tubes" if opts.layout == "runs" else "groups"] += len(groups)
        counts["seconds"] += n_sec
        counts["action_seconds"] += int((np.argmax(scores, axis=1) != len(actions)).sum())
    return {**info, "pools_file": str(pools_path), **counts, "videos_not_listed": not_listed,
            "unused": _unused(dets, used)}


def convert(opts: Options) -> dict:
    """Write the predictions file of `opts.task` from the detections; the summary (counts, files, unused)."""
    if opts.task not in TASKS:
        raise FromBoxesError(opts.out, "--task", f"from-boxes writes {TASKS}, not {opts.task!r}")
    if opts.layout not in LAYOUTS or (opts.layout == "coverage" and opts.task != "gyt"):
        raise FromBoxesError(opts.out, "--layout", f"{opts.layout!r}: 'coverage' is a gyt layout (the spatial input "
                                                   "of merge); the spatial tasks write the query plan")
    if opts.min_score is not None and not math.isfinite(opts.min_score):
        raise FromBoxesError(opts.detections, "--min-score", f"must be a finite number, got {opts.min_score}")
    dets = load_detections(opts.detections, opts.min_score)
    out = _Groups()
    summary = _gyt(opts, dets, out) if opts.task == "gyt" else _spatial(opts, dets, out)
    method = opts.method or dets.method or "detector"
    metadata = {"source": "python -m eval.predictions from-boxes", "detections_file": dets.path,
                "detections_sha256": dets.sha256, "layout": opts.layout if opts.task == "gyt" else None,
                "min_score": opts.min_score, "benchmark_dir": str(opts.benchmark_dir), "command": sys.argv,
                "rule": "best-scoring detection per second and query; point = its box centre; no detection = "
                        "point (-1, -1) and an empty box",
                **{k: v for k, v in summary.items() if k != "unused"}, "unused_detections": len(summary["unused"])}
    with PredictionsWriter(opts.out, PredictionsMeta(opts.task, method, opts.protocol, metadata)) as writer:
        for args in out.temporal:
            writer.add_temporal(*args)
        for vid, sid, start, end, query, points, boxes in out.points:
            writer.add_points(vid, sid, start, end, query, points=points, boxes=boxes)
    return {"method": method, **summary}
