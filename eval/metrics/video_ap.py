"""Video AP over spatio-temporal tubes, following the ACT detector protocol (Kalogeiton et al. 2017, the
"previous evaluation [15]" of the STG paper), at 1 frame per second.

Tubes are described by per-second pixel counts, so no mask is kept in memory:
- a ground-truth tube spans the seconds [start, end] (the annotated segment, inclusive) and carries boxes only
  at some of them (`seconds`, with pixel counts `box_area`); seconds of the span without a box are unknown and
  take part in no count.
- a detection spans [start, end] with, per second, the pixel count of its mask (`mask_area`) and of the mask's
  intersection with the ground-truth box annotated at that second of the video (`inter`, 0 where none).
  A video has at most one box per second, so that intersection does not depend on which tube is compared.

Tube IoU, two variants:
- "voxel": |P and G| / |P or G| over voxels of the known seconds: the annotated seconds of G plus the seconds of
  P outside G's span.
- "act": ACT's `iou3dt` = temporal IoU of the inclusive spans x the mean per-second mask/box IoU over the
  annotated seconds of G inside P's span (0 when there are none).

AP per class: detections sorted by score (descending, stable), each matched to the unmatched ground-truth tube
of its video and class with the highest IoU if that IoU >= threshold (true positive), else a false positive;
precision/recall points start at (R=0, P=1) and AP is the trapezoid area under them (ACT's `pr_to_ap`, not an
interpolated AP). mAP is the mean over the classes that have ground truth; detections of classes without
ground truth are ignored, and a class with ground truth but no detection has AP 0.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

IOU_VARIANTS = ("voxel", "act")


@dataclass(frozen=True)
class GtTube:
    video_id: str
    label: str
    start: int
    end: int
    seconds: np.ndarray  # int [k] annotated seconds within [start, end], increasing
    box_area: np.ndarray  # int [k] box pixels at those seconds


@dataclass(frozen=True)
class Detection:
    video_id: str
    label: str
    score: float
    start: int
    end: int
    mask_area: np.ndarray  # int [end - start + 1]
    inter: np.ndarray  # int [end - start + 1]


def _annotated_inside(gt: GtTube, det: Detection) -> np.ndarray:
    return (gt.seconds >= det.start) & (gt.seconds <= det.end)


def tube_iou_voxel(det: Detection, gt: GtTube) -> float:
    inside = _annotated_inside(gt, det)
    offsets = gt.seconds[inside] - det.start
    inter = float(det.inter[offsets].sum())
    det_seconds = np.arange(det.start, det.end + 1)
    outside_span = (det_seconds < gt.start) | (det_seconds > gt.end)
    union = float(gt.box_area.sum()) + float(det.mask_area[outside_span].sum()) \
        + float(det.mask_area[offsets].sum()) - inter
    return inter / union if union > 0 else 0.0


def tube_iou_act(det: Detection, gt: GtTube) -> float:
    overlap = min(det.end, gt.end) - max(det.start, gt.start) + 1
    if overlap <= 0:
        return 0.0
    temporal = overlap / (max(det.end, gt.end) - min(det.start, gt.start) + 1)
    inside = _annotated_inside(gt, det)
    if not inside.any():
        return 0.0
    offsets = gt.seconds[inside] - det.start
    inter = det.inter[offsets].astype(np.float64)
    union = det.mask_area[offsets] + gt.box_area[inside] - inter
    spatial = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    return temporal * float(spatial.mean())


_IOU = {"voxel": tube_iou_voxel, "act": tube_iou_act}


def ap_from_matches(is_tp: np.ndarray, n_gt: int) -> float:
    """Trapezoid AP of a ranked list of detections (True = matched), starting at (R=0, P=1)."""
    if n_gt <= 0:
        raise ValueError("AP is undefined without ground truth")
    tp = np.cumsum(is_tp, dtype=np.float64)
    fp = np.cumsum(~np.asarray(is_tp, bool), dtype=np.float64)
    precision = np.concatenate([[1.0], tp / np.maximum(tp + fp, 1)])
    recall = np.concatenate([[0.0], tp / n_gt])
    return float(np.sum(np.diff(recall) * (precision[1:] + precision[:-1]) * 0.5))


def _iou_tables(dets: list[Detection], gts: list[GtTube], variant: str) -> list[np.ndarray]:
    """IoU of each detection with every ground-truth tube of its video (a row per detection)."""
    fn = _IOU[variant]
    gt_by_video: dict[str, list[int]] = defaultdict(list)
    for j, g in enumerate(gts):
        gt_by_video[g.video_id].append(j)
    rows = []
    for d in dets:
        row = np.full(len(gts), -1.0)  # -1: another video, never matched
        for j in gt_by_video.get(d.video_id, []):
            row[j] = fn(d, gts[j])
        rows.append(row)
    return rows


def class_matches(dets: list[Detection], gts: list[GtTube], thresholds: tuple[float, ...],
                  variant: str = "voxel") -> tuple[list[int], dict[float, np.ndarray]]:
    """Greedy matching of one class in score order (ACT's rule): (the detections' indices by descending score,
    stable for ties; per IoU threshold, the ground-truth tube each ranked detection is matched to, -1 for none)."""
    order = sorted(range(len(dets)), key=lambda i: -dets[i].score)  # stable for ties
    table = _iou_tables([dets[i] for i in order], gts, variant)
    out = {}
    for th in thresholds:
        free = np.ones(len(gts), bool)
        matched = np.full(len(order), -1, np.int64)
        for i, row in enumerate(table):
            ious = np.where(free, row, -1.0)
            j = int(np.argmax(ious)) if len(ious) else -1
            if j >= 0 and ious[j] >= th and ious[j] >= 0:
                free[j], matched[i] = False, j
        out[th] = matched
    return order, out


def class_ap(dets: list[Detection], gts: list[GtTube], thresholds: tuple[float, ...],
             variant: str = "voxel") -> dict[float, float]:
    """AP of one class at each IoU threshold (greedy matching in score order, ACT's rule)."""
    _, matched = class_matches(dets, gts, thresholds, variant)
    return {th: ap_from_matches(matched[th] >= 0, len(gts)) for th in thresholds}


def _by_class(dets: list[Detection], gts: list[GtTube]) -> tuple[dict[str, list[int]], dict[str, list[Detection]]]:
    """(indices of the ground-truth tubes of each class, in label order; the detections of each class)."""
    gt_by_class: dict[str, list[int]] = defaultdict(list)
    for j, g in enumerate(gts):
        gt_by_class[g.label].append(j)
    det_by_class: dict[str, list[Detection]] = defaultdict(list)
    for d in dets:
        det_by_class[d.label].append(d)
    return dict(sorted(gt_by_class.items())), det_by_class


def video_map(dets: list[Detection], gts: list[GtTube], thresholds: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5),
              variant: str = "voxel") -> tuple[dict[float, float], dict[str, dict[float, float]]]:
    """(mAP per threshold, AP per class per threshold) over the classes that have ground truth."""
    if variant not in _IOU:
        raise ValueError(f"unknown tube IoU {variant!r} (one of {IOU_VARIANTS})")
    gt_by_class, det_by_class = _by_class(dets, gts)
    per_class = {label: class_ap(det_by_class.get(label, []), [gts[j] for j in rows], thresholds, variant)
                 for label, rows in gt_by_class.items()}
    means = {th: float(np.mean([ap[th] for ap in per_class.values()])) if per_class else 0.0 for th in thresholds}
    return means, per_class


