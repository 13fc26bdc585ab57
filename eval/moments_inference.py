"""WSRA inference: referring attention of a trained `wsra` run over a store's untrimmed videos, written as ranked
moment proposals (task "moments") or as per-second label scores (`/temporal`, tasks "gyt" and "mining").

    from eval.moments_inference import ProposalConfig, infer_moments, infer_temporal
    infer_moments("runs/wsra", "store.zarr", "moments.h5", kinds=("step",))     # -> eval.score moments
    infer_temporal("runs/wsra", "store.zarr", "gyt.h5", task="gyt")              # -> eval.score gyt / mining

A video is cut into snippets of data.snippet_s seconds (frames mean-pooled; no cap on their number, unlike
training); phi(v_s, t) scores every snippet for a query and alpha = softmax(phi / T) (eq. 2) is its referring
attention. Proposals (WSRA Sec. 4.2, Charades-STA): sliding windows whose lengths are fractions of the video
(`relative`) or seconds, overlapping by `overlap`; a window's score is the mean (`score=mean`) or the sum
(`score=sum`) of alpha over its snippets; the `top` best are written, best first, after an optional greedy
non-maximum suppression at IoU `nms` (1.0: none, as the paper describes no suppression).
Per-second scores: row s = the snippet holding second s (1-s snippets at 1 fps: second s itself); column l =
phi(v_s, label l); the "background" column is the constant `background` (a second takes the best label whose
phi beats it). Label texts: the video's captions of `kinds` (gyt: its "query" pool from vid2step.json;
mining: its "label" captions), "background" itself excluded.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from eval.metrics.moments import interval_iou
from eval.predictions import BACKGROUND, PredictionsMeta, PredictionsWriter
from eval.store_queries import RankedInferenceError, VideoQueries, open_run, video_frames, video_queries
from trainer.video_data import snippets


@dataclass(frozen=True)
class ProposalConfig:
    lengths: tuple[float, ...] = (0.2, 0.3, 0.4, 0.5)   # window lengths (WSRA on Charades-STA: 20-50 % of the video)
    relative: bool = True                               # lengths are fractions of the video (else seconds)
    overlap: float = 0.8                                # of consecutive windows of one length (paper: 80 %)
    score: str = "mean"                                 # "mean" or "sum" of alpha over the window
    top: int = 5                                        # proposals written per query (R@5 needs 5)
    nms: float = 1.0                                    # greedy suppression IoU (1.0: off)

    def __post_init__(self) -> None:
        if not self.lengths or min(self.lengths) <= 0 or not 0 <= self.overlap < 1 or self.top < 1:
            raise ValueError("need lengths > 0, 0 <= overlap < 1 and top >= 1")
        if self.score not in ("mean", "sum"):
            raise ValueError(f"unknown proposal score {self.score!r}")


def windows(n: int, snippet_s: float, cfg: ProposalConfig) -> np.ndarray:
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
                 cfg: ProposalConfig) -> np.ndarray:
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


@torch.no_grad()
def snippet_scores(head, feats: np.ndarray, queries: VideoQueries, device) -> tuple[np.ndarray, np.ndarray]:
    """(phi [Q, n], alpha [Q, n]) of every query over the video's snippets [n, Dg]."""
    v = head.snippets(torch.from_numpy(np.asarray(feats, np.float32)).to(device))[None]        # [1, n, d]
    t = head.query(torch.from_numpy(queries.sentence.astype(np.float32)).to(device),
                   torch.from_numpy(queries.words.astype(np.float32)).to(device),
                   torch.from_numpy(queries.mask).to(device))                                 # [Q, d]
    phi = head.snippet_scores(v, t)                                                            # [Q, n]
    alpha = head.attention_from(phi, torch.ones_like(phi, dtype=torch.bool))
    return phi.float().cpu().numpy(), alpha.float().cpu().numpy()


def infer_moments(run: str, store: str, out: str, queries: dict[str, VideoQueries] | None = None,
                  kinds: tuple[str, ...] = ("step",), videos: list[str] | None = None,
                  proposals: ProposalConfig = ProposalConfig(), store_fps: float | None = None,
                  device: str = "cpu") -> dict:
    """Ranked proposals `/moments/<video>/<query>` of every query: `queries` (video -> VideoQueries with text
    features, e.g. encoded from annotation files) or, when None, the store's timed captions of `kinds`. Frames
    of the segments extracted at `store_fps` (None: all). Returns a summary."""
    trained, feature_store = open_run(run, store, "wsra", device)
    cfg, encoder = trained.config, trained.config.data.encoder
    meta = PredictionsMeta("moments", "wsra", "paper", {"run": str(run), "step": trained.step, "store": str(store),
                                                        "kinds": list(kinds), "proposals": vars(proposals)})
    count, skipped = 0, []
    with PredictionsWriter(out, meta) as writer:
        for vid in videos or (sorted(queries) if queries is not None else feature_store.video_ids()):
            queries_of_video = (queries.get(vid) if queries is not None
                                else video_queries(feature_store, vid, encoder, kinds))
            if queries_of_video is None:
                continue
            starts, ends, feats = snippets(*video_frames(feature_store, vid, encoder, store_fps),
                                           cfg.data.snippet_s)
            if not len(feats):
                skipped += [f"{vid}/{qid}" for qid in queries_of_video.query_ids]
                continue
            _, alpha = snippet_scores(trained.head, feats, queries_of_video, device)
            spans = windows(len(feats), cfg.data.snippet_s, proposals)
            for k, qid in enumerate(queries_of_video.query_ids):
                writer.add_moments(vid, qid, queries_of_video.texts[k],
                                   rank_windows(alpha[k], spans, starts, ends, proposals))
                count += 1
        if not count:  # inside the writer: no file is left behind
            raise RankedInferenceError(f"{store}: no video has timed captions of kinds {list(kinds)} with frames")
    return {"queries": count, "skipped": skipped, "out": str(out)}


