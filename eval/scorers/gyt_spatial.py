"""GroundingYouTube spatial grounding (ground-truth segments given): pointing accuracy, IoU > 0.3 rate, mean
IoU, split by box size, per class.

Which frames and queries:
- paper protocol (default files box_anno.json, segments "from-boxes"): every released box is one frame, scored
  once. A query is a maximal run of consecutive annotated seconds with the same step name (segment ids 0, 1, ...
  per video in time order); its text is the step name.
- with a segments file (seg.json, ground_seg*.json): each segment with end >= start is a query (its sentence as
  written, e.g. "beat_egg"), and its frames are the boxed seconds in [start, end] inclusive; a second inside two
  overlapping segments is scored for each.
- reference protocol (default files id2xy_box.json + seg.json, the original README command): as the published
  script: segments with end <= start are skipped, the last second of each segment is scored on a padded/stale
  heatmap, the ground-truth mask is shifted one pixel in x, masks are raw values >= 1e-4, and a frame whose
  shifted mask is empty is a miss with IoU 0 and is left out of the size split.
Frame sizes default to id2wh_new.json (640x480, one video 480x640); `frame_size` sets one size for all.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from pathlib import Path

from eval.predictions import Predictions
from eval.scorers.common import (
    FrameSizes, ScoreError, check_missing_policy, frame_sizes, mask_options, resolve_file,
)
from eval.scorers.spatial import SpatialProtocol, SpatialQuery, ground_truth, score_spatial, summarise_spatial
from manifests.benchmarks.gyt import GytBox, load_boxes, load_segments

SUBDIR = "groundingyoutube"
FROM_BOXES = "from-boxes"
DEFAULT_FILES = {"paper": ("box_anno.json", FROM_BOXES), "reference": ("id2xy_box.json", "seg.json")}
DEFAULT_SIZES = "id2wh_new.json"


@dataclass(frozen=True)
class GytSpatialConfig:
    benchmark_dir: str  # a path (a str, so that pipeline.config can set it)
    protocol: str = "paper"
    boxes: str | None = None  # default per protocol (DEFAULT_FILES)
    segments: str | None = None  # a segments file or "from-boxes"; default per protocol
    sizes: str | None = None  # JSON {vid: [W, H]}; default id2wh_new.json
    frame_size: tuple[int, int] | None = None  # one (W, H) for every video, overrides `sizes`
    missing: str = "fail"
    mask_threshold: float | None = None
    mask_normalise: Literal["max", "none", None] = None  # None: per protocol


Plan = list[tuple[SpatialQuery, list[tuple[int, tuple]]]]  # queries with their annotated (second, box) frames


def _frames(boxes: list[GytBox]) -> list[tuple[int, tuple]]:
    return [(b.second, b.box) for b in boxes]


def _queries_from_boxes(vid: str, boxes: list[GytBox]) -> Plan:
    runs: list[list[GytBox]] = []
    for box in boxes:
        if box.step is None:
            raise ScoreError(f"video {vid}: the boxes have no step names; give a segments file")
        if runs and runs[-1][-1].step == box.step and runs[-1][-1].second + 1 == box.second:
            runs[-1].append(box)
        else:
            runs.append([box])
    return [(SpatialQuery(vid, str(i), run[0].second, run[-1].second, run[0].step), _frames(run))
            for i, run in enumerate(runs)]


def _queries_from_segments(boxes: dict[str, list[GytBox]], path: Path,
                           reference: bool) -> tuple[Plan, int]:
    out, skipped = [], 0
    for vid, segments in load_segments(path).items():
        by_second = {b.second: b for b in boxes.get(vid, [])}
        for seg in segments:
            if seg.end < seg.start or (reference and seg.end == seg.start):
                skipped += 1
                continue
            frames = [by_second[s] for s in range(seg.start, seg.end + 1) if s in by_second]
            out.append((SpatialQuery(vid, str(seg.id), seg.start, seg.end, seg.sentence), _frames(frames)))
    return out, skipped


def query_plan(cfg: GytSpatialConfig) -> tuple[Plan, dict]:
    """The queries a predictions file must answer, each with its annotated frames, and the files used.
    Inference and the baselines call this too, so that they write exactly the groups the scorer reads."""
    default_boxes, default_segments = DEFAULT_FILES[cfg.protocol]
    boxes_path = resolve_file(cfg.benchmark_dir, SUBDIR, cfg.boxes or default_boxes)
    segments = cfg.segments or default_segments
    boxes = load_boxes(boxes_path)
    info = {"boxes_file": str(boxes_path), "segments_file": segments, "segments_skipped": 0}
    if segments == FROM_BOXES:
        plan = [item for vid, vb in boxes.items() for item in _queries_from_boxes(vid, vb)]
    else:
        seg_path = resolve_file(cfg.benchmark_dir, SUBDIR, segments)
        plan, info["segments_skipped"] = _queries_from_segments(boxes, seg_path, cfg.protocol == "reference")
        info["segments_file"] = str(seg_path)
    return plan, info


def sizes_for(cfg) -> FrameSizes:
    """Each video's frame size (the sizes file, default id2wh_new.json), or `frame_size` for every video; a
    gyt, gyt-spatial or gyt-clips config."""
    sizes_file = None if cfg.frame_size else resolve_file(cfg.benchmark_dir, SUBDIR, cfg.sizes or DEFAULT_SIZES)
    return frame_sizes(sizes_file, cfg.frame_size, None)


def score(cfg: GytSpatialConfig, preds: Predictions) -> dict:
    check_missing_policy(cfg.missing)
    preds.require_task("gyt-spatial")
    plan, info = query_plan(cfg)
    sizes = sizes_for(cfg)
    gt = ground_truth(plan, sizes, info["boxes_file"])
    reference = cfg.protocol == "reference"
    protocol = SpatialProtocol(mask_options(cfg.protocol, cfg.mask_threshold, cfg.mask_normalise,
                                            preds.meta.metadata, preds.path),
                               reference_indexing=reference, empty_box_is_miss=reference)
    scores = score_spatial(gt, preds, protocol, cfg.missing)
    out = summarise_spatial(scores, gt, split_skips_empty=reference)
    out.update(info, task="gyt-spatial", protocol=cfg.protocol, frame_sizes=sizes.source,
               mask_threshold=protocol.mask.rule.threshold, mask_normalise=protocol.mask.rule.normalise,
               box_convention=protocol.mask.box_convention, queries=len(gt.queries))
    return out