def grouped_video_map(dets: list[Detection], gts: list[GtTube], group: list[str], thresholds: tuple[float, ...],
                      variant: str = "voxel") -> dict[str, tuple[dict[float, float] | None, dict[str, dict]]]:
    """mAP per group of ground-truth tubes (`group[j]` names the group of `gts[j]`), e.g. widespread vs
    saturated actions: {group: (mAP per threshold, or None for a group without tubes; AP per class)}.

    The matching is the one of `video_map` over all tubes; in a group's ranking a detection matched to a tube of
    another group is left out (neither hit nor false alarm), and an unmatched detection is a false alarm in every
    group. A group's mAP is the mean over the classes with ground truth in that group."""
    if variant not in _IOU:
        raise ValueError(f"unknown tube IoU {variant!r} (one of {IOU_VARIANTS})")
    if len(group) != len(gts):
        raise ValueError(f"{len(group)} group names for {len(gts)} ground-truth tubes")
    names = list(dict.fromkeys(group))
    per_class: dict[str, dict[str, dict[float, float]]] = {g: {} for g in names}
    gt_by_class, det_by_class = _by_class(dets, gts)
    for label, rows in gt_by_class.items():
        _, matched = class_matches(det_by_class.get(label, []), [gts[j] for j in rows], thresholds, variant)
        of = np.array([group[j] for j in rows], dtype=object)
        for g in names:
            n_gt = int((of == g).sum())
            if not n_gt:
                continue
            aps = {}
            for th in thresholds:
                m = matched[th]
                kept = m[(m < 0) | (of[np.maximum(m, 0)] == g)]
                aps[th] = ap_from_matches(kept >= 0, n_gt)
            per_class[g][label] = aps
    return {g: ({th: float(np.mean([ap[th] for ap in per_class[g].values()])) for th in thresholds}
                if per_class[g] else None, per_class[g]) for g in names}
