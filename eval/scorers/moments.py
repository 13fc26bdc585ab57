"""Moment retrieval: each timed query of a benchmark (eval.scorers.timed_queries) grounded in its untrimmed
video by ranked proposals `/moments/<video_id>/<query_id>`; R@n at IoU thresholds and mIoU
(eval.metrics.moments), overall and per video.

A benchmark query without a group fails the run, or with `--missing miss` counts as a query without proposals
(never recalled, IoU 0); groups for queries the benchmark does not have are not scored: counted
(`extra_queries`) and reported in a warning. No published script evaluates WSRA on these benchmarks: both
protocols use these definitions.

DiDeMo (`benchmark=didemo`) is scored by its own published evaluation instead (eval.metrics.moments.didemo_metrics:
Rank@n over the mean of each query's 3 best annotator ranks, mIoU over the 3 best top-1 IoUs): every proposal must
be one of the 21 candidate moments (whole 5-s segments; anything else is refused naming the group); `ious` do not
apply. With fewer than 21 proposals, an annotator's moment not among them ranks last (infinite).
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from eval.metrics.moments import IOUS, RANKS, didemo_metrics, moment_metrics, seconds_to_segments
from eval.predictions import Predictions
from eval.scorers.common import MissingPredictionsError, ScoreError, check_missing_policy, warn_unscored
from eval.scorers.timed_queries import load_timed_queries


@dataclass(frozen=True)
class MomentsConfig:
    benchmark_dir: str                        # a path (a str, so that pipeline.config can set it)
    benchmark: str = "gyt"                    # gyt | youcook2 | mining | charades-sta | didemo (timed_queries)
    annotations: str | None = None            # the benchmark's segments file / .srt directory (default: its own)
    subset: str = "validation"                # youcook2 subset
    protocol: str = "paper"
    missing: str = "fail"
    ranks: tuple[int, ...] = RANKS
    ious: tuple[float, ...] = IOUS


def score(cfg: MomentsConfig, preds: Predictions) -> dict:
    check_missing_policy(cfg.missing)
    preds.require_task("moments")
    queries = load_timed_queries(cfg.benchmark, cfg.benchmark_dir, cfg.annotations, cfg.subset)
    found = preds.moments
    missing = [q.clip_id for q in queries if q.query_id not in found.get(q.video_id, {})]
    if missing and cfg.missing == "fail":
        raise MissingPredictionsError("queries", missing)
    empty = np.zeros((0, 3), np.float32)
    proposals = [found[q.video_id][q.query_id].proposals if q.query_id in found.get(q.video_id, {}) else empty
                 for q in queries]
    if cfg.benchmark == "didemo":
        truths = [[seconds_to_segments(np.array(t)[None])[0] for t in q.times] for q in queries]
        proposals = [_candidates(preds.path, q, p) for q, p in zip(queries, proposals)]

        def metric(props, gts):
            return didemo_metrics(props, gts, cfg.ranks)
    else:
        truths = [(q.start, q.end) for q in queries]

        def metric(props, gts):
            return moment_metrics(props, gts, cfg.ranks, cfg.ious)
    metrics = metric(proposals, truths)
    by_video: dict[str, list[int]] = defaultdict(list)
    for k, q in enumerate(queries):
        by_video[q.video_id].append(k)
    per_video = {vid: metric([proposals[k] for k in ks], [truths[k] for k in ks]) for vid, ks in by_video.items()}
    known = {q.clip_id for q in queries}
    extra = len(warn_unscored(preds.path, "predicted query(ies)",
                              {f"{vid}/{qid}" for vid, qs in found.items() for qid in qs} - known))
    return {**metrics, "videos": len(by_video), "per_video": per_video, "missing_queries": missing,
            "extra_queries": extra, "benchmark": cfg.benchmark, "protocol": cfg.protocol}


def _candidates(path, query, proposals: np.ndarray) -> list[tuple[int, int]]:
    """A DiDeMo query's ranked proposals as segment spans; ScoreError naming the group when one is not a
    candidate moment."""
    try:
        return seconds_to_segments(proposals)
    except ValueError as exc:
        raise ScoreError(f"{path}: /moments/{query.clip_id}: {exc}") from None
