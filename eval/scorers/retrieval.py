"""Text-video retrieval from `/retrieval/<level>` similarity matrices: text-to-video (t2v: sentence -> clip,
paragraph -> video) and video-to-text (v2t) R@K for the cutoffs `ranks` (percent), median and mean rank, per
level ("clip": clip-sentence, "video": video-paragraph; eval.metrics.retrieval for ranks and protocols).

Per benchmark, what COOT reports (the defaults of `ranks` and `levels`; both can be set):
- activitynet (val1): the video level only, R@1, R@5, R@50, median rank (COOT Table 2: paragraph => video and
  video => paragraph); its clips build the video representation and are not scored.
- youcook2 (validation) and the others: every level in the file, R@1, R@5, R@10, median rank (COOT Table 3:
  paragraph => video, sentence => clip; the reverse directions are reported as well).

Ground truth: the item ids. With a benchmark (`--benchmark gyt|youcook2|mining`), the expected items are its
timed queries (eval.scorers.timed_queries): clips "<video_id>/<query_id>" and the videos that have any; rows and
columns of other ids are dropped (counted as `extra` and reported in a warning), and an expected item absent
from the rows or the columns fails the run, or with `--missing miss` ranks n + 1 as a query (its correct
candidate absent: after every candidate) and never outranks anything as a candidate. Without a benchmark every
row id and every column id is an item (each needs its partner of the same id, else the same missing rule
applies).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from eval.metrics.retrieval import check_cutoffs, ranks, summarise
from eval.predictions import Predictions, RetrievalPrediction
from eval.scorers.common import MissingPredictionsError, ScoreError, check_missing_policy, warn_unscored
from eval.scorers.timed_queries import load_timed_queries


@dataclass(frozen=True)
class RetrievalConfig:
    benchmark_dir: str | None = None          # a path (a str, so that pipeline.config can set it)
    benchmark: str | None = None              # gyt | youcook2 | mining; None: the file's own ids are the items
    annotations: str | None = None
    subset: str = "validation"
    protocol: str = "paper"
    missing: str = "fail"
    ranks: tuple[int, ...] | None = None      # R@K cutoffs; None: the benchmark's (module docstring)
    levels: tuple[str, ...] | None = None     # levels scored; None: the benchmark's (module docstring)


# COOT Table 2 (ActivityNet val1): paragraph level, R@1/5/50; Table 3 (YouCook2): R@1/5/10.
BENCHMARK_RANKS = {"activitynet": (1, 5, 50)}
BENCHMARK_LEVELS = {"activitynet": ("video",)}
DEFAULT_RANKS = (1, 5, 10)
LEVELS = ("clip", "video")


def cutoffs(cfg: RetrievalConfig) -> tuple[int, ...]:
    ks = cfg.ranks if cfg.ranks is not None else BENCHMARK_RANKS.get(cfg.benchmark or "", DEFAULT_RANKS)
    try:
        return check_cutoffs(ks)
    except ValueError as exc:
        raise ScoreError(f"--ranks: {exc}") from None


def scored_levels(cfg: RetrievalConfig, preds: Predictions) -> list[str]:
    """The levels to score: `levels` (each must be in the file) or the benchmark's, else every level present."""
    wanted = cfg.levels if cfg.levels is not None else BENCHMARK_LEVELS.get(cfg.benchmark or "")
    if wanted is None:
        return sorted(preds.retrieval)
    unknown = [lv for lv in wanted if lv not in LEVELS]
    if unknown or not wanted:
        raise ScoreError(f"levels: {list(wanted)}: each must be one of {list(LEVELS)}")
    absent = [lv for lv in wanted if lv not in preds.retrieval]
    if absent:
        raise ScoreError(f"{preds.path}: no /retrieval/{absent[0]} group (levels scored: {list(wanted)})")
    return list(wanted)


def expected_items(cfg: RetrievalConfig) -> dict[str, list[str]] | None:
    """{"clip": clip ids, "video": video ids} of the benchmark, or None without one."""
    if cfg.benchmark is None:
        return None
    if cfg.benchmark_dir is None:
        raise ScoreError("--benchmark needs --benchmark-dir")
    queries = load_timed_queries(cfg.benchmark, cfg.benchmark_dir, cfg.annotations, cfg.subset)
    return {"clip": [q.clip_id for q in queries], "video": sorted({q.video_id for q in queries})}


def level_ranks(pred: RetrievalPrediction, items: list[str], protocol: str) -> tuple[np.ndarray, np.ndarray, list]:
    """(t2v ranks, v2t ranks, missing ids) over `items`: the matrix restricted to them, absent candidates
    scoring below every present one, absent queries ranking len(items) + 1."""
    rows, cols = {t: i for i, t in enumerate(pred.text_ids)}, {v: j for j, v in enumerate(pred.video_ids)}
    n = len(items)
    scores = np.full((n, n), -np.inf)
    r = np.array([rows.get(t, -1) for t in items])
    c = np.array([cols.get(v, -1) for v in items])
    have_r, have_c = np.flatnonzero(r >= 0), np.flatnonzero(c >= 0)
    scores[np.ix_(have_r, have_c)] = pred.scores[np.ix_(r[have_r], c[have_c])]
    both = (r >= 0) & (c >= 0)
    positive = np.where(both, np.arange(n), -1)
    t2v = ranks(scores, positive, protocol)
    v2t = ranks(scores.T, positive, protocol)
    missing = [items[k] for k in np.flatnonzero(~both)]
    return t2v, v2t, missing


def score(cfg: RetrievalConfig, preds: Predictions) -> dict:
    check_missing_policy(cfg.missing)
    preds.require_task("retrieval")
    if not preds.retrieval:
        raise ScoreError(f"{preds.path}: no /retrieval groups")
    ks, levels = cutoffs(cfg), scored_levels(cfg, preds)
    expected = expected_items(cfg)
    metrics: dict = {"levels": levels, "protocol": cfg.protocol, "benchmark": cfg.benchmark, "ranks": list(ks),
                     "unscored_levels": sorted(set(preds.retrieval) - set(levels))}
    for level in levels:
        pred = preds.retrieval[level]
        items = expected[level] if expected else sorted(set(pred.text_ids) | set(pred.video_ids))
        t2v, v2t, missing = level_ranks(pred, items, cfg.protocol)
        if missing and cfg.missing == "fail":
            raise MissingPredictionsError(f"{level} items (a row and a column each)", missing)
        for direction, rank in (("t2v", t2v), ("v2t", v2t)):
            metrics.update({f"{level}_{direction}_{k}": v for k, v in summarise(rank, cfg.protocol, ks).items()})
        metrics[f"{level}_missing"] = missing
        extra = warn_unscored(preds.path, f"/retrieval/{level} id(s)",
                              (set(pred.text_ids) | set(pred.video_ids)) - set(items))
        metrics[f"{level}_extra"] = len(extra)
    return metrics
