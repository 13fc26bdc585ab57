"""Inference per scorer task: a session (store + method adapter) and the benchmark's annotation files -> the
groups of a predictions file, exactly those the scorer asks for (the scorers' own query plans and video lists).

- gyt-spatial, youcook, youcook-bb: one `/spatial` group per query of `query_plan`: heatmaps of the query text over the
  query's seconds (eval.inference.spatial).
- gyt: per video of the segments file, `/temporal` scores over its vid2step.json pool (eval.inference.temporal)
  and, from a grounding adapter, one `/spatial` tube per maximal run of a predicted action label.
- mining: per .srt video, `/temporal` log-probabilities over its transcript labels and background.
- retrieval, moments: the benchmark's timed queries (eval.inference.retrieval, eval.inference.moments).
- gyt-clips: one `/spatial` group per clip of `eval.scorers.gyt_clips.clip_plan` (grounding adapters): a heatmap
  of the clip's step for every second of the clip and its per-second `foreground` scores (the step's similarity
  mapped by `temporal.mapping` over the clip's seconds, as if the clip were the whole video, then smoothed),
  with `temporal.threshold` as the group's `threshold`.
Per-second scores come from a grounding adapter's similarities (mapped, `temporal.mapping`) or from a snippet
adapter's scores (eval.inference.temporal.snippet_scores). A video without features (or too few seconds) fails
the run under `missing="fail"`; under "miss" its groups are left out and listed (`missing`), and the scorer's
`--missing miss` scores them as misses.
"""
from __future__ import annotations

import math
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eval.inference.config import query_text
from eval.inference.errors import InferenceError
from eval.inference.features import MissingFeatures, VideoFeatures, load_video
from eval.inference.moments import infer_moments
from eval.inference.output import Output, progress
from eval.inference.retrieval import infer_retrieval
from eval.inference.session import Session
from eval.inference.spatial import SpanRequest, span_heatmaps
from eval.inference.temporal import (
    action_labels, label_runs, log_probabilities, map_similarity, pool_scores, snippet_scores,
)
from eval.predictions import BACKGROUND, PredictionsMeta
from eval.scorers import gyt, gyt_clips, gyt_spatial, mining, youcook, youcook_bb
from eval.scorers.common import resolve_file
from eval.scorers.spatial import SpatialQuery
from eval.scorers.timed_queries import BENCHMARKS
from eval.tasks import SPATIAL_TASKS, TASKS
from manifests.benchmarks.gyt import load_vid2step


@dataclass(frozen=True)
class Benchmark:
    task: str
    benchmark_dir: Path
    protocol: str = "paper"
    boxes: str | None = None        # gyt, gyt-spatial, youcook: annotation file overrides (scorer defaults)
    segments: str | None = None
    pools: str = "vid2step.json"    # gyt: each video's label pool
    benchmark: str | None = None    # retrieval, moments: whose timed queries (gyt, youcook2, mining)


def _present_items(session, out: Output, by_video: dict, item_id) -> list[str]:
    """The videos with features; an absent video's misses are recorded per item (`item_id(item)`), as the
    scorers count them."""
    present = session.check_present(list(by_video), out.missing)
    for vid in set(by_video) - set(present):
        reason = out.missing.pop(vid)
        out.missing.update({f"{vid}/{item_id(x)}": reason for x in by_video[vid]})
    return present


def _covered_items(session, out: Output, vid: str, video, items: list, item_id) -> list:
    """The items whose seconds [start, end] the video's features all cover; the others are recorded as misses."""
    ready = []
    for x in items:
        try:
            video.locate(np.arange(x.start, x.end + 1))
            ready.append(x)
        except MissingFeatures as exc:
            session.miss(out.missing, [f"{vid}/{item_id(x)}"], exc)
    return ready


def _load(session: Session, vid: str, need_seconds: int = 0) -> VideoFeatures:
    video = load_video(session.store, vid, session.encoder, session.cfg.fps)
    have = video.covered_seconds()
    if have < need_seconds:
        raise MissingFeatures(vid, f"features cover {have} s but the annotation needs {need_seconds} s")
    return video


# ---------------------------------------------------------------------------------------------- spatial tasks
def spatial_plan(bench: Benchmark) -> tuple[list[SpatialQuery], dict]:
    files = {k: v for k, v in (("boxes", bench.boxes), ("segments", bench.segments)) if v is not None}
    if bench.task == "gyt-spatial":
        cfg = gyt_spatial.GytSpatialConfig(bench.benchmark_dir, bench.protocol, **files)
        plan, info = gyt_spatial.query_plan(cfg)
    elif bench.task == "youcook-bb":
        plan, info = youcook_bb.query_plan(youcook_bb.YouCookBBConfig(bench.benchmark_dir, bench.protocol, **files))
    else:
        plan, info = youcook.query_plan(youcook.YouCookConfig(bench.benchmark_dir, bench.protocol, **files))
    return [q for q, _ in plan], info


