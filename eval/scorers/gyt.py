"""GroundingYouTube untrimmed spatio-temporal grounding: IoU+Pointing game and video mAP@0.1..0.5.

Ground truth (default files box_anno.json + ground_seg_3to20.json, whose steps plus "background" are each video's
query pool in vid2step.json): every segment of the segments file with end >= start is an action instance; its
annotated seconds are the boxed seconds in [start, end] whose step name equals the segment's sentence (the frames
of the IoU+Pointing game). A segment with at least one such second whose box is not degenerate (x2 >= x1,
y2 >= y1; the released file has 18 inverted boxes) is a ground-truth tube (label = sentence), located at those
seconds; the others are counted (`gt_segments_without_boxes`) and take no part in AP. Seconds inside a segment
without a (non-degenerate) box are spatially unknown.

Predictions: `/temporal/<vid>` gives each second's label (first maximum; "background" = no action). Each
`/spatial/<vid>/<id>` (and/or `/points/<vid>/<id>`) group is one detected tube: its query is the class, its
[start, end] the extent, its score the mean of the class's /temporal column over the extent, its mask at each
second the thresholded upsampled heatmap. The paper's inference writes one group per maximal run of a predicted
action label; overlapping tubes are allowed. For the IoU+Pointing game, a second predicted as action L is
pointed by the best-scoring tube of class L covering it (first group on ties); none is a missing prediction.
See `eval.metrics.video_ap` for tube IoU and AP, `eval.metrics.spatiotemporal` for IoU+Pointing.

Protocols: paper = masks from max-normalised maps >= 0.01, inclusive ground-truth box pixels; reference = raw
maps >= 1e-4 and the ground-truth mask shifted one pixel in x, the conventions of the published spatial script
(no published script exists for this task). Both tube IoU variants are always reported (`map_voxel@t`,
`map_act@t`); `tube_iou` picks the one behind the main `map@t` keys.

Mask sweep (CVPR Table 12): `mask_threshold` and `mask_normalise` may each be a list; the heatmaps are then
upsampled once and masked by every (scale, threshold) pair, scale-major in the order given (`mask_sweep`). The
top-level keys are the first pair's; `thresholds` holds a row per pair with its mAP at every IoU (both tube IoU
variants, and per area group). The IoU+Pointing game does not depend on the mask (pointing is the map's maximum),
so it is not repeated per row. A threshold must be finite and in (0, 1].

Widespread / saturated (CVPR Table 15, Sec. 10.3: "widespread actions have an area larger than A = 60,000
pixels"): the area of an action is that of its ground-truth tube, the mean over the tube's boxed seconds of the
box's pixels in its video's frame (the ground-truth pixel set of the IoU, clipped to the frame); tubes with an
area > `area_split` are widespread, the others saturated (0: no split). `area_groups` gives each group's tubes,
their boxed seconds (`frames`), how many of those have a box larger than A themselves (`frames_over_area`, the
per-frame reading), and its mAP: the matching is the one over all tubes, a detection matched to a tube of the
other group is left out of this group's ranking, an unmatched one is a false alarm in both
(`eval.metrics.video_ap.grouped_video_map`).
"""
from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Literal

import numpy as np

from eval.metrics.boxes import range_area
from eval.metrics.spatiotemporal import IouPointingCounts, iou_pointing_counts
from eval.metrics.video_ap import IOU_VARIANTS, Detection, GtTube, grouped_video_map, video_map
from eval.predictions import BACKGROUND, Predictions
from eval.scorers.common import (
    MaskOptions, MissingPredictionsError, ScoreError, check_boxes, check_missing_policy, mask_options,
    resolve_file, warn_unscored,
)
from eval.scorers.gyt_spatial import sizes_for
from eval.scorers.gyt_tubes import PredTube, TubeStats, gt_boxes, tube_stats, tube_stats_sweep, video_tubes
from manifests.benchmarks.gyt import load_boxes, load_segments, load_vid2step

