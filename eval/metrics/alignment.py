"""Ordered alignment of class scores to a transcript (Kuehne et al.'s weakly supervised setting): our exact
dynamic programme (`align_ordered`, the paper protocol) and the published aligner (`align_published`).

Given the ordered transcript of a video (its action segments, background included), every entry k takes one
contiguous block of >= 1 seconds, in transcript order, covering all T seconds. The best alignment maximises

    sum_k [ sum_{s in block k} emission[s, k] + log p_k(len(block k)) ]

with p_k a Poisson length model of mean lambda_k seconds (the reference uses the Poisson of
weakYouTube_length.txt, mean lengths in 30-fps frames). This is an explicit-duration Viterbi, solved exactly by
dynamic programming over (entry, end second) in O(K T^2); ties resolve to the earliest boundary. Unlike the
reference implementation (hypotheses every 20 frames, a beam of 50k), nothing is pruned.

`align_published` reproduces Kuehne et al.'s published `video_alignment` decoder frame for frame (see
eval/ALIGN.md): a path grammar, the renormalised Poisson of the lengths file, hypotheses every 20 frames, a
beam of 50,000, float32 frame sums and float64 hypothesis scores, and its traceback's frame offsets.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

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


# ----------------------------------------------------------------------------- the published aligner, exactly
# Kuehne et al.'s `video_alignment` (Mining_YouTube_dataset, Python 2), re-implemented from its behaviour:
# alignment.py builds Viterbi(frame_sampling=20, max_hypotheses=50000) and PoissonModel(max_length=5000).
PUBLISHED_FRAME_SAMPLING = 20
PUBLISHED_MAX_HYPOTHESES = 50_000
PUBLISHED_MAX_LENGTH = 5_000


class NoAlignmentError(ValueError):
    """No path through the grammar has a finite score (too few or too many frames for it)."""


@dataclass(frozen=True)
class PathGrammar:
    """The allowed label sequences as a prefix tree (one node per distinct transcript prefix), class ids."""
    classes: np.ndarray  # int64 [nodes] class of the last label of the node's prefix
    parent: np.ndarray  # int64 [nodes]; -1 for a first label
    final: np.ndarray  # bool [nodes]: some transcript ends with this prefix
    keys: tuple  # per node: (-1, class ids of the prefix...), the published hypothesis key without the length


def path_grammar(transcripts: Sequence[Sequence[int]]) -> PathGrammar:
    """One transcript = one allowed sequence; several form a prefix tree, as the published PathGrammar does."""
    index: dict[tuple, int] = {}
    classes, parent, final = [], [], []
    for no, line in enumerate(transcripts):
        if len(line) == 0:
            raise ValueError(f"transcript {no} is empty")
        prefix = (-1,)
        for cid in line:
            up = index.get(prefix, -1)
            prefix = prefix + (int(cid),)
            if prefix not in index:
                index[prefix] = len(classes)
                classes.append(int(cid)), parent.append(up), final.append(False)
        final[index[prefix]] = True
    if not classes:
        raise ValueError("the grammar holds no transcript")
    return PathGrammar(np.array(classes, np.int64), np.array(parent, np.int64), np.array(final, bool),
                       tuple(sorted(index, key=index.get)))


def _log_factorials(top: int) -> np.ndarray:
    """log(l!) for l = 0..top, summed one term at a time in float64 like the published loops (libm logs,
    not numpy's vectorised log, which may differ in the last bit on some CPUs)."""
    return np.cumsum(np.array([0.0] + [math.log(k) for k in range(1, top + 1)]))


def check_mean_lengths(means: np.ndarray) -> None:
    means = np.asarray(means, np.float64)
    bad = np.flatnonzero(~np.isfinite(means) | ~(np.round(means) >= 1))
    if len(bad):
        raise ValueError(f"mean length {float(means[bad[0]])!r} of class {bad[0]} is not a number above 0.5 (the "
                         f"published normaliser takes log(round(mean)))")


def published_poisson(means: np.ndarray, lengths: np.ndarray,
                      max_length: int | None = PUBLISHED_MAX_LENGTH) -> np.ndarray:
    """log-score [len(lengths), len(means)] of a segment of `lengths` frames under the published PoissonModel:
    l log m - m - log l! - norm, norm = r log r - r - log(int(m)!) with r = round(m) (rounded and truncated mean,
    as published): the Poisson over lengths divided by its value at the mean. Length 0 and lengths >= max_length
    score -inf (the published table holds 0..max_length - 1, returns -inf above and fails at exactly max_length);
    max_length None or 0: no upper limit."""
    means, lengths = np.asarray(means, np.float64), np.asarray(lengths, np.int64)
    check_mean_lengths(means)
    inside = (lengths > 0) & ((lengths < max_length) if max_length else True)
    steps = np.where(inside, lengths, 0)
    log_fak = _log_factorials(max(int(steps.max(initial=0)), int(means.max(initial=1))))
    log_mean = np.array([math.log(m) for m in means])
    rounded = np.round(means)
    norms = rounded * np.array([math.log(r) for r in rounded]) - rounded - log_fak[means.astype(np.int64)]
    out = steps[:, None] * log_mean[None, :] - means[None, :] - log_fak[steps][:, None] - norms[None, :]
    out[~inside] = -np.inf
    return out


@dataclass(frozen=True)
class PublishedAlignment:
    score: float  # the best hypothesis' score
    step_nodes: np.ndarray  # int64 [steps]: grammar node of hypothesis step i (output frames i*fs..(i+1)*fs - 1)
    frame_nodes: np.ndarray  # int64 [frames]
    frame_classes: np.ndarray  # int64 [frames]


def step_emissions(log_probs: np.ndarray, frame_sampling: int) -> np.ndarray:
    """float64 [steps + 1, C]: row 0 = the first hypothesis' frames 0..fs-1, row 1 + i = what step i (frame
    t = i * fs) adds: frame 0 alone for t = 0, then frames t-fs+1..t. Sums come from a float32 running sum over
    frames (the published frame_scores), differenced in float32."""
    cum = np.cumsum(log_probs, axis=0)
    if not np.isfinite(cum).all():
        raise ValueError("the log-probabilities or their running sum are not finite in float32")
    t = np.arange(0, len(log_probs), frame_sampling)
    steps = cum[t]
    steps[1:] -= cum[t[1:] - frame_sampling]
    return np.vstack([cum[frame_sampling - 1][None], steps]).astype(np.float64)


@dataclass
class _Hypotheses:
    """Every live hypothesis (grammar node n, created at step c) sits at [n, c + 1]; column 0 = the first step.
    Dead cells score -inf, so adding to whole rows is harmless; `alive` tells a live -inf from a dead cell."""
    score: np.ndarray  # float64 [nodes, steps + 1]
    alive: np.ndarray  # bool [nodes, steps + 1]
    back: np.ndarray  # int64 [nodes, steps + 1]: the parent's column this hypothesis was created from
    live: np.ndarray  # int64 [nodes]: live hypotheses per node
    count: int = 0


def _advance(hyps: _Hypotheses, g: PathGrammar, step: int, emit: np.ndarray, length_score: np.ndarray,
             tree: tuple) -> None:
    """One published decode step. Staying adds the step's frames to the node's class; leaving node p scores
    stay + length(p, old length), and the child's new hypothesis keeps the best; on equal scores the longest
    old segment wins (the last one the published dict visits under insertion order)."""
    rows, parents, children, slot = tree  # rows: parents as an index or, for a run of nodes, a slice
    width = step + 1  # columns that may be alive before this step
    block = hyps.score[:, :width]
    block += emit[:, None]
    # column j has lasted step - j + 1 steps before this one: `length_score` holds lengths in reverse order
    end = length_score.shape[1]
    cand = block[rows] + length_score[rows, end - 1 - width:end - 1]
    first = np.argmax(cand, axis=1)
    best = cand[np.arange(len(parents)), first]
    dead_end = np.flatnonzero(best == -np.inf)
    if len(dead_end):
        first[dead_end] = np.argmax(hyps.alive[parents[dead_end], :width], axis=1)
    made = hyps.live[g.parent[children]] > 0
    new, src = children[made], slot[made]
    hyps.score[new, width], hyps.back[new, width], hyps.alive[new, width] = best[src], first[src], True
    hyps.live[new] += 1
    hyps.count += len(new)


def _prune(hyps: _Hypotheses, g: PathGrammar, step: int, keep: int, frame_sampling: int) -> None:
    """Keep the `keep` best (score, key) pairs as the published sort does; keys order the tied scores.
    Dead cells score -inf: below a finite cut they need no mask."""
    width = step + 2
    block, alive = hyps.score[:, :width], hyps.alive[:, :width]
    n_drop = hyps.count - keep
    cut = np.partition(block[alive], n_drop)[n_drop]  # the smallest kept score
    if cut > -np.inf:
        below = block < cut
        gone = (alive & below).sum(axis=1)
        hyps.live -= gone
        alive[below] = False
        block[below] = -np.inf
        n_drop -= int(gone.sum())
        hyps.count -= int(gone.sum())
    if n_drop:  # the rest of the drop comes from the hypotheses tied at the cut
        rows, cols = np.nonzero(alive & (block == cut))
        lengths = frame_sampling * (step - cols + 2)  # the published key ends with the segment length in frames
        order = sorted(range(len(rows)), key=lambda k: g.keys[rows[k]] + (int(lengths[k]),))[:n_drop]
        alive[rows[order], cols[order]] = False
        block[rows[order], cols[order]] = -np.inf
        np.subtract.at(hyps.live, rows[order], 1)
        hyps.count -= n_drop


def _finish(hyps: _Hypotheses, g: PathGrammar, length_score: np.ndarray) -> tuple[float, int, int]:
    """(score, node, column) of the best complete hypothesis: its final segment's length scored too. Ties: the
    longest final segment; between grammar paths, the later node."""
    ends = np.flatnonzero(g.final & (hyps.live > 0))
    width = hyps.score.shape[1]
    end = length_score.shape[1]
    cand = hyps.score[ends] + length_score[ends, end - 1 - width:end - 1]
    first = np.argmax(cand, axis=1)
    best = cand[np.arange(len(ends)), first]
    if not len(ends) or not np.isfinite(best.max()):
        raise NoAlignmentError("no path through the grammar has a finite score")
    pick = len(best) - 1 - int(np.argmax(best[::-1]))
    return float(best[pick]), int(ends[pick]), int(first[pick])


def _traceback(hyps: _Hypotheses, g: PathGrammar, node: int, col: int) -> np.ndarray:
    """Node of every step: hypothesis (node, column c + 1) covers steps c.. until its successor's creation."""
    nodes = np.empty(hyps.score.shape[1], np.int64)  # index = step + 1; index 0 = the first step
    stop = len(nodes)
    while True:
        nodes[col:stop] = node
        if col == 0:
            return nodes[1:]
        node, col, stop = int(g.parent[node]), int(hyps.back[node, col]), col


def align_published(log_probs: np.ndarray, grammar: PathGrammar, mean_lengths: np.ndarray,
                    frame_sampling: int = PUBLISHED_FRAME_SAMPLING, max_hypotheses: int = PUBLISHED_MAX_HYPOTHESES,
                    max_length: int | None = PUBLISHED_MAX_LENGTH) -> PublishedAlignment:
    """The published Viterbi of `log_probs` [frames, classes] (read as float32; shifted by -2 max when some value
    is > 0) through `grammar`, Poisson lengths of `mean_lengths` [classes] frames. Hypotheses every
    `frame_sampling` frames, at most `max_hypotheses` kept after each step, segments shorter than `max_length`
    frames (None or 0: any length). Frame f gets the node of step f // frame_sampling (the published traceback
    drops the first step's labels)."""
    logp = np.asarray(log_probs, np.float32)
    fs = int(frame_sampling)
    if fs < 1 or max_hypotheses < 1:
        raise ValueError("frame_sampling and max_hypotheses must be >= 1")
    if logp.ndim != 2 or len(logp) < fs:
        raise NoAlignmentError(f"{len(logp)} frames: the published decoder needs at least {fs} frames")
    peak = logp.max()
    if peak > 0:
        logp = logp - 2 * peak
    used, column = np.unique(grammar.classes, return_inverse=True)
    emit = step_emissions(logp[:, used], fs)[:, column.reshape(-1)]  # [steps + 1, nodes]
    n_steps, n_nodes = len(emit) - 1, len(grammar.classes)
    lengths = published_poisson(np.asarray(mean_lengths, np.float64)[used], fs * np.arange(n_steps + 2), max_length)
    length_score = np.ascontiguousarray(lengths[::-1, column.reshape(-1)].T)  # [nodes, steps + 2]: longest first
    hyps = _Hypotheses(np.full((n_nodes, n_steps + 1), -np.inf), np.zeros((n_nodes, n_steps + 1), bool),
                       np.full((n_nodes, n_steps + 1), -1, np.int64), np.zeros(n_nodes, np.int64))
    roots = np.flatnonzero(grammar.parent < 0)
    hyps.score[roots, 0], hyps.alive[roots, 0], hyps.live[roots], hyps.count = emit[0, roots], True, 1, len(roots)
    children = np.flatnonzero(grammar.parent >= 0)
    parents = np.unique(grammar.parent[children])
    rows = parents
    if len(parents) and parents[-1] - parents[0] + 1 == len(parents):  # a run of nodes: slice, don't copy
        rows = slice(int(parents[0]), int(parents[-1]) + 1)
    tree = (rows, parents, children, np.searchsorted(parents, grammar.parent[children]))
    for step in range(n_steps):
        _advance(hyps, grammar, step, emit[step + 1], length_score, tree)
        if hyps.count > max_hypotheses:
            _prune(hyps, grammar, step, max_hypotheses, fs)
    score, node, col = _finish(hyps, grammar, length_score)
    step_nodes = _traceback(hyps, grammar, node, col)
    frame_nodes = step_nodes[np.arange(len(logp)) // fs]
    return PublishedAlignment(score, step_nodes, frame_nodes, grammar.classes[frame_nodes])
