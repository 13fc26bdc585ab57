"""Moment retrieval (temporal grounding of a query in an untrimmed video) over ranked proposals.

Intervals are continuous seconds [start, end). IoU = |P and G| / |P or G| (0 when both are empty). A query is
recalled at (n, m) when one of its first n proposals has IoU >= m with the ground truth; R@n,IoU=m is the percent
of recalled queries, over every query (a query without proposals is never recalled). mIoU is the mean IoU of the
first proposal (0 without proposals), as a fraction: the metrics of WSRA Table 3 (Charades-STA).
"""
from __future__ import annotations

import math

import numpy as np

RANKS = (1, 5)
IOUS = (0.3, 0.5, 0.7)


def interval_iou(proposals: np.ndarray, truth: tuple[float, float]) -> np.ndarray:
    """IoU [n] of proposals [n, 2+] (start, end, ...) with one ground-truth interval."""
    p = np.asarray(proposals, np.float64)
    if p.size == 0:
        return np.zeros(0)
    p = p.reshape(-1, p.shape[-1])
    start, end = float(truth[0]), float(truth[1])
    inter = np.maximum(np.minimum(p[:, 1], end) - np.maximum(p[:, 0], start), 0.0)
    union = np.maximum(p[:, 1] - p[:, 0], 0.0) + max(end - start, 0.0) - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def moment_metrics(proposals: list[np.ndarray], truths: list[tuple[float, float]], ranks: tuple[int, ...] = RANKS,
                   ious: tuple[float, ...] = IOUS) -> dict[str, float]:
    """{"r{n}@{m}" (percent), "miou" (fraction), "queries"} over queries with ranked proposals [n_i, 2+]."""
    if len(proposals) != len(truths):
        raise ValueError(f"{len(proposals)} proposal lists for {len(truths)} ground-truth moments")
    if not truths:
        raise ValueError("no queries to score")
    best = np.zeros((len(truths), len(ranks)))          # best IoU among the first n proposals
    first = np.zeros(len(truths))
    for q, (props, truth) in enumerate(zip(proposals, truths)):
        iou = interval_iou(props, truth)
        if iou.size:
            first[q] = iou[0]
            best[q] = [iou[:n].max() for n in ranks]
    # 1e-12: an IoU of exactly m computed from decimal times (e.g. 2.1 / 3.0) may land a rounding step below m
    out = {f"r{n}@{m:g}": float(100.0 * np.mean(best[:, k] >= m - 1e-12)) for k, n in enumerate(ranks) for m in ious}
    out.update(miou=float(first.mean()), queries=len(truths))
    return out


def chance_moment_metrics(candidates: list[np.ndarray], truths: list[tuple[float, float]],
                          ranks: tuple[int, ...] = RANKS, ious: tuple[float, ...] = IOUS) -> dict[str, float]:
    """The expected metrics of ranking each query's candidate intervals [k_i, 2+] uniformly at random: the chance
    level of moment retrieval with that proposal set. With g of k candidates at IoU >= m, the first n hold one
    with probability 1 - C(k - g, n) / C(k, n); the first proposal's expected IoU is the candidates' mean IoU."""
    if len(candidates) != len(truths):
        raise ValueError(f"{len(candidates)} candidate lists for {len(truths)} ground-truth moments")
    if not truths:
        raise ValueError("no queries to score")
    recall = np.zeros((len(truths), len(ranks), len(ious)))
    first = np.zeros(len(truths))
    for q, (cands, truth) in enumerate(zip(candidates, truths)):
        iou = interval_iou(cands, truth)
        k = iou.size
        if not k:
            continue
        first[q] = iou.mean()
        for a, n in enumerate(ranks):
            n = min(n, k)
            for b, m in enumerate(ious):
                good = int(np.sum(iou >= m - 1e-12))
                recall[q, a, b] = 1.0 - math.comb(k - good, n) / math.comb(k, n)
    out = {f"r{n}@{m:g}": float(100.0 * recall[:, a, b].mean()) for a, n in enumerate(ranks)
           for b, m in enumerate(ious)}
    out.update(miou=float(first.mean()), queries=len(truths))
    return out
