"""Segments of a per-second labelling and their temporal overlap.

A labelling is an int array with one class index per second; second s covers [s, s + 1).
"""
from __future__ import annotations

import numpy as np


def runs(labels: np.ndarray) -> np.ndarray:
    """Maximal runs of equal labels as int64 rows (start, end_exclusive, label)."""
    labels = np.asarray(labels).reshape(-1)
    if labels.size == 0:
        return np.zeros((0, 3), np.int64)
    cut = np.flatnonzero(labels[1:] != labels[:-1]) + 1
    starts = np.concatenate([[0], cut])
    ends = np.concatenate([cut, [labels.size]])
    return np.stack([starts, ends, labels[starts]], axis=1).astype(np.int64)


def interval_overlap(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Length of the intersection of half-open intervals a[i] = (start, end) and b[i]."""
    a, b = np.asarray(a, np.float64).reshape(-1, 2), np.asarray(b, np.float64).reshape(-1, 2)
    return np.maximum(np.minimum(a[:, 1], b[:, 1]) - np.maximum(a[:, 0], b[:, 0]), 0.0)


def iou_iod(gt: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per pair of half-open intervals: IoU = |G and D| / |G or D| and IoD = |G and D| / |D| (0 for an empty D)."""
    gt, pred = np.asarray(gt, np.float64).reshape(-1, 2), np.asarray(pred, np.float64).reshape(-1, 2)
    inter = interval_overlap(gt, pred)
    len_gt = np.maximum(gt[:, 1] - gt[:, 0], 0.0)
    len_pred = np.maximum(pred[:, 1] - pred[:, 0], 0.0)
    union = len_gt + len_pred - inter
    iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    iod = np.divide(inter, len_pred, out=np.zeros_like(inter), where=len_pred > 0)
    return iou, iod


def mof(pred: np.ndarray, gt: np.ndarray) -> tuple[int, int]:
    """(seconds with the right label, seconds) of one video: the mean over frames is their pooled ratio."""
    pred, gt = np.asarray(pred).reshape(-1), np.asarray(gt).reshape(-1)
    if pred.shape != gt.shape:
        raise ValueError(f"{pred.size} predicted seconds for {gt.size} ground-truth seconds")
    return int((pred == gt).sum()), int(gt.size)
