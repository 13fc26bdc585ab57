"""Predicted tubes of the untrimmed GYT task and their per-second statistics against the ground-truth boxes.

Each segment id of a video's `/spatial` and `/points` groups is one predicted tube: its query is the class, its
[start, end] the extent. As in the spatial tasks, a `/points` group gives the pointing (a uniform one its
expectation and the whole frame as region) and a `/spatial` group the region mask; a segment id present in both
points with the points and takes its regions from the heatmaps.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from eval.metrics.boxes import pixel_ranges, points_in_boxes, range_area, range_intersection, uniform_expected_hit
from eval.metrics.heatmaps import MaskRule, box_sums, first_argmax, heatmap_stats, masks, upsample
from eval.predictions import PointPrediction, Predictions, SpatialPrediction
from eval.scorers.common import MaskOptions, ScoreError

_EMPTY_RANGE = (0, -1, 0, -1)
_SWEEP_PIXELS = 32 * 640 * 480  # pixels upsampled at once by heatmap_sweep (as heatmap_stats)


@dataclass(frozen=True)
class PredTube:
    video_id: str
    segment_id: str
    query: str
    start: int
    end: int
    spatial: SpatialPrediction | None
    points: PointPrediction | None


@dataclass(frozen=True)
class TubeStats:
    """Per second of the tube: pointing hit in the ground-truth box of that second (0 without a box), mask
    pixels, mask pixels inside that box; and whether the tube gives regions at all."""

    hit: np.ndarray
    mask_area: np.ndarray
    inter: np.ndarray
    has_region: bool


def video_tubes(preds: Predictions, vid: str) -> list[PredTube]:
    """The tubes of one video in segment-id order (spatial and points groups with the same id are one tube)."""
    spatial, points = preds.spatial.get(vid, {}), preds.points.get(vid, {})
    tubes = []
    for sid in sorted(set(spatial) | set(points), key=lambda s: (len(s), s)):
        sp, pt = spatial.get(sid), points.get(sid)
        if sp is not None and pt is not None and (sp.start, sp.end, sp.query) != (pt.start, pt.end, pt.query):
            raise ScoreError(f"{preds.path}: /spatial/{vid}/{sid} and /points/{vid}/{sid} disagree on start, end or "
                             "query")
        ref = sp if sp is not None else pt
        tubes.append(PredTube(vid, sid, ref.query, ref.start, ref.end, sp, pt))
    return tubes


@dataclass(frozen=True)
class GtBoxes:
    """Ground-truth boxes of one video by second, with their pixel ranges (protocol convention)."""

    seconds: dict[int, int]  # second -> row
    boxes: np.ndarray  # float [m, 4]
    ranges: np.ndarray  # int [m, 4]

    def at(self, seconds: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(boxes, ranges, has_box) at the given seconds (empty range where there is no box)."""
        rows = np.array([self.seconds.get(t, -1) for t in seconds.tolist()], np.int64)
        has = rows >= 0
        boxes = np.zeros((len(rows), 4))
        ranges = np.tile(np.array(_EMPTY_RANGE, np.int64), (len(rows), 1))
        boxes[has], ranges[has] = self.boxes[rows[has]], self.ranges[rows[has]]
        return boxes, ranges, has


def _base_stats(tubes: list[PredTube], gt: dict[str, GtBoxes], sizes) -> tuple[list[TubeStats], dict]:
    """Each tube's statistics from its points alone, and its heatmap jobs grouped by (frame size, grid)."""
    out, heat_jobs = [], defaultdict(list)
    for i, tube in enumerate(tubes):
        seconds = np.arange(tube.start, tube.end + 1)
        boxes, ranges, has_box = gt[tube.video_id].at(seconds)
        size = sizes.of(tube.video_id)
        stats = TubeStats(np.zeros(len(seconds)), np.zeros(len(seconds), np.int64), np.zeros(len(seconds), np.int64),
                          tube.spatial is not None)
        if tube.points is not None:
            stats = _point_stats(tube.points, stats, boxes, ranges, has_box, size)
        if tube.spatial is not None:
            heat_jobs[(size, tube.spatial.heatmaps.shape[1:])].append((i, boxes, ranges, has_box))
        out.append(stats)
    return out, heat_jobs


