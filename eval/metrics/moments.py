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


# ---- DiDeMo (Hendricks et al. ICCV 2017): 21 candidate moments, several annotators per query -------------------
# The published evaluation (github LisaAnne/LocalizingMoments, utils/eval.py, `eval_predictions`), reproduced:
# moments are inclusive 5-s segment spans (first, last); iou = max(0, min(e1, e2) + 1 - max(s1, s2)) /
# (max(e1, e2) + 1 - min(s1, s2)) (the union is the hull: equal to the union whenever they overlap, and the IoU is
# 0 otherwise); per query, the rank of each annotator's moment in the ranked list (1-based), the mean of the 3
# smallest ranks, and the mean of the 3 largest IoUs of the top-1 moment with the annotators' moments (with 4
# annotators: the one agreeing least is dropped); Rank@n = share of queries whose mean rank is <= n, mIoU = the
# mean of the per-query IoUs. Where the script cannot run (a query without proposals, an annotator's moment absent
# from a shortened list) that rank is infinite and the top-1 IoU 0: never recalled.
DIDEMO_KEEP = 3     # eval_predictions: np.sort(ranks)[:3], np.sort(ious)[-3:]


def segment_iou(pred: tuple[int, int], truth: tuple[int, int]) -> float:
    """DiDeMo's IoU of two inclusive segment spans (first, last)."""
    inter = max(0, min(pred[1], truth[1]) + 1 - max(pred[0], truth[0]))
    return inter / (max(pred[1], truth[1]) + 1 - min(pred[0], truth[0]))


def didemo_query(ranked: list[tuple[int, int]], times: list[tuple[int, int]]) -> tuple[float, float]:
    """(mean of the 3 best ranks, mean of the 3 best top-1 IoUs) of one query (ranked moments best first)."""
    if not times:
        raise ValueError("a DiDeMo query needs at least one annotator's moment")
    first: dict[tuple[int, int], int] = {}
    for k, span in enumerate(ranked):
        first.setdefault(tuple(span), k + 1)            # list.index: the first occurrence
    ranks = sorted(first.get(tuple(t), math.inf) for t in times)[:DIDEMO_KEEP]
    ious = sorted(segment_iou(tuple(ranked[0]), tuple(t)) if ranked else 0.0 for t in times)[-DIDEMO_KEEP:]
    return float(np.mean(ranks)), float(np.mean(ious))


def didemo_metrics(ranked: list[list[tuple[int, int]]], times: list[list[tuple[int, int]]],
                   ranks: tuple[int, ...] = RANKS) -> dict[str, float]:
    """{"r{n}" (Rank@n, percent), "miou" (fraction), "queries"} over queries with ranked segment spans."""
    if len(ranked) != len(times):
        raise ValueError(f"{len(ranked)} ranked lists for {len(times)} annotated queries")
    if not times:
        raise ValueError("no queries to score")
    per = np.array([didemo_query(r, t) for r, t in zip(ranked, times)], np.float64)
    out = {f"r{n}": float(100.0 * np.mean(per[:, 0] <= n)) for n in ranks}
    out.update(miou=float(per[:, 1].mean()), queries=len(times))
    return out


def seconds_to_segments(proposals: np.ndarray, segment_s: float = 5.0, n_segments: int = 6) -> list[tuple[int, int]]:
    """Inclusive segment spans of proposals [n, 2+] (start, end) in seconds that are DiDeMo candidates: start and
    end on the segment grid (within 1e-4 s), 0 <= first <= last < n_segments; ValueError naming the row
    otherwise."""
    p = np.asarray(proposals, np.float64)
    p = p.reshape(-1, p.shape[-1]) if p.size else np.zeros((0, 2))
    out = []
    for k, (start, end) in enumerate(p[:, :2]):
        a, b = start / segment_s, end / segment_s - 1
        s, e = round(a), round(b)
        if abs(a - s) * segment_s > 1e-4 or abs(b - e) * segment_s > 1e-4 or not 0 <= s <= e < n_segments:
            raise ValueError(f"proposal {k} ({start:g}, {end:g}) s is not a DiDeMo candidate (spans of whole "
                             f"{segment_s:g}-s segments within {n_segments * segment_s:g} s)")
        out.append((s, e))
    return out
