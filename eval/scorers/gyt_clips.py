"""GroundingYouTube clip-level spatio-temporal grounding (STG paper Sec. 9.2, Table 7): IoU+Pointing and video
mAP@0.1..0.5 per clip, with its step as the one query.

The clips (`clip_plan`, also read by inference): `manifests.benchmarks.gyt_clips.build_clips` on the segments
file (default ground_seg_3to20.json): each step [s, e] with L = e - s in 3..20 s becomes the clip
[s - L, e + L]; a clip that would start before second 0 is left out. Clip id = the segment's annotation id.

Ground truth of a clip, as in the untrimmed `gyt` scorer restricted to one query: its annotated seconds are the
boxed seconds of [s, e] whose step is the query (box_anno.json); they form its tube when one of their boxes is not
inverted (else the clip counts in `clips_without_boxes` and has no tube). Known seconds: the annotated seconds and
the clip's seconds outside [s, e]; seconds of [s, e] without such a box are unknown, and so are the context
seconds where the same step is annotated again (inside another segment of that step, or boxed with it):
predicting the query there is not wrong.

Predictions: one `/spatial/<vid>/<clip id>` group per clip spanning the clip with the query, a heatmap for every
second and the per-second `foreground` scores; a second is predicted foreground when its score is >= the
threshold (the config's `threshold`, else the group's attr). Each maximal run of foreground seconds is a detected
tube scored by the mean foreground score over it, its mask at each second the thresholded upsampled heatmap.

Metrics (the definitions of eval.scorers.gyt, with one label):
- `iou_pointing` (percent): sum over clips of the annotated seconds predicted foreground whose pointing hits,
  over |annotated seconds or known seconds predicted foreground|, pooled over clips;
  `iou_pointing_accuracy` over annotated seconds only; `temporal_accuracy` = annotated seconds predicted
  foreground (percent).
- `map@t` for t in 0.1..0.5 and `map_mean` (tube IoU `tube_iou`, both variants as `map_voxel@t`, `map_act@t`):
  ACT's video AP per class (the step names), each clip its own video, mean over the classes with a tube;
  `map_pooled@t`: one class for all clips.
- frame level: `pointing_accuracy` (the heatmap's point in the box at every annotated second, whatever the
  foreground), `mean_iou` (mask/box IoU there);
- temporal, against [s, e] on the temporally known seconds: pooled `foreground_precision`, `foreground_recall`,
  `foreground_f1`, the mean per-clip temporal IoU `mean_tiou`, and `predicted_foreground_share` (mean share of a
  clip's seconds predicted foreground) beside `true_foreground_share` (about 0.38 of the frames, 1/3 of the time).
A clip without its group fails the run, or with `--missing miss` scores as all background (every denominator
keeps it).
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Literal

import numpy as np

from eval.metrics.boxes import range_area
from eval.metrics.spatiotemporal import IouPointingCounts, iou_pointing_counts
from eval.metrics.video_ap import IOU_VARIANTS, Detection, GtTube, video_map
from eval.predictions import Predictions, SpatialPrediction
from eval.scorers.common import (
    MissingPredictionsError, ScoreError, check_boxes, mask_options,
    resolve_file, warn_unscored,
)
from eval.scorers.gyt import SUBDIR, THRESHOLDS, check_settings
from eval.scorers.gyt_spatial import sizes_for
from eval.scorers.gyt_tubes import PredTube, gt_boxes, tube_stats
from manifests.benchmarks.gyt import load_boxes, load_segments
from manifests.benchmarks.gyt_clips import SEGMENTS_FILE, GytClip, build_clips


@dataclass(frozen=True)
class GytClipsConfig:
    benchmark_dir: str
    protocol: str = "paper"
    boxes: str = "box_anno.json"
    segments: str = SEGMENTS_FILE
    sizes: str | None = None  # JSON {vid: [W, H]}; default id2wh_new.json
    frame_size: tuple[int, int] | None = None
    missing: str = "fail"
    mask_threshold: float | None = None
    mask_normalise: Literal["max", "none", None] = None  # None: per protocol
    tube_iou: str = "voxel"  # "voxel" | "act"
    threshold: float | None = None  # foreground threshold; None: each group's `threshold` attribute


@dataclass(frozen=True)
class ClipTruth:
    clip: GytClip
    frame_seconds: np.ndarray  # int [m] annotated seconds of the step (boxed with the query), increasing
    frame_boxes: np.ndarray    # float [m, 4]
    located: np.ndarray        # int [k] those whose box is not inverted (the tube's seconds)
    unknown: np.ndarray        # bool [clip seconds] seconds that take part in no frame count
    same_step: np.ndarray      # bool [clip seconds] context seconds where the step is annotated again

    @property
    def key(self) -> str:
        return f"{self.clip.video_id}/{self.clip.clip_id}"


def _has_extent(box) -> bool:
    return box[2] >= box[0] and box[3] >= box[1]


def clip_plan(cfg: GytClipsConfig) -> tuple[list[ClipTruth], dict]:
    """The clips and their ground truth (what inference writes one group for, and the scorer reads)."""
    boxes_path = resolve_file(cfg.benchmark_dir, SUBDIR, cfg.boxes)
    segments_path = resolve_file(cfg.benchmark_dir, SUBDIR, cfg.segments)
    boxes = load_boxes(boxes_path)
    check_boxes(boxes_path, [(vid, b.second, b.box) for vid, bs in boxes.items() for b in bs])
    segments = load_segments(segments_path)
    clip_set = build_clips(segments)
    out = []
    for clip in clip_set.clips:
        by_second = {b.second: b for b in boxes.get(clip.video_id, [])}
        seconds = np.arange(clip.start, clip.end + 1)
        in_step = (seconds >= clip.step_start) & (seconds <= clip.step_end)
        frames = [t for t in range(clip.step_start, clip.step_end + 1)
                  if t in by_second and by_second[t].step == clip.query]
        same = np.array([t in by_second and by_second[t].step == clip.query for t in seconds.tolist()], bool)
        for seg in segments[clip.video_id]:
            if seg.sentence == clip.query and str(seg.id) != clip.clip_id:
                same |= (seconds >= seg.start) & (seconds <= seg.end)
        same &= ~in_step
        gt = np.isin(seconds, frames)
        out.append(ClipTruth(clip, np.array(frames, np.int64),
                             np.array([by_second[t].box for t in frames], np.float64).reshape(-1, 4),
                             np.array([t for t in frames if _has_extent(by_second[t].box)], np.int64),
                             (in_step & ~gt) | same, same))
    info = {"boxes_file": str(boxes_path), "segments_file": str(segments_path), "segments": clip_set.segments,
            "dropped": {k: len(v) for k, v in clip_set.dropped.items()}}
    return out, info


class _ClipSizes:
    """Frame sizes by clip key (tube_stats looks them up by the tube's video id, here the clip key)."""

    def __init__(self, sizes, video_of: dict[str, str]):
        self.sizes, self.video_of = sizes, video_of

    def of(self, key: str) -> tuple[int, int]:
        return self.sizes.of(self.video_of[key])


def foreground_runs(foreground: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) offsets of each maximal run of True."""
    runs, start = [], None
    for j, on in enumerate(np.append(np.asarray(foreground, bool), False).tolist()):
        if on and start is None:
            start = j
        elif not on and start is not None:
            runs.append((start, j - 1))
            start = None
    return runs


def _prediction(preds: Predictions, truth: ClipTruth) -> SpatialPrediction | None:
    clip = truth.clip
    sp = preds.spatial.get(clip.video_id, {}).get(clip.clip_id)
    if sp is None:
        return None
    if (sp.start, sp.end, sp.query) != (clip.start, clip.end, clip.query):
        raise ScoreError(f"{preds.path}: /spatial/{truth.key} covers seconds {sp.start}..{sp.end} with query "
                         f"{sp.query!r}, but the clip is {clip.start}..{clip.end} with {clip.query!r}")
    if sp.foreground is None:
        raise ScoreError(f"{preds.path}: /spatial/{truth.key} has no 'foreground' dataset (gyt-clips needs the "
                         "per-second scores of the query)")
    return sp


def _threshold(cfg: GytClipsConfig, preds: Predictions, sp: SpatialPrediction, key: str) -> float:
    if cfg.threshold is not None:
        return cfg.threshold
    if sp.threshold is None:
        raise ScoreError(f"{preds.path}: /spatial/{key} has no 'threshold' attribute; give threshold=T")
    return sp.threshold


def score(cfg: GytClipsConfig, preds: Predictions) -> dict:
    check_settings(cfg, preds, "gyt-clips")
    truths, info = clip_plan(cfg)
    sizes = sizes_for(cfg)
    mask = mask_options(cfg.protocol, cfg.mask_threshold, cfg.mask_normalise, preds.meta.metadata, preds.path)
    planned = {(t.clip.video_id, t.clip.clip_id) for t in truths}
    warn_unscored(preds.path, "/spatial group(s)",
                  [f"{v}/{s}" for v, groups in preds.spatial.items() for s in groups if (v, s) not in planned])
    warn_unscored(preds.path, "/points or /temporal group(s) (gyt-clips reads /spatial)",
                  [*(f"/points/{v}" for v in preds.points), *(f"/temporal/{v}" for v in preds.temporal)])
    found = {t.key: _prediction(preds, t) for t in truths}
    missing = [k for k, sp in found.items() if sp is None]
    if missing and cfg.missing == "fail":
        raise MissingPredictionsError("clips", missing)
    keyed = [t for t in truths if found[t.key] is not None]
    video_of = {t.key: t.clip.video_id for t in truths}
    boxes = {t.key: gt_boxes(t.frame_seconds, t.frame_boxes, sizes.of(t.clip.video_id), mask.box_convention)
             for t in truths}
    whole = [PredTube(t.key, t.clip.clip_id, t.clip.query, t.clip.start, t.clip.end, found[t.key], None)
             for t in keyed]
    stats = dict(zip([t.key for t in keyed], tube_stats(whole, boxes, _ClipSizes(sizes, video_of), mask)))
    acc = _Totals()
    for t in truths:
        sp = found[t.key]
        fg = np.zeros(t.clip.end - t.clip.start + 1, bool) if sp is None else \
            sp.foreground >= _threshold(cfg, preds, sp, t.key)
        acc.add(t, sp, fg, stats.get(t.key), range_area(boxes[t.key].ranges))
    out = {"task": "gyt-clips", "protocol": cfg.protocol, "clips": len(truths),
           "videos": len({t.clip.video_id for t in truths}), "frames": acc.counts.gt_frames,
           **acc.metrics(), "gt_tubes": len(acc.gt_tubes),
           "clips_without_boxes": sum(not len(t.located) for t in truths),
           "same_step_context_seconds": int(sum(t.same_step.sum() for t in truths)),
           "detections": len(acc.detections), "missing_clips": missing,
           "missing_videos": sorted({k.split("/")[0] for k in missing}), "tube_iou": cfg.tube_iou,
           "foreground_threshold": cfg.threshold, "frame_sizes": sizes.source, "mask_threshold": mask.rule.threshold,
           "mask_normalise": mask.rule.normalise, "box_convention": mask.box_convention, **info}
    out.update(map_keys(acc.detections, acc.gt_tubes, cfg.tube_iou))
    return out


class _Totals:
    """Counts pooled over clips."""

    def __init__(self):
        self.counts = IouPointingCounts(0.0, 0, 0, 0)
        self.detections: list[Detection] = []
        self.gt_tubes: list[GtTube] = []
        self.hits = self.iou_sum = 0.0
        self.tp = self.fp = self.fn = 0
        self.tious: list[float] = []
        self.shares: list[float] = []
        self.true_shares: list[float] = []

    def add(self, t: ClipTruth, sp: SpatialPrediction | None, fg: np.ndarray, st, box_area: np.ndarray) -> None:
        clip = t.clip
        n = clip.end - clip.start + 1
        gt = np.zeros(n, bool)
        gt[t.frame_seconds - clip.start] = True
        hit = st.hit if st is not None else np.zeros(n)
        self.counts = self.counts + iou_pointing_counts(gt, ~t.unknown, fg, gt, hit)
        offsets = t.frame_seconds - clip.start
        if st is not None:
            self.hits += float(hit[offsets].sum())
            inter = st.inter[offsets].astype(np.float64)
            union = st.mask_area[offsets] + box_area - inter
            self.iou_sum += float(np.divide(inter, union, out=np.zeros_like(inter), where=union > 0).sum())
        span = np.zeros(n, bool)
        span[clip.step_start - clip.start:clip.step_end - clip.start + 1] = True
        known = ~t.same_step
        tp, fp, fn = int((fg & span).sum()), int((fg & ~span & known).sum()), int((~fg & span).sum())
        self.tp, self.fp, self.fn = self.tp + tp, self.fp + fp, self.fn + fn
        self.tious.append(tp / (tp + fp + fn))
        self.shares.append(float(fg.mean()))
        self.true_shares.append(float(span.mean()))
        if len(t.located):
            pixels = dict(zip(t.frame_seconds.tolist(), box_area.tolist()))
            self.gt_tubes.append(GtTube(t.key, clip.query, clip.step_start, clip.step_end, t.located,
                                        np.array([pixels[s] for s in t.located.tolist()], np.int64)))
        if sp is None:
            return
        for a, b in foreground_runs(fg):
            self.detections.append(Detection(t.key, clip.query, float(sp.foreground[a:b + 1].mean()),
                                             clip.start + a, clip.start + b, st.mask_area[a:b + 1],
                                             st.inter[a:b + 1]))

    def metrics(self) -> dict:
        c, n = self.counts, len(self.tious)
        precision = self.tp / (self.tp + self.fp) if self.tp + self.fp else None
        recall = self.tp / (self.tp + self.fn) if self.tp + self.fn else None
        f1 = 2 * precision * recall / (precision + recall) if precision and recall else (
            0.0 if precision is not None and recall is not None else None)
        return {"iou_pointing": 100.0 * c.correct / c.union if c.union else None,
                "iou_pointing_accuracy": 100.0 * c.correct / c.gt_frames if c.gt_frames else None,
                "temporal_accuracy": 100.0 * c.label_correct / c.gt_frames if c.gt_frames else None,
                "pointing_accuracy": 100.0 * self.hits / c.gt_frames if c.gt_frames else None,
                "mean_iou": self.iou_sum / c.gt_frames if c.gt_frames else None,
                "foreground_precision": precision, "foreground_recall": recall, "foreground_f1": f1,
                "mean_tiou": sum(self.tious) / n if n else None,
                "predicted_foreground_share": sum(self.shares) / n if n else None,
                "true_foreground_share": sum(self.true_shares) / n if n else None}


def map_keys(detections: list[Detection], tubes: list[GtTube], chosen: str) -> dict:
    """mAP keys of both tube IoU variants (per step class, mean over classes) and the pooled one-class AP."""
    out: dict = {}
    per_class: dict[str, dict] = defaultdict(dict)
    for variant in IOU_VARIANTS:
        means, classes = video_map(detections, tubes, THRESHOLDS, variant)
        for th in THRESHOLDS:
            out[f"map_{variant}@{th}"] = means[th] if tubes else None
            if variant == chosen:
                out[f"map@{th}"] = out[f"map_{variant}@{th}"]
                for label, aps in classes.items():
                    per_class[label][f"ap@{th}"] = aps[th]
        out[f"map_{variant}_mean"] = float(np.mean([means[th] for th in THRESHOLDS])) if tubes else None
    pooled, _ = video_map([Detection(d.video_id, "", d.score, d.start, d.end, d.mask_area, d.inter)
                           for d in detections],
                          [GtTube(g.video_id, "", g.start, g.end, g.seconds, g.box_area) for g in tubes],
                          THRESHOLDS, chosen)
    for th in THRESHOLDS:
        out[f"map_pooled@{th}"] = pooled[th] if tubes else None
    out["map_mean"] = out[f"map_{chosen}_mean"]
    out["per_class"] = dict(per_class)
    return out
