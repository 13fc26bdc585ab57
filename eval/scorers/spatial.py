"""Per-frame spatial scoring shared by `gyt-spatial` and `youcook`: the ground truth is a set of queries
(video, segment, seconds, text) and of annotated frames (second, box) belonging to them; the predictions give,
per query, heatmaps (`/spatial`) and/or points (`/points`).

Per frame: the pointing hit (a 0/1 value, or its expectation for the uniform prior) and, when the method gives
a region (a heatmap mask, a predicted box, or the whole frame for the uniform prior), the mask/box IoU.

Reference indexing (`--protocol reference`): the published scripts decode seconds start..end-1 of a segment,
zero-pad to clips of 16 frames and score the j-th annotated key (second start + j) on heatmap j, so the last
second (end) lands on a padded frame, or, when end - start is a multiple of 16, past the padded clips where the
previous key's point and mask are reused. Points have no such padding and are read at second - start.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from eval.metrics.boxes import (
    iou_from_counts, pixel_ranges, points_in_boxes, range_area, range_intersection, uniform_expected_hit,
)
from eval.metrics.heatmaps import heatmap_stats
from eval.predictions import PointPrediction, Predictions, SpatialPrediction
from eval.scorers.common import (
    LARGE_BOX_PIXELS, MaskOptions, MissingPredictionsError, ScoreError, check_boxes, warn_unscored,
)

REFERENCE_CLIP = 16  # frames per clip of the published loaders (zero padding is to a multiple of this)


@dataclass(frozen=True)
class SpatialQuery:
    """One localisation request: the predictions file must hold a group /spatial|points/<video_id>/<segment_id>
    with these attrs."""

    video_id: str
    segment_id: str
    start: int
    end: int
    query: str


@dataclass(frozen=True)
class SpatialGroundTruth:
    queries: tuple[SpatialQuery, ...]
    query_index: np.ndarray  # int [n] the query of each annotated frame
    seconds: np.ndarray  # int [n]
    boxes: np.ndarray  # float [n, 4] (x1, y1, x2, y2) pixels
    sizes: np.ndarray  # int [n, 2] (W, H) of the frame
    classes: np.ndarray  # object [n] class name for per-class breakdowns


@dataclass(frozen=True)
class SpatialProtocol:
    mask: MaskOptions
    reference_indexing: bool  # score the last second on a padded/stale heatmap (published scripts)
    empty_box_is_miss: bool  # published GYT script: an empty ground-truth mask is a miss without IoU


@dataclass(frozen=True)
class SpatialScores:
    hit: np.ndarray  # float [n] in [0, 1]
    iou: np.ndarray  # float [n]; NaN where the method gives no region
    gt_pixels: np.ndarray  # int [n] ground-truth mask pixels (convention of the protocol)
    missing: tuple[SpatialQuery, ...]


def ground_truth(plan: list[tuple[SpatialQuery, list[tuple[int, tuple]]]], sizes,
                 boxes_file: str = "the boxes file") -> SpatialGroundTruth:
    """Frame arrays of a query plan [(query, [(second, box), ...])]; the class of a frame is its query text.
    A box that is not finite is refused, naming `boxes_file`, the video and the second."""
    rows = [(qi, second, box, sizes.of(q.video_id), q.query)
            for qi, (q, frames) in enumerate(plan) for second, box in frames]
    check_boxes(boxes_file, [(plan[qi][0].video_id, second, box) for qi, second, box, *_ in rows])
    return SpatialGroundTruth(
        queries=tuple(q for q, _ in plan),
        query_index=np.array([r[0] for r in rows], np.int64),
        seconds=np.array([r[1] for r in rows], np.int64),
        boxes=np.array([r[2] for r in rows], np.float64).reshape(-1, 4),
        sizes=np.array([r[3] for r in rows], np.int64).reshape(-1, 2),
        classes=np.array([r[4] for r in rows], dtype=object),
    )


def _check_group(pred: SpatialPrediction | PointPrediction, q: SpatialQuery, path: str, kind: str) -> None:
    if (pred.start, pred.end) != (q.start, q.end) or pred.query != q.query:
        raise ScoreError(f"{path}: /{kind}/{q.video_id}/{q.segment_id} covers seconds {pred.start}..{pred.end} for "
                         f"{pred.query!r}, but the annotation asks for {q.start}..{q.end} and {q.query!r} "
                         f"(were the predictions made from the same annotation files?)")


def _heatmap_index(seconds: np.ndarray, sp: SpatialPrediction, reference: bool) -> tuple[np.ndarray, np.ndarray]:
    """(row of the segment's heatmaps, extended by the padding map at row n) for each annotated second."""
    rows = seconds - sp.start
    ext = sp.heatmaps
    if reference:
        last = sp.end - sp.start
        if last % REFERENCE_CLIP == 0:
            rows = np.where(rows == last, last - 1, rows)  # stale: the previous key's result is reused
        else:
            pad = sp.padding if sp.padding is not None else np.zeros(sp.heatmaps.shape[1:], np.float32)
            ext = np.concatenate([sp.heatmaps, pad[None]])
            rows = np.where(rows == last, len(sp.heatmaps), rows)
    return ext, rows


def _frames_by_query(gt: SpatialGroundTruth) -> list[np.ndarray]:
    order = np.argsort(gt.query_index, kind="stable")
    cuts = np.searchsorted(gt.query_index[order], np.arange(len(gt.queries) + 1))
    return [order[cuts[i]:cuts[i + 1]] for i in range(len(gt.queries))]


def score_spatial(gt: SpatialGroundTruth, preds: Predictions, protocol: SpatialProtocol,
                  missing_policy: str) -> SpatialScores:
    n = len(gt.seconds)
    conv = protocol.mask.box_convention
    ranges = np.zeros((n, 4), np.int64)
    for size in {tuple(s) for s in gt.sizes.tolist()}:
        sel = np.flatnonzero((gt.sizes == size).all(axis=1))
        ranges[sel] = pixel_ranges(gt.boxes[sel], size, conv)
    gt_pixels = range_area(ranges)
    hit, iou, has_points = np.zeros(n), np.full(n, np.nan), np.zeros(n, bool)
    heat_jobs: dict[tuple, list[tuple[np.ndarray, np.ndarray]]] = defaultdict(list)
    missing = []
    for qi, frames in enumerate(_frames_by_query(gt)):
        q = gt.queries[qi]
        sp = preds.spatial.get(q.video_id, {}).get(q.segment_id)
        pt = preds.points.get(q.video_id, {}).get(q.segment_id)
        if sp is None and pt is None:
            missing.append(q)
            hit[frames], iou[frames] = 0.0, 0.0
            continue
        if sp is not None:
            _check_group(sp, q, preds.path, "spatial")
            ext, rows = _heatmap_index(gt.seconds[frames], sp, protocol.reference_indexing)
            for size in {tuple(s) for s in gt.sizes[frames].tolist()}:
                in_size = (gt.sizes[frames] == size).all(axis=1)
                heat_jobs[(size, ext.shape[1:])].append((frames[in_size], ext[rows[in_size]]))
        if pt is not None:
            _check_group(pt, q, preds.path, "points")
            has_points[frames] = True
            _score_points(pt, frames, gt, ranges, gt_pixels, hit, iou, region=sp is None)
    if missing and missing_policy == "fail":
        raise MissingPredictionsError("segments", [f"{q.video_id}/{q.segment_id}" for q in missing])
    asked = {f"{q.video_id}/{q.segment_id}" for q in gt.queries}
    warn_unscored(preds.path, "predicted segment(s)",
                  {f"{vid}/{sid}" for groups in (preds.spatial, preds.points) for vid, segs in groups.items()
                   for sid in segs} - asked)
    for (size, _), jobs in heat_jobs.items():
        frames = np.concatenate([f for f, _ in jobs])
        stats = heatmap_stats(np.concatenate([h for _, h in jobs]), size, ranges[frames], protocol.mask.rule)
        point_hit = points_in_boxes(stats.points, gt.boxes[frames])
        hit[frames] = np.where(has_points[frames], hit[frames], point_hit)
        iou[frames] = iou_from_counts(stats.inter, stats.mask_area, gt_pixels[frames])
    if protocol.empty_box_is_miss:
        hit[gt_pixels == 0], iou[gt_pixels == 0] = 0.0, 0.0
    return SpatialScores(hit, iou, gt_pixels, tuple(missing))


def _score_points(pt: PointPrediction, frames: np.ndarray, gt: SpatialGroundTruth, ranges: np.ndarray,
                  gt_pixels: np.ndarray, hit: np.ndarray, iou: np.ndarray, region: bool) -> None:
    """Pointing (and, when no heatmap is given, region IoU) of the frames of one /points group."""
    for size in {tuple(s) for s in gt.sizes[frames].tolist()}:
        sel = frames[(gt.sizes[frames] == size).all(axis=1)]
        if pt.uniform:
            hit[sel] = uniform_expected_hit(gt.boxes[sel], size)
            if region:  # the whole frame
                iou[sel] = iou_from_counts(gt_pixels[sel], size[0] * size[1], gt_pixels[sel])
            continue
        rows = gt.seconds[sel] - pt.start
        hit[sel] = points_in_boxes(pt.points[rows], gt.boxes[sel])
        if region and pt.boxes is not None:
            pred_ranges = pixel_ranges(pt.boxes[rows], size, "inclusive")
            inter = range_intersection(pred_ranges, ranges[sel])
            iou[sel] = iou_from_counts(inter, range_area(pred_ranges), gt_pixels[sel])


def _rates(hit: np.ndarray, iou: np.ndarray) -> dict:
    out = {"frames": int(len(hit)), "pointing_accuracy": 100.0 * float(hit.mean()) if len(hit) else None}
    regions = len(iou) > 0 and bool(np.isfinite(iou).all())
    out["mean_iou"] = float(iou.mean()) if regions else None
    out["iou_gt_0.3"] = 100.0 * float((iou > 0.3).mean()) if regions else None
    return out


def summarise_spatial(scores: SpatialScores, gt: SpatialGroundTruth, split_skips_empty: bool) -> dict:
    """Metrics JSON of a spatial task: accuracies in percent, IoU as a fraction, split by box size, per class.
    `split_skips_empty`: leave frames with an empty ground-truth mask out of the size split (published script)."""
    out = _rates(scores.hit, scores.iou)
    out["frames_empty_box"] = int((scores.gt_pixels == 0).sum())
    in_split = scores.gt_pixels > 0 if split_skips_empty else np.ones(len(scores.hit), bool)
    for name, sel in (("small", in_split & (scores.gt_pixels <= LARGE_BOX_PIXELS)),
                      ("large", in_split & (scores.gt_pixels > LARGE_BOX_PIXELS))):
        part = _rates(scores.hit[sel], scores.iou[sel])
        out.update({f"{key}_{name}": value for key, value in part.items()})
    names, inverse = np.unique(gt.classes.astype(str), return_inverse=True)
    per_class = {}
    for c, name in enumerate(names.tolist()):
        sel = inverse.reshape(-1) == c
        per_class[name] = _rates(scores.hit[sel], scores.iou[sel])
    out["per_class"] = per_class
    out["pointing_accuracy_class_mean"] = (float(np.mean([v["pointing_accuracy"] for v in per_class.values()]))
                                           if per_class else None)
    out["missing_segments"] = [f"{q.video_id}/{q.segment_id}" for q in scores.missing]
    missing_per_video = defaultdict(int)
    for q in scores.missing:
        missing_per_video[q.video_id] += 1
    queries_per_video = defaultdict(int)
    for q in gt.queries:
        queries_per_video[q.video_id] += 1
    out["missing_videos"] = sorted(v for v, k in missing_per_video.items() if k == queries_per_video[v])
    out["videos"] = len(queries_per_video)
    return out