SUBDIR = "groundingyoutube"
THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5)
AREA_SPLIT = 60_000  # CVPR Sec. 10.3: "widespread actions have an area larger than A = 60,000 pixels"
AREA_GROUPS = ("widespread", "saturated")


@dataclass(frozen=True)
class GytConfig:
    benchmark_dir: str  # a path (a str, so that pipeline.config can set it)
    protocol: str = "paper"
    boxes: str = "box_anno.json"
    segments: str = "ground_seg_3to20.json"
    sizes: str | None = None  # JSON {vid: [W, H]}; default id2wh_new.json
    frame_size: tuple[int, int] | None = None
    missing: str = "fail"
    mask_threshold: float | tuple[float, ...] | None = None  # several: one pass, a `thresholds` row each
    mask_normalise: Literal["max", "none", None] | tuple[Literal["max", "none"], ...] = None  # None: per protocol
    tube_iou: str = "voxel"  # "voxel" | "act"
    pools: str | None = "vid2step.json"  # each video's label pool; None: labels are not checked against it
    area_split: int = AREA_SPLIT  # widespread tubes: mean box pixels > this (CVPR Table 15); 0: no split


@dataclass(frozen=True)
class VideoTruth:
    frame_seconds: np.ndarray  # int [m] annotated action seconds, increasing
    frame_labels: np.ndarray  # object [m]
    frame_boxes: np.ndarray  # float [m, 4]
    tubes: tuple[tuple[str, int, int, np.ndarray], ...]  # (label, start, end, seconds with a located box)
    spans: np.ndarray  # int [k, 2] inclusive spans of every segment (unknown seconds lie inside)
    without_boxes: int


def _has_extent(box: tuple[float, float, float, float]) -> bool:
    return box[2] >= box[0] and box[3] >= box[1]


def video_truths(cfg: GytConfig) -> tuple[dict[str, VideoTruth], dict]:
    boxes_path = resolve_file(cfg.benchmark_dir, SUBDIR, cfg.boxes)
    segments_path = resolve_file(cfg.benchmark_dir, SUBDIR, cfg.segments)
    boxes = load_boxes(boxes_path)
    check_boxes(boxes_path, [(vid, b.second, b.box) for vid, bs in boxes.items() for b in bs])
    out = {}
    for vid, segments in load_segments(segments_path).items():
        by_second = {b.second: b for b in boxes.get(vid, [])}
        frames, tubes, spans, without = {}, [], [], 0
        for seg in (s for s in segments if s.end >= s.start):
            spans.append((seg.start, seg.end))
            seconds = [t for t in range(seg.start, seg.end + 1)
                       if t in by_second and by_second[t].step == seg.sentence]
            frames.update({t: by_second[t] for t in seconds})
            located = [t for t in seconds if _has_extent(by_second[t].box)]
            if not located:
                without += 1
                continue
            tubes.append((seg.sentence, seg.start, seg.end, np.array(located, np.int64)))
        order = sorted(frames)
        out[vid] = VideoTruth(np.array(order, np.int64), np.array([frames[t].step for t in order], dtype=object),
                              np.array([frames[t].box for t in order], np.float64).reshape(-1, 4),
                              tuple(tubes), np.array(spans, np.int64).reshape(-1, 2), without)
    return out, {"boxes_file": str(boxes_path), "segments_file": str(segments_path)}


def _known(truth: VideoTruth, n_sec: int) -> tuple[np.ndarray, np.ndarray]:
    """(annotated action second, known second) over the n_sec seconds of a video."""
    gt_frame, covered = np.zeros(n_sec, bool), np.zeros(n_sec, bool)
    gt_frame[truth.frame_seconds] = True
    for start, end in truth.spans.tolist():
        covered[start:end + 1] = True
    return gt_frame, gt_frame | ~covered


