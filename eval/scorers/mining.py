"""MiningYouTube temporal grounding: ordered alignment of per-second class scores to each video's transcript,
then IoU and IoD per action segment (background excluded) and the mean over frames (MoF).

Emissions are the log-softmax over the video's labels of scores / temperature (idempotent on log-probabilities);
segment lengths follow a Poisson whose mean is the class's entry of weakYouTube_length.txt (frames; class order of
weakYouTube_dict.txt; a transcript label absent from that dictionary uses the mean of all classes: the .srt labels
are spelled differently, and the released lengths are all 150 frames). A zero, negative or NaN length is an error.
- paper: one step per second. Ground truth at 1 fps: second s (covering [s, s + 1)) takes the label of the .srt
  segment containing its middle s + 0.5 (a later segment wins where two overlap), else "background"; Poisson
  mean = length / 30 fps seconds; our exact dynamic programme (`align_ordered`).
- reference: the published aligner itself (`align_published`, Kuehne et al.'s video_alignment, see
  eval/ALIGN.md) at 30 frames per second: frame f takes the scores of second f // 30; hypotheses every 20
  frames, a beam of 50,000, the renormalised Poisson of the lengths file over frames. One change: no segment
  length limit (the published table stops at 5,000 frames and its code fails with an IndexError on any video
  longer than about 5,000 frames, i.e. most real ones; below that the limit never binds). Ground truth per
  frame follows the published .gt files: an action [s, e) seconds covers 1-based frames round(30 s) ..
  round(30 e), i.e. 0-based frames [round(30 s) - 1, round(30 e)).
The transcript is the sequence of runs of the ground-truth labels (background included), so every transcript
entry is a ground-truth segment; actions too short to hold a unit (second or frame) are counted in
`actions_not_sampled` and are not part of the transcript. The predicted segment of entry k is the block the
alignment gives it (in the reference protocol it may be empty: the published traceback drops the first 20
frames' labels).

Metrics: IoU_k = |G_k and P_k| / |G_k or P_k|, IoD_k = |G_k and P_k| / |P_k| per action entry, averaged over all
action entries of all videos (also per video, then over videos); MoF = share of units (seconds, or frames in the
reference protocol) whose aligned label equals the ground truth, background included, in percent (the
published script prints the same ratio as a fraction). No published script computes IoU/IoD: both protocols use
these definitions.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eval.metrics.alignment import (NoAlignmentError, align_ordered, align_published, log_softmax, path_grammar,
                                    poisson_log_pmf)
from eval.metrics.temporal import iou_iod, mof, runs
from eval.predictions import BACKGROUND, Predictions, TemporalPrediction
from eval.scorers.common import MissingPredictionsError, ScoreError, check_missing_policy, resolve_file, warn_unscored
from manifests.benchmarks.mining import MiningSegment, load_class_dict, load_lengths, load_srt_dir

SUBDIR = "miningyoutube"


@dataclass(frozen=True)
class MiningConfig:
    benchmark_dir: str  # a path (a str, so that pipeline.config can set it)
    protocol: str = "paper"
    annotations: str = "annotations"  # directory of <video_id>.srt
    lengths: str = "weakYouTube_length.txt"
    classes: str = "weakYouTube_dict.txt"
    length_fps: float = 30.0  # frame rate of the lengths file (and of the reference protocol's frames)
    temperature: float = 1.0
    missing: str = "fail"


@dataclass(frozen=True)
class Transcript:
    labels: tuple[str, ...]  # per entry
    bounds: np.ndarray  # int [K + 1] ground-truth entry k = units (seconds or frames) [bounds[k], bounds[k + 1])
    not_sampled: int  # actions that hold no unit


def annotation_dir(cfg: MiningConfig) -> Path:
    for path in (Path(cfg.annotations), Path(cfg.benchmark_dir) / SUBDIR / cfg.annotations,
                 Path(cfg.benchmark_dir) / cfg.annotations):
        if path.is_dir():
            return path
    raise ScoreError(f"annotation directory {cfg.annotations!r} not found under {cfg.benchmark_dir}")


def annotated_length(segments: list[MiningSegment]) -> int:
    """Seconds needed to hold every annotated action (the video length when no predictions say otherwise)."""
    return max((math.ceil(s.end) for s in segments), default=0)


def transcript(segments: list[MiningSegment], n_seconds: int, video_id: str) -> Transcript:
    """Per-second ground truth (middle-of-second rule) as runs: the ordered transcript with its segments."""
    spans = [(math.ceil(seg.start - 0.5), math.ceil(seg.end - 0.5)) for seg in segments]  # s + .5 in [start, end)
    return _runs_transcript(segments, spans, n_seconds, video_id, " s")


def frame_transcript(segments: list[MiningSegment], n_frames: int, fps: float, video_id: str) -> Transcript:
    """Per-frame ground truth as the published .gt files have it: 0-based frames [round(fps s) - 1, round(fps e))."""
    spans = [(math.floor(seg.start * fps + 0.5) - 1, math.floor(seg.end * fps + 0.5)) for seg in segments]
    return _runs_transcript(segments, spans, n_frames, video_id, f" frames at {fps} fps")


def _runs_transcript(segments: list[MiningSegment], spans: list[tuple[int, int]], n_units: int, video_id: str,
                     unit: str) -> Transcript:
    labels = np.full(n_units, BACKGROUND, dtype=object)
    not_sampled = 0
    for seg, (first, stop) in zip(segments, spans):
        if stop > n_units:
            raise ScoreError(f"{video_id}: action {seg.label!r} ends at {seg.end:.2f} s but the scores cover "
                             f"{n_units}{unit}")
        if stop <= first:
            not_sampled += 1
        labels[max(first, 0):stop] = seg.label  # a later segment wins where two overlap
    names, ids = np.unique(labels.astype(str), return_inverse=True)
    blocks = runs(ids)
    return Transcript(tuple(names[blocks[:, 2]].tolist()),
                      np.concatenate([blocks[:, 0], [n_units]]).astype(np.int64), not_sampled)


@dataclass(frozen=True)
class LengthModel:
    mean_seconds: dict[str, float]  # per class: seconds (paper) or frames (reference)
    fallback: float

    def mean(self, label: str) -> float:
        return self.mean_seconds.get(label, self.fallback)


def length_model(cfg: MiningConfig, in_frames: bool) -> LengthModel:
    """Mean length per class, in seconds (paper) or in frames of the lengths file (reference)."""
    names = load_class_dict(resolve_file(cfg.benchmark_dir, SUBDIR, cfg.classes))
    path = resolve_file(cfg.benchmark_dir, SUBDIR, cfg.lengths)
    frames = load_lengths(path)
    if len(names) != len(frames):
        raise ScoreError(f"{cfg.classes} has {len(names)} classes but {cfg.lengths} has {len(frames)} lengths")
    for no, value in enumerate(frames, 1):
        # the published normaliser takes log(round(mean)): means up to 0.5 frames break it too
        if not math.isfinite(value) or value <= 0 or (in_frames and round(value) < 1):
            raise ScoreError(f"{path}: line {no}: a mean length must be a positive number of frames"
                             f"{' (above 0.5)' if in_frames else ''}, got {value}")
    means = frames if in_frames else [f / cfg.length_fps for f in frames]
    return LengthModel(dict(zip(names, means)), float(np.mean(means)))


def _columns(labels: tuple[str, ...], tr: Transcript, video_id: str) -> dict[str, int]:
    column = {name: i for i, name in enumerate(labels)}
    absent = sorted({name for name in tr.labels if name not in column})
    if absent:
        raise ScoreError(f"{video_id}: the transcript labels {absent} are not columns of /temporal/{video_id}")
    return column


def align_video(scores: np.ndarray, labels: tuple[str, ...], tr: Transcript, lengths: LengthModel,
                temperature: float, video_id: str) -> np.ndarray:
    """Paper protocol: bounds [K + 1] (seconds) of the predicted block of every transcript entry."""
    column = _columns(labels, tr, video_id)
    emissions = log_softmax(scores / temperature)[:, [column[name] for name in tr.labels]]
    n_sec = len(scores)
    table = {m: poisson_log_pmf(n_sec, m) for m in {lengths.mean(name) for name in tr.labels}}
    return align_ordered(emissions, np.stack([table[lengths.mean(name)] for name in tr.labels]))


def align_video_published(scores: np.ndarray, labels: tuple[str, ...], tr: Transcript, lengths: LengthModel,
                          temperature: float, video_id: str, fps: int) -> np.ndarray:
    """Reference protocol: bounds [K + 1] (frames) of every entry's block under the published aligner, fed the
    per-second log-probabilities repeated `fps` times (float32, as it reads them)."""
    column = _columns(labels, tr, video_id)
    frames = np.repeat(log_softmax(scores / temperature).astype(np.float32), fps, axis=0)
    grammar = path_grammar([[column[name] for name in tr.labels]])  # one transcript: node k = entry k
    try:
        # no length limit: the published table stops at 5,000 frames, where its code fails on longer videos
        result = align_published(frames, grammar, np.array([lengths.mean(name) for name in labels]), max_length=None)
    except NoAlignmentError as exc:
        raise ScoreError(f"{video_id}: the published aligner finds no path for {len(tr.labels)} transcript "
                         f"entries in {len(frames)} frames ({exc})") from None
    return np.searchsorted(result.frame_nodes, np.arange(len(tr.labels) + 1)).astype(np.int64)


@dataclass(frozen=True)
class VideoScore:
    iou: np.ndarray  # per action entry
    iod: np.ndarray
    actions: list[str]  # label per action entry
    correct: int  # units with the right label
    units: int  # seconds (paper) or frames (reference)
    seconds: int
    transcript: Transcript


def score_video(cfg: MiningConfig, lengths: LengthModel, video_id: str, segments: list[MiningSegment],
                pred: TemporalPrediction | None) -> VideoScore:
    reference = cfg.protocol == "reference"
    fps = round(cfg.length_fps) if reference else 1
    n_sec = annotated_length(segments) if pred is None else len(pred.scores)
    tr = frame_transcript(segments, n_sec * fps, fps, video_id) if reference else transcript(segments, n_sec,
                                                                                              video_id)
    action = np.array([name != BACKGROUND for name in tr.labels])
    gt_spans = np.stack([tr.bounds[:-1], tr.bounds[1:]], 1)[action]
    actions = [name for name in tr.labels if name != BACKGROUND]
    if pred is None:
        zeros = np.zeros(len(gt_spans))
        return VideoScore(zeros, zeros, actions, 0, int(tr.bounds[-1]), n_sec, tr)
    if reference:
        bounds = align_video_published(pred.scores, pred.labels, tr, lengths, cfg.temperature, video_id, fps)
    else:
        bounds = align_video(pred.scores, pred.labels, tr, lengths, cfg.temperature, video_id)
    iou, iod = iou_iod(gt_spans, np.stack([bounds[:-1], bounds[1:]], 1)[action])
    label_id = np.unique(np.array(tr.labels), return_inverse=True)[1].reshape(-1)
    right, total = mof(np.repeat(label_id, np.diff(bounds)), np.repeat(label_id, np.diff(tr.bounds)))
    return VideoScore(iou, iod, actions, right, total, n_sec, tr)


def score(cfg: MiningConfig, preds: Predictions) -> dict:
    check_missing_policy(cfg.missing)
    preds.require_task("mining")
    videos = load_srt_dir(annotation_dir(cfg))
    reference = cfg.protocol == "reference"
    lengths = length_model(cfg, in_frames=reference)
    missing = sorted(set(videos) - set(preds.temporal))
    warn_unscored(preds.path, "predicted video(s)", set(preds.temporal) - set(videos))
    if missing and cfg.missing == "fail":
        raise MissingPredictionsError("videos", missing)
    results = {vid: score_video(cfg, lengths, vid, segments, preds.temporal.get(vid))
               for vid, segments in videos.items()}
    per_video = {vid: {"segments": int(len(r.iou)), "iou": _mean(r.iou), "iod": _mean(r.iod)}
                 for vid, r in results.items()}
    all_iou = np.concatenate([r.iou for r in results.values()])
    all_iod = np.concatenate([r.iod for r in results.values()])
    correct, units = sum(r.correct for r in results.values()), sum(r.units for r in results.values())
    fallback = {name for r in results.values() for name in r.transcript.labels if name not in lengths.mean_seconds}
    out = {
        "task": "mining", "protocol": cfg.protocol, "iou": _mean(all_iou), "iod": _mean(all_iod),
        "mof": 100.0 * correct / units if units else None,
        "iou_video_mean": _mean(np.array([v["iou"] for v in per_video.values() if v["iou"] is not None])),
        "iod_video_mean": _mean(np.array([v["iod"] for v in per_video.values() if v["iod"] is not None])),
        "segments": int(len(all_iou)), "videos": len(videos), "seconds": sum(r.seconds for r in results.values()),
        "actions_not_sampled": sum(r.transcript.not_sampled for r in results.values()),
        "labels_with_fallback_length": len(fallback), "missing_videos": missing, "per_video": per_video,
        "temperature": cfg.temperature,
        "per_class": _per_class(np.array([n for r in results.values() for n in r.actions], dtype=object),
                                all_iou, all_iod),
    }
    if reference:
        out.update(frames=units, frame_rate=round(cfg.length_fps))
    return out


def _per_class(names: np.ndarray, iou: np.ndarray, iod: np.ndarray) -> dict:
    out = {}
    for name in sorted(set(names.tolist())):
        sel = names == name
        out[name] = {"segments": int(sel.sum()), "iou": _mean(iou[sel]), "iod": _mean(iod[sel])}
    return out


def _mean(values: np.ndarray) -> float | None:
    return float(np.mean(values)) if len(values) else None
