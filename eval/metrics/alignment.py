"""Ordered alignment of per-second class scores to a transcript (Kuehne et al.'s weakly supervised setting).

Given the ordered transcript of a video (its action segments, background included), every entry k takes one
contiguous block of >= 1 seconds, in transcript order, covering all T seconds. The best alignment maximises

    sum_k [ sum_{s in block k} emission[s, k] + log p_k(len(block k)) ]

with p_k a Poisson length model of mean lambda_k seconds (the reference uses the Poisson of
weakYouTube_length.txt, mean lengths in 30-fps frames). This is an explicit-duration Viterbi, solved exactly by
dynamic programming over (entry, end second) in O(K T^2); ties resolve to the earliest boundary. Unlike the
reference implementation (hypotheses every 20 frames, a beam of 50k), nothing is pruned.
"""
from __future__ import annotations

import numpy as np
from scipy.special import gammaln


def poisson_log_pmf(max_length: int, mean: float, frames_per_step: int = 1) -> np.ndarray:
    """log P(length = l) for l = 0..max_length steps, a step being `frames_per_step` frames counted by a
    Poisson(mean) over frames; lengths < 1 step are impossible (-inf). Not renormalised over l >= 1: every entry
    adds exactly one length term, so a per-entry constant cannot change which alignment is best."""
    if mean <= 0:
        raise ValueError(f"Poisson mean must be > 0, got {mean}")
    length = np.arange(max_length + 1, dtype=np.float64) * frames_per_step
    out = length * np.log(mean) - mean - gammaln(length + 1)
    out[0] = -np.inf
    return out


def log_softmax(scores: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax in float64 (idempotent: log-probabilities pass through unchanged)."""
    scores = np.asarray(scores, dtype=np.float64)
    shifted = scores - scores.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def align_ordered(emissions: np.ndarray, length_log_pmf: np.ndarray) -> np.ndarray:
    """Best ordered alignment.

    emissions: [T, K] score of second s under transcript entry k (e.g. the log-probability of entry k's label);
    length_log_pmf: [K, T + 1] log-probability of each block length 0..T for entry k.
    Returns int64 bounds [K + 1]: entry k covers seconds [bounds[k], bounds[k + 1]); bounds[0] = 0, bounds[K] = T.
    Raises ValueError when no alignment exists (T < K).
    """
    emissions = np.asarray(emissions, dtype=np.float64)
    n_sec, n_entries = emissions.shape
    lp = np.asarray(length_log_pmf, dtype=np.float64)
    if lp.shape != (n_entries, n_sec + 1):
        raise ValueError(f"length table has shape {lp.shape}, need {(n_entries, n_sec + 1)}")
    if n_entries == 0 or n_sec < n_entries:
        raise ValueError(f"cannot align {n_entries} transcript entries to {n_sec} seconds (each needs >= 1)")
    span = np.subtract.outer(np.arange(n_sec + 1), np.arange(n_sec + 1))  # [t, u] = t - u
    valid = span >= 1
    span = np.where(valid, span, 0)
    best = np.full(n_sec + 1, -np.inf)
    best[0] = 0.0
    back = np.zeros((n_entries, n_sec + 1), np.int64)
    cached_row, cached = None, None
    for k in range(n_entries):
        if cached_row is None or not np.array_equal(lp[k], cached_row):
            cached_row, cached = lp[k], np.where(valid, lp[k][span], -np.inf)  # [t, u] log p(t - u)
        cum = np.concatenate([[0.0], np.cumsum(emissions[:, k])])
        cand = cached + (best - cum)[None, :]  # block k = seconds [u, t)
        back[k] = np.argmax(cand, axis=1)
        best = cum + cand[np.arange(n_sec + 1), back[k]]
    if not np.isfinite(best[n_sec]):
        raise ValueError("no alignment has a finite score (check the length model and the emissions)")
    bounds = np.zeros(n_entries + 1, np.int64)
    bounds[n_entries] = n_sec
    for k in range(n_entries - 1, -1, -1):
        bounds[k] = back[k][bounds[k + 1]]
    return bounds
