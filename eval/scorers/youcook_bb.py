"""YouCook2-BoundingBox pointing game (CoMMA Sec. 4.1, Table 3: "localizing objects given a single object
keyword"; annotations: manifests.benchmarks.youcook_bb): the query is the ground-truth object label, and an
annotated frame is a hit when the predicted point lies in the object's box (inclusive, as for youcook);
accuracy pooled over all scored frames, also per label.

Query plan: one query per annotated object track of a segment (segment id "<segment>.<k>", k = the object's
position in the segment; two tracks with one label are two queries), over seconds start .. start + n - 1 where
n is the number of 1-fps frames annotated and start the segment's start (from the boxes file when it gives
`segment`, else from the YouCook2 annotations file, `segments`). Frame j of the track is second start + j.
Scored frames: annotated, object inside the frame and not occluded (the authors' evaluation counts only these;
`occluded=true` keeps occluded boxes). A track with no scored frame is left out (counted in
`queries_without_frames`). Frame size: each video's rwidth x rheight (the box space; heatmaps of the whole,
squashed frame are stretched to it), or one `frame_size` for every video.

Protocol: only `paper` (the definitions above). CoMMA released no YouCook2-BB evaluation script, so there is no
`reference` protocol to reproduce; it is refused.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Literal

from eval.predictions import Predictions
from eval.scorers.common import FrameSizes, ScoreError, check_missing_policy, frame_sizes, mask_options, resolve_file
from eval.scorers.spatial import SpatialProtocol, SpatialQuery, ground_truth, score_spatial, summarise_spatial
from manifests.benchmarks.youcook_bb import BBVideo, load_youcook_bb
from manifests.benchmarks.youcook2 import load_youcook2

SUBDIR = "youcook2_bb"
TASK = "youcook-bb"


@dataclass(frozen=True)
class YouCookBBConfig:
    benchmark_dir: str  # a path (a str, so that pipeline.config can set it)
    protocol: str = "paper"
    boxes: str = "yc2_bb_val_annotations.json"
    segments: str = "youcookii_annotations_trainval.json"  # segment times, where the boxes file lacks them
    occluded: bool = False          # also score occluded boxes (the authors' evaluation skips them)
    frame_size: tuple[int, int] | None = None
    missing: str = "fail"
    mask_threshold: float | None = None
    mask_normalise: Literal["max", "none", None] = None  # None: per protocol


def _whole_second(value: float, what: str) -> int:
    if not float(value).is_integer() or value < 0:
        raise ScoreError(f"{what}: segment start {value} is not a whole, non-negative second")
    return int(value)


def _starts(cfg: YouCookBBConfig, videos: dict[str, BBVideo]) -> tuple[dict, dict]:
    """{(video, segment id): start second} and the files used; the YouCook2 file is read only when needed."""
    starts, info = {}, {}
    lacking = [(v.video_id, s.id) for v in videos.values() for s in v.segments if s.span is None and s.objects]
    yc2 = {}
    if lacking:
        path = resolve_file(cfg.benchmark_dir, SUBDIR, cfg.segments)
        info["segments_file"] = str(path)
        yc2 = {(vid, str(s.id)): s.start for vid, video in load_youcook2(path).items() for s in video.segments}
        absent = [key for key in lacking if key not in yc2]
        if absent:
            shown = ", ".join(f"{v}/{s}" for v, s in absent[:5])
            raise ScoreError(f"{path}: no YouCook2 segment for {len(absent)} annotated segment(s) of {cfg.boxes} "
                             f"(video/segment id): {shown}")
    for video in videos.values():
        for seg in video.segments:
            if seg.objects:
                start = seg.span[0] if seg.span is not None else yc2[(video.video_id, seg.id)]
                starts[(video.video_id, seg.id)] = _whole_second(start, f"{video.video_id}/{seg.id}")
    return starts, info


def query_plan(cfg: YouCookBBConfig) -> tuple[list[tuple[SpatialQuery, list[tuple[int, tuple]]]], dict]:
    """Queries with their scored frames [(second, box)]; shared with inference and the baselines."""
    path = resolve_file(cfg.benchmark_dir, SUBDIR, cfg.boxes)
    videos = load_youcook_bb(path)
    starts, info = _starts(cfg, videos)
    plan, counts = [], Counter()
    for video in videos.values():
        for seg in video.segments:
            for k, obj in enumerate(seg.objects):
                start = starts[(video.video_id, seg.id)]
                frames = []
                for j, frame in enumerate(obj.frames):
                    skip = ("unannotated" if frame is None else "outside" if frame.outside
                            else "occluded" if frame.occluded and not cfg.occluded else None)
                    counts[f"frames_{skip or 'scored'}"] += 1
                    if skip is None:
                        frames.append((start + j, frame.box))
                if not frames:
                    counts["queries_without_frames"] += 1
                    continue
                query = SpatialQuery(video.video_id, f"{seg.id}.{k}", start, start + len(obj.frames) - 1, obj.label)
                plan.append((query, frames))
    if not plan:
        raise ScoreError(f"{path}: no object box to score (the public test file holds none: its annotations are "
                         f"kept for server-side evaluation; use yc2_bb_val_annotations.json)")
    info.update(boxes_file=str(path), **{k: int(v) for k, v in sorted(counts.items())})
    return plan, info


def sizes_for(cfg: YouCookBBConfig) -> FrameSizes:
    """The box space of each video (rwidth x rheight), or `frame_size` for every video."""
    if cfg.frame_size is not None:
        return frame_sizes(None, cfg.frame_size, None)
    path = resolve_file(cfg.benchmark_dir, SUBDIR, cfg.boxes)
    table = {vid: (v.width, v.height) for vid, v in load_youcook_bb(path).items()}
    return FrameSizes(table, None, f"rwidth x rheight of {path}")


def check_protocol(protocol: str) -> None:
    if protocol != "paper":
        raise ScoreError(f"{TASK} has only --protocol paper: CoMMA released no YouCook2-BB evaluation script to "
                         f"reproduce (got {protocol!r})")


def score(cfg: YouCookBBConfig, preds: Predictions) -> dict:
    check_missing_policy(cfg.missing)
    check_protocol(cfg.protocol)
    preds.require_task(TASK)
    plan, info = query_plan(cfg)
    sizes = sizes_for(cfg)
    gt = ground_truth(plan, sizes, info["boxes_file"])
    if isinstance(cfg.mask_threshold, tuple) or isinstance(cfg.mask_normalise, tuple):
        raise ScoreError(f"{TASK} takes one mask threshold and one normalisation, not a list to sweep")
    mask = mask_options(cfg.protocol, cfg.mask_threshold, cfg.mask_normalise, preds.meta.metadata, preds.path)
    protocol = SpatialProtocol(mask, reference_indexing=False, empty_box_is_miss=False)
    scores = score_spatial(gt, preds, protocol, cfg.missing)
    out = summarise_spatial(scores, gt, split_skips_empty=False)  # per_class: per object label
    out.update(info, task=TASK, protocol=cfg.protocol, frame_sizes=sizes.source, queries=len(gt.queries),
               occluded_scored=cfg.occluded)
    return out