def check_pools(cfg: GytConfig, truths: dict[str, VideoTruth], preds: Predictions, segments_file: str) -> None:
    """Refuse a label outside its video's pool (vid2step.json): in the annotation, or among the columns of the
    video's /temporal scores (a label the benchmark never asks about scores nothing, in silence)."""
    path = resolve_file(cfg.benchmark_dir, SUBDIR, cfg.pools)
    pools = load_vid2step(path)
    for vid, truth in truths.items():
        if vid not in pools:
            raise ScoreError(f"{path}: no label pool for video {vid!r} of {segments_file}")
        pool = set(pools[vid])
        outside = sorted(({label for label, *_ in truth.tubes} | set(truth.frame_labels.tolist())) - pool)
        if outside:
            raise ScoreError(f"{segments_file}: video {vid!r} has label(s) {outside[:5]} outside its pool in {path}")
        pred = preds.temporal.get(vid)
        outside = sorted(set(pred.labels) - pool) if pred is not None else []
        if outside:
            raise ScoreError(f"{preds.path}: /temporal/{vid} has label(s) {outside[:5]} outside the video's pool in "
                             f"{path} ({sorted(pool)})")


def _video_length(vid: str, truth: VideoTruth, preds: Predictions) -> int:
    pred = preds.temporal.get(vid)
    last = int(truth.frame_seconds.max()) + 1 if len(truth.frame_seconds) else 0
    if pred is None:
        return last
    if len(pred.scores) < last:
        raise ScoreError(f"{preds.path}: /temporal/{vid} has {len(pred.scores)} seconds but second {last - 1} is "
                         "annotated")
    return len(pred.scores)


def _predicted_labels(vid: str, n_sec: int, preds: Predictions) -> np.ndarray:
    pred = preds.temporal.get(vid)
    if pred is None:
        return np.full(n_sec, BACKGROUND, dtype=object)
    return np.array(pred.labels, dtype=object)[pred.predicted()]


def _tube_score(tube: PredTube, preds: Predictions) -> float:
    """Mean of the tube's class column of /temporal over its seconds."""
    pred = preds.temporal[tube.video_id]
    if tube.query not in pred.labels or tube.end >= len(pred.scores):
        raise ScoreError(f"{preds.path}: tube {tube.video_id}/{tube.segment_id} ({tube.query!r}, seconds "
                         f"{tube.start}..{tube.end}) is not within the labels and seconds of /temporal/{tube.video_id}")
    return float(pred.scores[tube.start:tube.end + 1, pred.labels.index(tube.query)].mean())


def _pointing(names: np.ndarray, tubes: list[PredTube], stats: list[TubeStats], scores: list[float]) \
        -> tuple[np.ndarray, np.ndarray]:
    """Per second: the hit of the best-scoring tube whose class is the predicted label (first tube on ties), and
    whether any tube of that class covers the second."""
    hit, covered = np.zeros(len(names)), np.zeros(len(names), bool)
    for i in sorted(range(len(tubes)), key=lambda i: (scores[i], -i)):  # the best is written last
        tube = tubes[i]
        seconds = np.arange(tube.start, tube.end + 1)
        own = names[seconds] == tube.query
        hit[seconds[own]], covered[seconds[own]] = stats[i].hit[own], True
    return hit, covered


def _video_outputs(vid: str, truth: VideoTruth, n_sec: int, names: np.ndarray, tubes: list[PredTube],
                   stats: list[TubeStats], scores: list[float], box_pixels: np.ndarray) \
        -> tuple[IouPointingCounts, list[Detection], list[GtTube], list[str]]:
    hit, covered = _pointing(names, tubes, stats, scores)
    action = names != BACKGROUND
    lost = [f"{vid}@{t}s:{names[t]}" for t in np.flatnonzero(action & ~covered).tolist()]
    gt_frame, known = _known(truth, n_sec)
    label_ok = np.zeros(n_sec, bool)
    label_ok[truth.frame_seconds] = names[truth.frame_seconds] == truth.frame_labels
    counts = iou_pointing_counts(gt_frame, known, action, label_ok, hit)
    pixels = dict(zip(truth.frame_seconds.tolist(), box_pixels.tolist()))
    gts = [GtTube(vid, label, start, end, secs, np.array([pixels[t] for t in secs.tolist()], np.int64))
           for label, start, end, secs in truth.tubes]
    dets = [Detection(vid, t.query, score, t.start, t.end, st.mask_area, st.inter)
            for t, st, score in zip(tubes, stats, scores)]
    return counts, dets, gts, lost