def _with_heatmaps(out: list[TubeStats], tubes: list[PredTube], jobs: list, points: np.ndarray,
                   mask_area: np.ndarray, inter: np.ndarray) -> list[TubeStats]:
    """`out` with the tubes of `jobs` given their heatmaps' pointing and region counts (rows in job order)."""
    out = list(out)
    at = 0
    for i, boxes, _, has_box in jobs:
        part = slice(at, at + len(boxes))
        at += len(boxes)
        hit = out[i].hit if tubes[i].points is not None else \
            (points_in_boxes(points[part], boxes) & has_box).astype(np.float64)
        out[i] = TubeStats(hit, mask_area[part], inter[part], True)
    return out


def tube_stats(tubes: list[PredTube], gt: dict[str, GtBoxes], sizes, mask: MaskOptions) -> list[TubeStats]:
    """Statistics of every tube (all videos at once, so identical heatmaps are upsampled once)."""
    out, heat_jobs = _base_stats(tubes, gt, sizes)
    for (size, _), jobs in heat_jobs.items():
        maps = np.concatenate([tubes[i].spatial.heatmaps for i, *_ in jobs])
        result = heatmap_stats(maps, size, np.concatenate([r for _, _, r, _ in jobs]), mask.rule)
        out = _with_heatmaps(out, tubes, jobs, result.points, result.mask_area, result.inter)
    return out


def tube_stats_sweep(tubes: list[PredTube], gt: dict[str, GtBoxes], sizes,
                     rules: list[MaskRule]) -> list[list[TubeStats]]:
    """`tube_stats` under several mask rules in one pass: every heatmap is upsampled once and thresholded by each
    rule. out[k][i] = the statistics of tube i under rules[k] (pointing, and the regions of /points groups, do
    not depend on the rule)."""
    base, heat_jobs = _base_stats(tubes, gt, sizes)
    out = [base] * len(rules)
    for (size, _), jobs in heat_jobs.items():
        maps = np.concatenate([tubes[i].spatial.heatmaps for i, *_ in jobs])
        points, areas, inters = heatmap_sweep(maps, size, np.concatenate([r for _, _, r, _ in jobs]), rules)
        out = [_with_heatmaps(o, tubes, jobs, points, a, n) for o, a, n in zip(out, areas, inters)]
    return out


def heatmap_sweep(heatmaps: np.ndarray, size: tuple[int, int], ranges: np.ndarray, rules: list[MaskRule]) \
        -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`eval.metrics.heatmaps.heatmap_stats` for several mask rules, each map upsampled once: (points [n, 2],
    mask pixels [k, n], mask pixels inside the frame's box ranges [k, n]) for k rules."""
    heatmaps = np.asarray(heatmaps, dtype=np.float32)
    n = len(heatmaps)
    points = np.zeros((n, 2), np.int64)
    areas, inters = np.zeros((len(rules), n), np.int64), np.zeros((len(rules), n), np.int64)
    chunk = max(1, _SWEEP_PIXELS // (size[0] * size[1]))
    for lo in range(0, n, chunk):
        maps = upsample(heatmaps[lo:lo + chunk], size)
        part = slice(lo, lo + len(maps))
        points[part] = first_argmax(maps)
        for k, rule in enumerate(rules):
            region = masks(maps, rule)
            areas[k, part] = region.reshape(len(region), -1).sum(axis=1)
            integral = np.zeros((len(region), size[1] + 1, size[0] + 1), np.int32)
            integral[:, 1:, 1:] = region.cumsum(axis=1, dtype=np.int32).cumsum(axis=2, dtype=np.int32)
            inters[k, part] = box_sums(integral, np.arange(len(region)), np.asarray(ranges)[part])
    return points, areas, inters


def _point_stats(pt: PointPrediction, stats: TubeStats, boxes: np.ndarray, ranges: np.ndarray, has_box: np.ndarray,
                 size: tuple[int, int]) -> TubeStats:
    if pt.uniform:
        hit = np.where(has_box, uniform_expected_hit(boxes, size), 0.0)
        return TubeStats(hit, np.full(len(hit), size[0] * size[1], np.int64), range_area(ranges), True)
    hit = (points_in_boxes(pt.points, boxes) & has_box).astype(np.float64)
    if pt.boxes is None:
        return TubeStats(hit, stats.mask_area, stats.inter, stats.has_region)
    pred = pixel_ranges(pt.boxes, size, "inclusive")
    return TubeStats(hit, range_area(pred), range_intersection(pred, ranges), True)


def gt_boxes(frame_seconds: np.ndarray, frame_boxes: np.ndarray, size: tuple[int, int], convention: str) -> GtBoxes:
    return GtBoxes(dict(zip(frame_seconds.tolist(), range(len(frame_seconds)))), frame_boxes,
                   pixel_ranges(frame_boxes, size, convention))