def label_scores(phi: np.ndarray, starts: np.ndarray, snippet_s: float, background: float) -> np.ndarray:
    """Per-second scores [n_seconds, L + 1] (background last) from snippet scores phi [L, n] of snippets
    starting at `starts`; seconds in no snippet score 0 for every label."""
    n_seconds = int(np.ceil(starts[-1] + snippet_s - 1e-9))
    out = np.zeros((n_seconds, phi.shape[0] + 1), np.float32)
    out[:, -1] = background
    second = np.arange(n_seconds)
    which = np.searchsorted(starts, second, side="right") - 1
    inside = (which >= 0) & (second < starts[which.clip(0)] + snippet_s - 1e-9)
    out[inside, :-1] = phi[:, which[inside]].T
    return out


def infer_temporal(run: str, store: str, out: str, task: str = "gyt", kinds: tuple[str, ...] | None = None,
                   videos: list[str] | None = None, background: float = 0.5, store_fps: float | None = None,
                   device: str = "cpu") -> dict:
    """`/temporal/<video>` per-second label scores for the gyt or mining scorer; returns a summary."""
    if task not in ("gyt", "mining"):
        raise RankedInferenceError(f"per-second scores are for the gyt and mining scorers, not {task!r}")
    kinds = kinds or (("query",) if task == "gyt" else ("label",))
    trained, feature_store = open_run(run, store, "wsra", device)
    cfg, encoder = trained.config, trained.config.data.encoder
    meta = PredictionsMeta(task, "wsra", "paper", {"run": str(run), "step": trained.step, "store": str(store),
                                                   "kinds": list(kinds), "background": background})
    written = 0
    with PredictionsWriter(out, meta) as writer:
        for vid in videos or feature_store.video_ids():
            queries = video_queries(feature_store, vid, encoder, kinds, timed=False)
            if queries is None:
                continue
            first: dict[str, int] = {}                   # each label text once, at its first caption
            for k, text in enumerate(queries.texts):
                if text != BACKGROUND:
                    first.setdefault(text, k)
            starts, _, feats = snippets(*video_frames(feature_store, vid, encoder, store_fps),
                                        cfg.data.snippet_s)
            if not first or not len(feats):
                continue
            labels = sorted(first, key=first.get)
            rows = [first[label] for label in labels]
            pick = VideoQueries(vid, tuple(labels), tuple(labels), *(x[rows] for x in (
                queries.start, queries.end, queries.sentence, queries.words, queries.mask)))
            phi, _ = snippet_scores(trained.head, feats, pick, device)
            writer.add_temporal(vid, [*labels, BACKGROUND], label_scores(phi, starts, cfg.data.snippet_s, background))
            written += 1
        if not written:
            raise RankedInferenceError(f"{store}: no video has captions of kinds {list(kinds)} with frames")
    return {"videos": written, "out": str(out)}


def chance_moments(run: str, store: str, benchmark_dir: str, benchmark: str = "gyt",
                   proposals: ProposalConfig = ProposalConfig(), store_fps: float | None = None) -> dict:
    """The chance level of infer_moments with `proposals` on a benchmark's timed queries: the expected metrics of
    ranking each video's candidate windows (those the run's snippets give) at random. A query whose video has no
    frames in the store has no candidates (never recalled, as `--missing miss` scores it)."""
    from eval.metrics.moments import chance_moment_metrics
    from eval.scorers.timed_queries import load_timed_queries

    trained, feature_store = open_run(run, store, "wsra")
    snippet_s, encoder = trained.config.data.snippet_s, trained.config.data.encoder
    queries = load_timed_queries(benchmark, benchmark_dir)
    stored = set(feature_store.video_ids())
    candidates: dict[str, np.ndarray] = {}
    for vid in sorted({q.video_id for q in queries}):
        candidates[vid] = np.zeros((0, 2))
        if vid in stored:
            starts, ends, _ = snippets(*video_frames(feature_store, vid, encoder, store_fps), snippet_s)
            if len(starts):
                candidates[vid] = window_times(starts, ends, windows(len(starts), snippet_s, proposals))
    metrics = chance_moment_metrics([candidates[q.video_id] for q in queries], [(q.start, q.end) for q in queries])
    return {**metrics, "videos": len(candidates), "benchmark": benchmark, "expected_value": True}