def check_settings(cfg, preds: Predictions, task: str) -> None:
    """What the gyt and gyt-clips scorers refuse before reading annotations: a bad missing policy or tube IoU,
    a file of another task."""
    check_missing_policy(cfg.missing)
    if cfg.tube_iou not in IOU_VARIANTS:
        raise ValueError(f"unknown tube IoU {cfg.tube_iou!r} (one of {IOU_VARIANTS})")
    preds.require_task(task)


def score(cfg: GytConfig, preds: Predictions) -> dict:
    check_settings(cfg, preds, "gyt")
    truths, info = video_truths(cfg)
    sizes = sizes_for(cfg)
    sweep = mask_sweep(cfg, metadata=preds.meta.metadata, path=preds.path)
    mask = sweep[0]
    area_split = _area_split(cfg.area_split)
    if cfg.pools is not None:
        check_pools(cfg, truths, preds, info["segments_file"])
    warn_unscored(preds.path, "predicted video(s)", preds.video_ids() - set(truths))
    missing = sorted(set(truths) - set(preds.temporal))
    if missing and cfg.missing == "fail":
        raise MissingPredictionsError("videos", missing)
    boxes = {vid: gt_boxes(t.frame_seconds, t.frame_boxes, sizes.of(vid), mask.box_convention)
             for vid, t in truths.items()}
    tubes = {vid: video_tubes(preds, vid) if vid in preds.temporal else [] for vid in truths}
    flat = [t for vid in truths for t in tubes[vid]]
    swept = [tube_stats(flat, boxes, sizes, mask)] if len(sweep) == 1 else \
        tube_stats_sweep(flat, boxes, sizes, [m.rule for m in sweep])
    all_stats = swept[0]
    flat_stats, flat_scores = iter(all_stats), []
    total, detections, gt_tubes, lost = IouPointingCounts(0.0, 0, 0, 0), [], [], []
    for vid, truth in truths.items():
        n_sec = _video_length(vid, truth, preds)
        stats = [next(flat_stats) for _ in tubes[vid]]
        scores = [_tube_score(t, preds) for t in tubes[vid]]
        flat_scores.extend(scores)
        counts, dets, gts, lost_v = _video_outputs(vid, truth, n_sec, _predicted_labels(vid, n_sec, preds),
                                                   tubes[vid], stats, scores, range_area(boxes[vid].ranges))
        total = total + counts
        detections.extend(dets)
        gt_tubes.extend(gts)
        lost.extend(lost_v)
    if lost and cfg.missing == "fail":
        raise MissingPredictionsError("regions (no tube of the predicted label covers the second)", lost)
    out = {"task": "gyt", "protocol": cfg.protocol, "frames": total.gt_frames, "videos": len(truths),
           "iou_pointing": 100.0 * total.correct / total.union if total.union else None,
           "iou_pointing_accuracy": 100.0 * total.correct / total.gt_frames if total.gt_frames else None,
           "temporal_accuracy": 100.0 * total.label_correct / total.gt_frames if total.gt_frames else None,
           "gt_tubes": len(gt_tubes), "gt_segments_without_boxes": sum(t.without_boxes for t in truths.values()),
           "detections": len(detections), "missing_videos": missing, "action_seconds_without_tube": len(lost),
           "tube_iou": cfg.tube_iou, "frame_sizes": sizes.source, "mask_threshold": mask.rule.threshold,
           "mask_normalise": mask.rule.normalise, "mask_rule": mask.named, "box_convention": mask.box_convention,
           **info}
    without_region = sum(not st.has_region for st in all_stats)
    out["tubes_without_region"] = without_region
    out.update(_map_keys(detections, gt_tubes, cfg.tube_iou, regions=without_region == 0))
    groups = area_groups(gt_tubes, area_split) if area_split else None
    if groups is not None:
        out.update(_area_keys(detections, gt_tubes, groups, area_split, out, cfg.tube_iou, without_region == 0))
    if len(sweep) > 1:
        out["thresholds"] = [_sweep_row(m, [Detection(t.video_id, t.query, sc, t.start, t.end, st.mask_area, st.inter)
                                            for t, st, sc in zip(flat, stats, flat_scores)],
                                        gt_tubes, groups, cfg.tube_iou, without_region == 0)
                             for m, stats in zip(sweep, swept)]
    return out