def infer_spatial(session: Session, bench: Benchmark) -> Output:
    queries, files = spatial_plan(bench)
    out = Output(files=files)
    by_video: dict[str, list[SpatialQuery]] = defaultdict(list)
    for q in queries:
        by_video[q.video_id].append(q)
    texts_list = list(dict.fromkeys(query_text(q.query, session.cfg.text) for q in queries))
    index = {t: i for i, t in enumerate(texts_list)}
    present = _present_items(session, out, by_video, lambda q: q.segment_id)
    texts = session.texts(texts_list, present) if texts_list else None
    for vid in progress(session, present, bench.task):
        video = _load(session, vid)
        ready = _covered_items(session, out, vid, video, by_video[vid], lambda q: q.segment_id)
        requests = [SpanRequest(q.start, q.end, index[query_text(q.query, session.cfg.text)], True) for q in ready]
        maps = span_heatmaps(session.model, video, requests, texts, session.cfg.spatial, session.black,
                             session.device) if requests else []
        for q, (heat, padding) in zip(ready, maps):
            out.spatial.append((vid, q.segment_id, q.start, q.end, q.query, heat, padding))
        out.counts["queries"] += len(ready)
        out.counts["seconds"] += sum(q.end - q.start + 1 for q in ready)
    out.counts["videos"] = len(by_video)
    return out


# --------------------------------------------------------------------------------------------- temporal tasks
def video_scores(session: Session, video: VideoFeatures, pool: list[str], out: Output | None = None) -> np.ndarray:
    """/temporal scores [seconds, len(pool)] of a whole video (background column = the threshold); empty
    seconds (all-zero rows) are counted in `out`."""
    actions = action_labels(pool)
    texts = session.texts([query_text(a, session.cfg.text) for a in actions], [video.video_id])
    cfg, model = session.cfg.temporal, session.model
    if model.kind == "snippets":
        starts, _, feats = model.snippets(video.times, video.global_)
        phi, _ = model.scores(feats, texts)
        return pool_scores(snippet_scores(phi, starts, model.snippet_s), pool, cfg.threshold)
    rows, _ = video.locate(np.arange(video.covered_seconds()))
    sim = model.similarity(video, texts)[rows]
    empty = video.empty()[rows]
    if out is not None and empty.any():  # reported, not silent: such a second is background
        out.counts["empty_seconds"] += int(empty.sum())
    return pool_scores(map_similarity(sim, cfg, model.similarity_kind, empty), pool, cfg.threshold)


def _tubes(session: Session, video: VideoFeatures, pool: list[str], scores: np.ndarray, out: Output) -> None:
    runs = label_runs(scores, pool)
    if not runs:
        return
    labels = list(dict.fromkeys(label for label, _, _ in runs))
    texts = session.texts([query_text(label, session.cfg.text) for label in labels], [video.video_id])
    requests = [SpanRequest(a, b, labels.index(label), False) for label, a, b in runs]
    maps = span_heatmaps(session.model, video, requests, texts, session.cfg.spatial, session.black,
                         session.device)
    for i, ((label, a, b), (heat, _)) in enumerate(zip(runs, maps)):
        out.spatial.append((video.video_id, str(i), a, b, label, heat, None))
    out.counts["tubes"] += len(runs)


def infer_gyt(session: Session, bench: Benchmark) -> Output:
    cfg = gyt.GytConfig(bench.benchmark_dir, bench.protocol,
                        **{k: v for k, v in (("boxes", bench.boxes), ("segments", bench.segments)) if v})
    truths, files = gyt.video_truths(cfg)
    pools_path = resolve_file(bench.benchmark_dir, gyt.SUBDIR, bench.pools)
    pools = load_vid2step(pools_path)
    without = sorted(set(truths) - set(pools))
    if without:
        raise InferenceError(f"{pools_path} gives no label pool for {len(without)} video(s) of "
                             f"{files['segments_file']}: {without[:10]}")
    out = Output(files={**files, "pools_file": str(pools_path)})
    for vid in progress(session, session.check_present(list(truths), out.missing), bench.task):
        frames = truths[vid].frame_seconds
        try:
            video = _load(session, vid, int(frames.max()) + 1 if len(frames) else 0)
        except MissingFeatures as exc:
            session.miss(out.missing, [vid], exc)
            continue
        scores = video_scores(session, video, pools[vid], out)
        out.temporal.append((vid, pools[vid], scores))
        if session.model.kind == "grounding":  # a snippet adapter draws no heatmaps: no tubes
            _tubes(session, video, pools[vid], scores, out)
        out.counts["seconds"] += len(scores)
    out.counts["videos"] = len(truths)
    return out


def infer_mining(session: Session, bench: Benchmark) -> Output:
    cfg = mining.MiningConfig(bench.benchmark_dir, bench.protocol)
    folder = mining.annotation_dir(cfg)
    videos = mining.load_srt_dir(folder)
    out = Output(files={"annotations": str(folder)})
    for vid in progress(session, session.check_present(list(videos), out.missing), bench.task):
        segments = videos[vid]
        need = max((math.ceil(s.end - 0.5) for s in segments), default=0)  # the scorer's middle-of-second rule
        try:
            video = _load(session, vid, need)
        except MissingFeatures as exc:
            session.miss(out.missing, [vid], exc)
            continue
        pool = sorted({s.label for s in segments} | {BACKGROUND})
        scores = video_scores(session, video, pool, out)
        out.temporal.append((vid, pool, log_probabilities(scores, session.cfg.temporal.mining_temperature)))
        out.counts["seconds"] += len(scores)
    out.counts["videos"] = len(videos)
    return out


