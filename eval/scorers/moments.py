"""Moment retrieval: each timed query of a benchmark (eval.scorers.timed_queries) grounded in its untrimmed
video by ranked proposals `/moments/<video_id>/<query_id>`; R@n at IoU thresholds and mIoU
(eval.metrics.moments), overall and per video.

A benchmark query without a group fails the run, or with `--missing miss` counts as a query without proposals
(never recalled, IoU 0); groups for queries the benchmark does not have are not scored: counted
(`extra_queries`) and reported in a warning. No published script evaluates WSRA on these benchmarks: both
protocols use these definitions.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from eval.metrics.moments import IOUS, RANKS, moment_metrics
from eval.predictions import Predictions
from eval.scorers.common import MissingPredictionsError, check_missing_policy, warn_unscored
from eval.scorers.timed_queries import load_timed_queries


@dataclass(frozen=True)
class MomentsConfig:
    benchmark_dir: str                        # a path (a str, so that pipeline.config can set it)
    benchmark: str = "gyt"                    # gyt | youcook2 | mining (eval.scorers.timed_queries)
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
    truths = [(q.start, q.end) for q in queries]
    metrics = moment_metrics(proposals, truths, cfg.ranks, cfg.ious)
    by_video: dict[str, list[int]] = defaultdict(list)
    for k, q in enumerate(queries):
        by_video[q.video_id].append(k)
    per_video = {vid: moment_metrics([proposals[k] for k in ks], [truths[k] for k in ks], cfg.ranks, cfg.ious)
                 for vid, ks in by_video.items()}
    known = {q.clip_id for q in queries}
    extra = len(warn_unscored(preds.path, "predicted query(ies)",
                              {f"{vid}/{qid}" for vid, qs in found.items() for qid in qs} - known))
    return {**metrics, "videos": len(by_video), "per_video": per_video, "missing_queries": missing,
            "extra_queries": extra, "benchmark": cfg.benchmark, "protocol": cfg.protocol}