def _as_list(value) -> list:
    return list(value) if isinstance(value, (tuple, list)) else [value]


def mask_sweep(cfg: GytConfig, **rule_source) -> list[MaskOptions]:
    """The region-mask rules to score: every scale of `mask_normalise` with every threshold of `mask_threshold`
    (scale-major, in the order given; a setting left out takes the default, `mask_options` given `rule_source`).
    The first rule gives the top-level keys; more than one adds a `thresholds` row per rule. A threshold must be
    finite and in (0, 1]: a fraction of each map's maximum, or raw roll-out mass (which sums to 1 per clip) or a
    cosine."""
    thresholds, scales = _as_list(cfg.mask_threshold), _as_list(cfg.mask_normalise)
    for key, values in (("mask_threshold", thresholds), ("mask_normalise", scales)):
        if not values:
            raise ScoreError(f"{key}: an empty list")
        twice = [v for i, v in enumerate(values) if v in values[:i]]
        if twice:
            raise ScoreError(f"{key}: {twice[0]!r} is listed twice")
    for scale in scales:
        if scale not in (None, "max", "none"):
            raise ScoreError(f"mask_normalise: {scale!r} is not one of ['max', 'none']")
    for t in thresholds:
        if t is not None and not (isinstance(t, (int, float)) and not isinstance(t, bool) and math.isfinite(t)
                                  and 0 < t <= 1):
            raise ScoreError(f"mask_threshold: {t!r} is not a finite number in (0, 1]")
    return [mask_options(cfg.protocol, t, s, **rule_source) for s in scales for t in thresholds]