def infer_gyt_clips(session: Session, bench: Benchmark) -> Output:
    if session.cfg.temporal.mapping == "softmax":
        raise InferenceError("gyt-clips scores one query per clip: temporal.mapping=softmax over a single label is "
                             "constant; use minmax, raw or affine")
    files = {k: v for k, v in (("boxes", bench.boxes), ("segments", bench.segments)) if v}
    truths, info = gyt_clips.clip_plan(gyt_clips.GytClipsConfig(str(bench.benchmark_dir), bench.protocol, **files))
    out = Output(files=info)
    by_video: dict[str, list] = defaultdict(list)
    for truth in truths:
        by_video[truth.clip.video_id].append(truth.clip)
    present = _present_items(session, out, by_video, lambda c: c.clip_id)
    cfg, model = session.cfg, session.model
    for vid in progress(session, present, bench.task):
        video = _load(session, vid)
        ready = _covered_items(session, out, vid, video, by_video[vid], lambda c: c.clip_id)
        if not ready:
            continue
        queries = list(dict.fromkeys(query_text(c.query, cfg.text) for c in ready))
        texts = session.texts(queries, [vid])
        sim, empty = model.similarity(video, texts), video.empty()
        requests = [SpanRequest(c.start, c.end, queries.index(query_text(c.query, cfg.text)), False) for c in ready]
        maps = span_heatmaps(model, video, requests, texts, cfg.spatial, session.black, session.device)
        for clip, request, (heat, _) in zip(ready, requests, maps):
            rows, _ = video.locate(np.arange(clip.start, clip.end + 1))
            out.counts["empty_seconds"] += int(empty[rows].sum())
            scores = map_similarity(sim[rows][:, [request.text]], cfg.temporal, model.similarity_kind, empty[rows])
            out.spatial.append((vid, clip.clip_id, clip.start, clip.end, clip.query, heat, None,
                                scores[:, 0].astype(np.float32), float(cfg.temporal.threshold)))
        out.counts["clips"] += len(ready)
        out.counts["seconds"] += sum(c.end - c.start + 1 for c in ready)
    out.counts["videos"] = len(by_video)
    return out


def _timed_queries(runner):
    def run(session: Session, bench: Benchmark) -> Output:
        if bench.benchmark not in BENCHMARKS:
            raise InferenceError(f"{bench.task} needs --benchmark, one of {BENCHMARKS}: whose timed queries")
        return runner(session, bench.benchmark, bench.benchmark_dir)
    return run


RUNNERS = {"gyt": infer_gyt, "gyt-spatial": infer_spatial, "gyt-clips": infer_gyt_clips, "youcook": infer_spatial,
           "youcook-bb": infer_spatial, "mining": infer_mining, "retrieval": _timed_queries(infer_retrieval),
           "moments": _timed_queries(infer_moments)}
assert set(RUNNERS) == set(TASKS)


def check_whole_frames(session: Session, task: str) -> None:
    """Heatmaps are spread over the whole frame by the scorers: features of a centre crop would land beside
    the objects in any non-square video, so spatial tasks need whole (squashed) frames."""
    resize = session.store.encoders[session.encoder]["preprocessing"].get("resize")
    if task in SPATIAL_TASKS and session.model.kind == "grounding" and resize != "squash":
        raise InferenceError(
            f"{session.store.root}: {session.encoder} features were extracted with --resize {resize}: their grid "
            f"covers only part of a non-square frame, but {task} heatmaps are scored over the whole frame. "
            f"Extract the evaluation videos with --resize squash (as the authors' evaluation did).")


def run_inference(session: Session, bench: Benchmark, out_path: Path, metadata: dict) -> dict:
    """Infer `bench.task` and write the predictions file; returns the summary (counts, misses, timings)."""
    if bench.task not in RUNNERS:
        raise InferenceError(f"unknown task {bench.task!r} (one of {TASKS})")
    if bench.task not in session.tasks:
        raise InferenceError(f"{session.info.get('method', session.model.method)} answers the tasks "
                             f"{list(session.tasks)}, not {bench.task!r}")
    check_whole_frames(session, bench.task)
    t0 = time.perf_counter()
    out = RUNNERS[bench.task](session, bench)
    elapsed = time.perf_counter() - t0
    summary = {"task": bench.task, "protocol": bench.protocol, "method": session.model.method,
               "predictions": str(out_path), **dict(out.counts), "missing": dict(out.missing),
               "missing_videos": sorted({item.split("/")[0] for item in out.missing}),
               "missing_policy": session.missing_policy, "seconds_elapsed": round(elapsed, 3),
               "benchmark_files": out.files}
    meta = PredictionsMeta(bench.task, session.model.method, bench.protocol,
                           {**metadata, **session.info, "inference": {k: v for k, v in summary.items()
                                                                     if k != "predictions"}})
    out.write(out_path, meta)
    return summary
