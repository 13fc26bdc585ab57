"""Moment retrieval (task `moments`) from a snippet adapter (kind "snippets": WSRA's referring attention).

A video is cut into snippets (the adapter's `snippets`: frames mean-pooled) and each query's attention alpha
over them ranks sliding windows (WSRA Sec. 4.2, Charades-STA): lengths that are fractions of the video
(`moments.relative`) or seconds, overlapping by `moments.overlap`; a window scores the mean (`score=mean`) or
the sum of alpha over its snippets; the `top` best are written, best first, after an optional greedy
non-maximum suppression at IoU `nms` (1.0: none, as the paper describes no suppression). `chance_moments` is
the expected figure of ranking the same windows at random.

DiDeMo (`--benchmark didemo`) has fixed candidates instead of sliding windows (its protocol, the DiDeMo paper
Sec. 4; WSRA Sec. 4.1): the 21 spans of 1-6 whole 5-s segments (manifests.benchmarks.didemo.CANDIDATES), each
scored by the mean (or sum, `moments.score`) of alpha over the snippets whose middle lies in it (0 for a span no
snippet reaches, e.g. past the end of a 25-s video), all 21 written (Rank@5 of the published eval can depend on
ranks up to 13), no suppression; `moments.lengths`, `overlap`, `relative`, `top` and `nms` do not apply.
Charades-STA uses the sliding windows with the defaults (WSRA Sec. 4.2; preset `charades-sta`), over the
snippets the store holds: the video's length is the extracted video's (the annotation file has none).
"""
from __future__ import annotations

import numpy as np

from eval.inference.config import MomentsConfig
from eval.inference.errors import InferenceError
from eval.inference.features import MissingFeatures
from eval.inference.output import Output, progress
from eval.inference.queries import benchmark_queries, encode_queries, video_frames
from eval.inference.session import Session
from eval.metrics.moments import chance_moment_metrics, interval_iou
from manifests.benchmarks.didemo import CANDIDATES, span_seconds


def windows(n: int, snippet_s: float, cfg: MomentsConfig) -> np.ndarray:
    """Candidate windows [k, 2] as snippet index ranges [first, stop) over n snippets (duplicates removed)."""
    found = set()
    for length in cfg.lengths:
        size = max(1, min(n, round(length * n if cfg.relative else length / snippet_s)))
        stride = max(1, round(size * (1 - cfg.overlap)))
        starts = list(range(0, n - size + 1, stride))
        if starts[-1] != n - size:
            starts.append(n - size)                      # the last window ends at the video's end
        found.update((s, s + size) for s in starts)
    return np.array(sorted(found), np.int64)


def window_times(starts: np.ndarray, ends: np.ndarray, spans: np.ndarray) -> np.ndarray:
    """(start s, end s) [k, 2] of snippet windows [k, 2] over snippets that start and end at `starts`, `ends`."""
    return np.stack([starts[spans[:, 0]], ends[spans[:, 1] - 1]], axis=1)


def rank_windows(alpha: np.ndarray, spans: np.ndarray, starts: np.ndarray, ends: np.ndarray,
                 cfg: MomentsConfig) -> np.ndarray:
    """Ranked proposals [top, 3] (start s, end s, score) of one query from its snippet attention alpha [n]."""
    cum = np.concatenate([[0.0], np.cumsum(alpha, dtype=np.float64)])
    total = cum[spans[:, 1]] - cum[spans[:, 0]]
    score = total / (spans[:, 1] - spans[:, 0]) if cfg.score == "mean" else total
    order = np.argsort(-score, kind="stable")
    props = np.concatenate([window_times(starts, ends, spans[order]), score[order, None]], axis=1)
    if cfg.nms < 1.0:
        kept: list[int] = []
        for k in range(len(props)):
            if not kept or interval_iou(props[kept], props[k, :2]).max() < cfg.nms:
                kept.append(k)
            if len(kept) == cfg.top:
                break
        props = props[kept]
    return props[: cfg.top].astype(np.float32)


def rank_didemo(alpha: np.ndarray, starts: np.ndarray, ends: np.ndarray, cfg: MomentsConfig) -> np.ndarray:
    """The 21 DiDeMo candidates [21, 3] (start s, end s, score), best first (ties in CANDIDATES order), scored by
    the mean (or sum) of alpha [n] over the snippets [starts, ends) whose middle lies in the candidate."""
    spans = np.array([span_seconds(c) for c in CANDIDATES], np.float64)
    middle = (np.asarray(starts, np.float64) + np.asarray(ends, np.float64)) / 2
    member = (middle[None] >= spans[:, :1]) & (middle[None] < spans[:, 1:])          # [21, n]
    total = member.astype(np.float64) @ np.asarray(alpha, np.float64)
    count = member.sum(1)
    score = (np.divide(total, count, out=np.zeros_like(total), where=count > 0) if cfg.score == "mean"
             else total)
    order = np.argsort(-score, kind="stable")
    return np.concatenate([spans[order], score[order, None]], axis=1).astype(np.float32)


def infer_moments(session: Session, benchmark: str, benchmark_dir) -> Output:
    """Ranked proposals `/moments/<video>/<query>` of every timed query of the benchmark."""
    by_video = benchmark_queries(benchmark, benchmark_dir)
    out = Output(files={"benchmark": benchmark})
    model, cfg = session.model, session.cfg.moments
    for vid in progress(session, session.check_present(list(by_video), out.missing), "moments"):
        try:
            starts, ends, feats = model.snippets(*video_frames(session, vid))
        except MissingFeatures as exc:
            session.miss(out.missing, [q.clip_id for q in by_video[vid]], exc)
            continue
        queries = encode_queries(session, vid, by_video[vid])
        _, alpha = model.scores(feats, queries)
        spans = windows(len(feats), model.snippet_s, cfg)
        for k, qid in enumerate(queries.query_ids):
            props = (rank_didemo(alpha[k], starts, ends, cfg) if benchmark == "didemo"
                     else rank_windows(alpha[k], spans, starts, ends, cfg))
            out.moments.append((vid, qid, queries.texts[k], props))
        out.counts["queries"] += len(queries.query_ids)
    out.counts["videos"] = len(by_video)
    if not out.moments:
        raise InferenceError(f"{session.store.root}: no video of the {benchmark} queries has frames")
    return out


def chance_moments(session: Session, benchmark: str, benchmark_dir) -> dict:
    """The expected metrics of ranking each video's candidate windows (those the adapter's snippets give) at
    random. A query whose video has no frames has no candidates (never recalled, as `--missing miss` scores).
    The sliding-window protocol only: DiDeMo's own metrics have no such closed form here."""
    if benchmark == "didemo":
        raise InferenceError("chance_moments: the sliding-window protocol only, not didemo's 21 fixed candidates")
    by_video = benchmark_queries(benchmark, benchmark_dir)
    candidates, spans_of = {}, []
    for vid, queries in sorted(by_video.items()):
        try:
            starts, ends, _ = session.model.snippets(*video_frames(session, vid))
        except MissingFeatures:
            starts = ends = np.zeros(0)
        candidates[vid] = (window_times(starts, ends, windows(len(starts), session.model.snippet_s,
                                                              session.cfg.moments))
                           if len(starts) else np.zeros((0, 2)))
        spans_of += [(vid, (q.start, q.end)) for q in queries]
    metrics = chance_moment_metrics([candidates[v] for v, _ in spans_of], [s for _, s in spans_of])
    return {**metrics, "videos": len(candidates), "benchmark": benchmark, "expected_value": True}