def _area_split(value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ScoreError(f"area_split: {value!r} is not a whole number of pixels >= 0 (0: no split)")
    return value


def tube_area(tube: GtTube) -> float:
    """An action's area (CVPR Table 15): the mean, over the tube's boxed seconds, of the box's pixels in its
    video's frame (the ground-truth pixel set of the IoU: clipped to the frame, protocol convention)."""
    return float(np.mean(tube.box_area))


def area_groups(tubes: list[GtTube], area_split: int) -> list[str]:
    """'widespread' for each tube whose area (`tube_area`) is larger than `area_split` pixels, else 'saturated'."""
    return [AREA_GROUPS[0] if tube_area(t) > area_split else AREA_GROUPS[1] for t in tubes]


def _means(means: dict[float, float] | None) -> dict:
    out = {f"map@{th}": None if means is None else means[th] for th in THRESHOLDS}
    out["map_mean"] = None if means is None else float(np.mean([means[th] for th in THRESHOLDS]))
    return out


def _group_maps(detections: list[Detection], tubes: list[GtTube], groups: list[str], variant: str,
                regions: bool) -> dict[str, tuple[dict, dict]]:
    """{group: (map keys, AP per class)} of widespread and saturated tubes (null maps without regions)."""
    result = grouped_video_map(detections, tubes, groups, THRESHOLDS, variant) if regions else {}
    return {g: (_means(result[g][0] if g in result else None), result[g][1] if g in result else {})
            for g in AREA_GROUPS}


def _area_keys(detections: list[Detection], tubes: list[GtTube], groups: list[str], area_split: int, out: dict,
               variant: str, regions: bool) -> dict:
    """`area_groups`: a row per group (widespread, saturated, total) with its tubes, their boxed seconds
    (`frames`), those whose own box is larger than the split (`frames_over_area`) and the chosen variant's mAP."""
    maps = _group_maps(detections, tubes, groups, variant, regions)
    rows = []
    for name in (*AREA_GROUPS, "total"):
        members = [t for t, g in zip(tubes, groups) if name in (g, "total")]
        row = {"group": name, "tubes": len(members), "frames": sum(len(t.seconds) for t in members),
               "frames_over_area": sum(int((t.box_area > area_split).sum()) for t in members)}
        if name == "total":
            row.update({k: out[k] for k in _means(None)})
        else:
            row.update(maps[name][0], per_class={label: {f"ap@{th}": aps[th] for th in THRESHOLDS}
                                                 for label, aps in maps[name][1].items()})
        rows.append(row)
    return {"area_split": area_split, "area_measure": "tube mean of box pixels", "area_groups": rows}


def _sweep_row(mask: MaskOptions, detections: list[Detection], tubes: list[GtTube], groups: list[str] | None,
               variant: str, regions: bool) -> dict:
    """One row of `thresholds`: the mask rule, the chosen variant's mAP (per group at IoU 0.4 as well, Table
    15's figure), and every figure nested (`voxel`, `act`, `widespread`, `saturated`)."""
    row: dict = {"mask_normalise": "max" if mask.rule.normalise else "none", "mask_threshold": mask.rule.threshold}
    nested = {v: _means(video_map(detections, tubes, THRESHOLDS, v)[0] if regions else None) for v in IOU_VARIANTS}
    row.update(nested[variant])
    if groups is not None:
        maps = _group_maps(detections, tubes, groups, variant, regions)
        row.update({f"{g}_map@0.4": maps[g][0]["map@0.4"] for g in AREA_GROUPS})
        nested.update({g: maps[g][0] for g in AREA_GROUPS})
    row.update(nested)
    return row


def _map_keys(detections: list[Detection], tubes: list[GtTube], chosen: str, regions: bool) -> dict:
    """mAP keys of both tube IoU variants (null when some detected second has no region)."""
    out: dict = {}
    per_class: dict[str, dict] = defaultdict(dict)
    for variant in IOU_VARIANTS:
        means, classes = video_map(detections, tubes, THRESHOLDS, variant) if regions else ({}, {})
        for th in THRESHOLDS:
            out[f"map_{variant}@{th}"] = means.get(th)
            if variant == chosen:
                out[f"map@{th}"] = means.get(th)
                for label, aps in classes.items():
                    per_class[label][f"ap@{th}"] = aps[th]
        values = [means[th] for th in THRESHOLDS] if regions else []
        out[f"map_{variant}_mean"] = float(np.mean(values)) if values else None
    out["map_mean"] = out[f"map_{chosen}_mean"]
    out["per_class"] = dict(per_class)
    return out


def uniform_temporal_accuracy(cfg: GytConfig, pools: str = "vid2step.json") -> float | None:
    """Expected `temporal_accuracy` (percent) of the uniform prior: at every second a label drawn uniformly from
    the video's pool (vid2step.json, "background" included). An annotated second is right with probability
    1 / pool size when its label is in the pool, else never; None without annotated seconds."""
    truths, _ = video_truths(cfg)
    pool_of = load_vid2step(resolve_file(cfg.benchmark_dir, SUBDIR, pools))
    expected, seconds = 0.0, 0
    for vid, truth in truths.items():
        pool = pool_of.get(vid, [])
        seconds += len(truth.frame_labels)
        expected += sum(1.0 / len(pool) for label in truth.frame_labels if label in pool)
    return 100.0 * expected / seconds if seconds else None
