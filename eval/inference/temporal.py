"""Per-second label scores from similarities, the background rule, and the runs that become GYT tubes.

A video's similarity matrix S [seconds, actions] (a grounding adapter's: cosine of normalised global embeddings, or
CoMMA's local dot product) is mapped to scores (`temporal.mapping`):
- `raw`: S itself: the threshold compares with the cosine (the paper's words, "normalize the global feature
  ... threshold 0.5", read literally);
- `affine`: (S + 1) / 2, the cosine moved onto [0, 1];
- `minmax` (default): (S - min S) / (max S - min S) over the video's seconds and actions, so 0.5 is the
  middle of this video's similarity range whatever the backbone's cosine scale (frozen CLIP cosines sit near
  0.2-0.3, a trained head's anywhere); a video whose similarities are all equal scores 0 (background);
- `softmax`: softmax(S / temperature) over the video's actions per second (a distribution over the pool).
An empty second (its stored row is all zeros, eval.feature_checks.empty_rows: it shows nothing, and its
similarity is the same, cosine 0, to every text) is evidence for no action: it takes no part in the min-max
range (one blank frame would otherwise stretch the range of every other second) and every action scores the
floor of the mapping's scale (0 for minmax, affine and softmax; -1 for raw cosines, the video's lowest
similarity for raw dot products), so it is background for any threshold above that floor.
Then a centred moving average over `temporal.smooth` seconds (edges repeated). The written `/temporal`
scores hold these action scores and, as the background column, the threshold itself: the label of a second is
its first maximum, so a second is background exactly when every action scores below the threshold, else the
action with the largest score (ties: the first in the pool's order).
"""
from __future__ import annotations

import numpy as np

from eval.inference.config import TemporalConfig
from eval.inference.errors import InferenceError
from eval.predictions import BACKGROUND


def map_similarity(sim: np.ndarray, cfg: TemporalConfig, kind: str, empty: np.ndarray | None = None) -> np.ndarray:
    """Action scores [n, L] from similarities [n, L] (`kind`: "cosine" or "dot"); `empty` [n] marks the
    seconds that show nothing (scored at the mapping's floor)."""
    sim = sim.astype(np.float64)
    empty = np.zeros(len(sim), bool) if empty is None else np.asarray(empty, bool)
    seen = sim[~empty]
    if cfg.mapping == "raw":
        out = sim
        floor = -1.0 if kind == "cosine" else (seen.min() if seen.size else 0.0)
    elif cfg.mapping == "affine":
        if kind != "cosine":
            raise InferenceError("temporal.mapping=affine needs cosine similarities (a global branch); use minmax")
        out, floor = (sim + 1.0) / 2.0, 0.0
    elif cfg.mapping == "minmax":
        lo, hi = (seen.min(), seen.max()) if seen.size else (0.0, 0.0)
        out = (sim - lo) / (hi - lo) if hi > lo else np.zeros_like(sim)
        floor = 0.0
    else:
        z = sim / cfg.temperature
        z = np.exp(z - z.max(axis=1, keepdims=True))
        out, floor = z / z.sum(axis=1, keepdims=True), 0.0
    out[empty] = floor
    return smooth(out, cfg.smooth)


def smooth(scores: np.ndarray, window: int) -> np.ndarray:
    """Centred moving average over `window` (odd) rows, edges repeated."""
    if window <= 1 or len(scores) == 0:
        return scores
    half = window // 2
    padded = np.concatenate([np.repeat(scores[:1], half, 0), scores, np.repeat(scores[-1:], half, 0)])
    sums = np.cumsum(np.concatenate([np.zeros((1, scores.shape[1])), padded]), axis=0)
    return (sums[window:] - sums[:-window]) / window


def snippet_scores(phi: np.ndarray, starts: np.ndarray, snippet_s: float) -> np.ndarray:
    """A snippet adapter's per-second action scores [n_seconds, L] from its snippet scores phi [L, n] of snippets
    starting at `starts`: row s = the snippet holding second s (1-s snippets at 1 fps: second s itself), used as
    they are (WSRA's phi is the score its referring attention normalises); a second in no snippet scores 0."""
    n_seconds = int(np.ceil(starts[-1] + snippet_s - 1e-9)) if len(starts) else 0
    out = np.zeros((n_seconds, phi.shape[0]), np.float32)
    second = np.arange(n_seconds)
    which = np.searchsorted(starts, second, side="right") - 1
    inside = (which >= 0) & (second < starts[which.clip(0)] + snippet_s - 1e-9)
    out[inside] = phi[:, which[inside]].T
    return out


def pool_scores(action_scores: np.ndarray, pool: list[str], threshold: float) -> np.ndarray:
    """float32 [n, len(pool)]: the action columns in pool order and the background column = threshold.
    `action_scores` columns follow the pool without its background entry."""
    out = np.full((len(action_scores), len(pool)), threshold, np.float32)
    out[:, [i for i, name in enumerate(pool) if name != BACKGROUND]] = action_scores
    return out


def action_labels(pool: list[str]) -> list[str]:
    if pool.count(BACKGROUND) != 1 or len(set(pool)) != len(pool):
        raise InferenceError(f"a label pool needs unique labels and one {BACKGROUND!r}, got {pool}")
    return [name for name in pool if name != BACKGROUND]


def label_runs(scores: np.ndarray, pool: list[str]) -> list[tuple[str, int, int]]:
    """(label, first second, last second) of each maximal run of a predicted action label, in time order;
    the predicted label of a second is the first maximum of its row (what the scorers read)."""
    names = np.asarray(pool, dtype=object)[np.argmax(scores, axis=1)]
    runs, start = [], 0
    for t in range(1, len(names) + 1):
        if t == len(names) or names[t] != names[start]:
            if names[start] != BACKGROUND:
                runs.append((str(names[start]), start, t - 1))
            start = t
    return runs


def log_probabilities(scores: np.ndarray, temperature: float) -> np.ndarray:
    """log_softmax(scores / temperature) per row, float32 (the mining scorer's log-softmax leaves it as is)."""
    z = scores.astype(np.float64) / temperature
    z = z - z.max(axis=1, keepdims=True)
    return (z - np.log(np.exp(z).sum(axis=1, keepdims=True))).astype(np.float32)
