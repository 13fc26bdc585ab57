"""Retrieval metrics over a similarity matrix: each query row has one correct candidate column.

Rank of a query (1 = best):
- paper:     1 + the number of other candidates scoring at least as high as the correct one (ties count against
             the query, so constant scores rank every query last rather than first);
- reference: the position of the correct candidate in `np.argsort(row)[::-1]` plus 1, as the released COOT code
             (nntrainer/retrieval.py, compute_retrieval_cosine) computes it.
A query whose correct candidate is absent (positive -1) ranks n_candidates + 1: after every candidate.
R@K = percent of queries with rank <= K, for the cutoffs K given (`ks`; default 1, 5, 10: COOT Table 3, YouCook2;
ActivityNet val1 uses 1, 5, 50: COOT Table 2). Median rank: the median of the ranks (paper; may end in .5), or
floor(median of the 0-based ranks) + 1 (reference). Mean rank is reported too.
"""
from __future__ import annotations

import numpy as np

KS = (1, 5, 10)


def ranks(scores: np.ndarray, positive: np.ndarray, protocol: str = "paper") -> np.ndarray:
    """1-based rank [Q] of each query's correct candidate: scores [Q, C], positive [Q] column index or -1."""
    scores = np.asarray(scores, np.float64)
    positive = np.asarray(positive, np.int64)
    q, c = scores.shape
    out = np.full(q, c + 1, np.int64)
    have = positive >= 0
    if protocol == "paper":
        correct = scores[np.flatnonzero(have), positive[have]]
        out[have] = (scores[have] >= correct[:, None]).sum(1)   # counts the correct candidate itself
        return out
    if protocol != "reference":
        raise ValueError(f"unknown protocol {protocol!r}")
    for i in np.flatnonzero(have):
        order = np.argsort(scores[i])[::-1]
        out[i] = int(np.flatnonzero(order == positive[i])[0]) + 1
    return out


def median_rank(rank: np.ndarray, protocol: str = "paper") -> float:
    if protocol == "reference":
        return float(np.floor(np.median(rank - 1)) + 1)
    return float(np.median(rank))


def check_cutoffs(ks) -> tuple[int, ...]:
    """The cutoffs as a tuple of distinct positive integers in the order given; ValueError otherwise."""
    ks = tuple(ks)
    if not ks or any(isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1 for k in ks):
        raise ValueError(f"recall cutoffs must be positive integers, got {list(ks)}")
    if len(set(ks)) != len(ks):
        raise ValueError(f"recall cutoffs are repeated: {list(ks)}")
    return tuple(int(k) for k in ks)


def summarise(rank: np.ndarray, protocol: str = "paper", ks: tuple[int, ...] = KS) -> dict[str, float]:
    """{"r<k>" for k in ks (percent), "medr", "meanr", "queries"} of 1-based ranks."""
    rank = np.asarray(rank)
    ks = check_cutoffs(ks)
    if rank.size == 0:
        raise ValueError("no queries to score")
    out = {f"r{k}": float(100.0 * np.mean(rank <= k)) for k in ks}
    out.update(medr=median_rank(rank, protocol), meanr=float(rank.mean()), queries=int(rank.size))
    return out


def both_directions(scores: np.ndarray, text_positive: np.ndarray, video_positive: np.ndarray,
                    protocol: str = "paper", ks: tuple[int, ...] = KS) -> dict[str, dict[str, float]]:
    """Text-to-video (rows of scores [T, V]) and video-to-text (its columns) metrics at cutoffs ks."""
    return {"t2v": summarise(ranks(scores, text_positive, protocol), protocol, ks),
            "v2t": summarise(ranks(np.asarray(scores).T, video_positive, protocol), protocol, ks)}
