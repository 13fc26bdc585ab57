"""YouCook2-Interactions pointing game (CoMMA Sec. 4.1): per annotated frame, a hit when the predicted point
lies in the box (inclusive, on the raw box: .5 coordinates are kept); accuracy pooled over all frames.

Queries: each segment (video, a, b) of final_dataset_segments.pkl, matched to the YouCook2 segment with the same
start and end (its id is the segment id, its sentence the query). Frame id k (1-based at 1 fps) is second
k - 1, so a query covers seconds a - 1 .. b - 1 and its frames are the boxed ids a..b (inclusive).

Frame sizes (the space of the boxes): boxes were drawn on 640x360 frames for videos larger than that, else on
the original frame, except 7 videos with full-resolution boxes (manifests.benchmarks.yc_interactions). Without
the videos the default is 640x360 for every video (the README's centre-prior and uniform figures assume it).
A sizes file (JSON {vid: [W, H]}, each video's own size, e.g. from ffprobe) is mapped by that rule under the
paper protocol, and clamped to at most 640 wide and 360 high independently under the reference protocol, as the
published script does; `frame_size` sets one size for every video as given. The reference protocol also scores
the last frame of each segment on a padded/stale heatmap.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from eval.predictions import Predictions
from eval.scorers.common import (
    FrameSizes, ScoreError, check_missing_policy, frame_sizes, mask_options, resolve_file,
)
from eval.scorers.spatial import (
    SpatialGroundTruth, SpatialProtocol, SpatialQuery, ground_truth, score_spatial, summarise_spatial,
)
from manifests.benchmarks.yc_interactions import box_frame_size, load_boxes, load_segments
from manifests.benchmarks.youcook2 import load_youcook2

SUBDIR = "youcook2_interactions"
DEFAULT_SIZE = (640, 360)
REFERENCE_CLAMP = (640, 360)


@dataclass(frozen=True)
class YouCookConfig:
    benchmark_dir: str  # a path (a str, so that pipeline.config can set it)
    protocol: str = "paper"
    segments: str = "final_dataset_segments.pkl"
    boxes: str = "final_dataset_annotations.pkl"
    youcook2: str = "youcookii_annotations_trainval.json"
    sizes: str | None = None
    frame_size: tuple[int, int] | None = None
    missing: str = "fail"
    mask_threshold: float | None = None
    mask_normalise: Literal["max", "none", None] = None  # None: per protocol


def query_plan(cfg: YouCookConfig) -> tuple[list[tuple[SpatialQuery, list[tuple[int, tuple]]]], dict]:
    """Queries with their annotated frames [(second, box)]; shared with inference and the baselines."""
    paths = {name: resolve_file(cfg.benchmark_dir, SUBDIR, getattr(cfg, name))
             for name in ("segments", "boxes", "youcook2")}
    boxes = load_boxes(paths["boxes"])
    videos = load_youcook2(paths["youcook2"])
    plan = []
    for vid, a, b in load_segments(paths["segments"]):
        video = videos.get(vid)
        match = [s for s in (video.segments if video else ()) if (s.start, s.end) == (a, b)]
        if len(match) != 1:
            raise ScoreError(f"{paths['segments']}: segment ({vid}, {a}, {b}) matches {len(match)} segments of "
                             f"{paths['youcook2']} (need exactly one with the same start and end)")
        frames = [(k - 1, box) for k, box in boxes.get(vid, {}).items() if a <= k <= b]
        plan.append((SpatialQuery(vid, str(match[0].id), a - 1, b - 1, match[0].sentence), frames))
    return plan, {f"{name}_file": str(path) for name, path in paths.items()}


def sizes_for(cfg: YouCookConfig) -> FrameSizes:
    """Box-space frame size per video. A sizes file gives each video's own (W, H): the paper protocol applies the
    annotation rule to it, the reference protocol the script's clamp."""
    if cfg.sizes is None or cfg.frame_size is not None:
        return frame_sizes(None, cfg.frame_size, DEFAULT_SIZE)
    path = resolve_file(cfg.benchmark_dir, SUBDIR, cfg.sizes)
    if cfg.protocol == "reference":
        return frame_sizes(path, None, None, clamp=REFERENCE_CLAMP)
    table = frame_sizes(path, None, None).table
    return FrameSizes({vid: box_frame_size(vid, *wh) for vid, wh in table.items()}, None,
                      f"{path} with the annotation rule (640x360 for larger videos, 7 videos at full size)")


def score(cfg: YouCookConfig, preds: Predictions) -> dict:
    check_missing_policy(cfg.missing)
    preds.require_task("youcook")
    plan, info = query_plan(cfg)
    sizes = sizes_for(cfg)
    gt = ground_truth(plan, sizes, info["boxes_file"])
    reference = cfg.protocol == "reference"
    protocol = SpatialProtocol(mask_options(cfg.protocol, cfg.mask_threshold, cfg.mask_normalise,
                                            preds.meta.metadata, preds.path),
                               reference_indexing=reference, empty_box_is_miss=False)
    scores = score_spatial(gt, preds, protocol, cfg.missing)
    out = summarise_spatial(scores, gt, split_skips_empty=False)
    for key in ("per_class", "pointing_accuracy_class_mean"):  # a sentence per segment: per video says more
        out.pop(key)
    out["per_video"] = _per_video(scores.hit, gt)
    out.update(info, task="youcook", protocol=cfg.protocol, frame_sizes=sizes.source, queries=len(gt.queries))
    return out


def _per_video(hit: np.ndarray, gt: SpatialGroundTruth) -> dict:
    vids = np.array([gt.queries[i].video_id for i in gt.query_index.tolist()], dtype=object)
    out = {}
    for vid in sorted(set(vids.tolist())):
        sel = vids == vid
        out[vid] = {"frames": int(sel.sum()), "pointing_accuracy": 100.0 * float(hit[sel].mean())}
    return out
