"""MiningYouTube temporal grounding: ordered alignment of per-second class scores to each video's transcript,
then IoU and IoD per action segment (background excluded) and the mean over frames (MoF).

Ground truth at 1 fps: second s (covering [s, s + 1)) takes the label of the .srt segment containing its middle
s + 0.5 (a later segment wins where two overlap), else "background". The transcript is the sequence of runs of
these labels (background included), so every transcript entry is a ground-truth segment; actions too short to
contain the middle of any second are counted in `actions_not_sampled` and are not part of the transcript.

Alignment (`eval.metrics.alignment`): emissions are the log-softmax over the video's labels of scores /
temperature (idempotent on log-probabilities); lengths follow a Poisson whose mean is the class's entry of
weakYouTube_length.txt (class order of weakYouTube_dict.txt; a transcript label absent from that dictionary uses
the mean of all classes: the .srt labels are spelled differently, and the released lengths are all 150 frames).
- paper: one step per second, Poisson mean = length / 30 fps seconds (5 s), each second's emission counted once;
- reference: the published aligner's frame scale: the per-second scores repeated at 30 fps, i.e. emissions
  weighted by 30 and a Poisson of mean 150 over frames (block boundaries stay on whole seconds, where the
  published Viterbi places hypotheses every 20 frames).
The predicted segment of entry k is the block the alignment gives it.

Metrics: IoU_k = |G_k and P_k| / |G_k or P_k|, IoD_k = |G_k and P_k| / |P_k| per action entry, averaged over all
action entries of all videos (also per video, then over videos); MoF = share of seconds whose aligned label
equals the ground truth, over all seconds including background. No published script computes IoU/IoD (the
reference alignment code computes MoF only): both protocols use these metric definitions.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eval.metrics.alignment import align_ordered, log_softmax, poisson_log_pmf
from eval.metrics.temporal import iou_iod, mof, runs
from eval.predictions import BACKGROUND, Predictions
from eval.scorers.common import MissingPredictionsError, ScoreError, check_missing_policy, resolve_file
from manifests.benchmarks.mining import MiningSegment, load_class_dict, load_lengths, load_srt_dir

SUBDIR = "miningyoutube"


@dataclass(frozen=True)
class MiningConfig:
    benchmark_dir: Path
    protocol: str = "paper"
    annotations: str = "annotations"  # directory of <video_id>.srt
    lengths: str = "weakYouTube_length.txt"
    classes: str = "weakYouTube_dict.txt"
    length_fps: float = 30.0  # frame rate of the lengths file
    temperature: float = 1.0
    missing: str = "fail"


@dataclass(frozen=True)
class Transcript:
    labels: tuple[str, ...]  # per entry
    bounds: np.ndarray  # int [K + 1] ground-truth entry k = seconds [bounds[k], bounds[k + 1])
    not_sampled: int  # actions that contain the middle of no second


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
    labels = np.full(n_seconds, BACKGROUND, dtype=object)
    not_sampled = 0
    for seg in segments:
        first, stop = math.ceil(seg.start - 0.5), math.ceil(seg.end - 0.5)  # s with start <= s + .5 < end
        if stop > n_seconds:
            raise ScoreError(f"{video_id}: action {seg.label!r} ends at {seg.end:.2f} s but the scores cover "
                             f"{n_seconds} s")
        if stop <= first:
            not_sampled += 1
        labels[max(first, 0):stop] = seg.label
    names, ids = np.unique(labels.astype(str), return_inverse=True)
    blocks = runs(ids)
    return Transcript(tuple(names[blocks[:, 2]].tolist()),
                      np.concatenate([blocks[:, 0], [n_seconds]]).astype(np.int64), not_sampled)


@dataclass(frozen=True)
class LengthModel:
    mean_seconds: dict[str, float]
    fallback: float

    def mean(self, label: str) -> float:
        return self.mean_seconds.get(label, self.fallback)


def length_model(cfg: MiningConfig, in_frames: bool) -> LengthModel:
    """Mean length per class, in seconds (paper) or in frames of the lengths file (reference)."""
    names = load_class_dict(resolve_file(cfg.benchmark_dir, SUBDIR, cfg.classes))
    frames = load_lengths(resolve_file(cfg.benchmark_dir, SUBDIR, cfg.lengths))
    if len(names) != len(frames):
        raise ScoreError(f"{cfg.classes} has {len(names)} classes but {cfg.lengths} has {len(frames)} lengths")
    means = frames if in_frames else [f / cfg.length_fps for f in frames]
    return LengthModel(dict(zip(names, means)), float(np.mean(means)))


def align_video(scores: np.ndarray, labels: tuple[str, ...], tr: Transcript, lengths: LengthModel,
                temperature: float, video_id: str, frames_per_second: int = 1) -> np.ndarray:
    """Bounds [K + 1] of the predicted block of every transcript entry. `frames_per_second` > 1 aligns at that
    frame scale (emissions repeated, lengths counted in frames; `lengths` then in frames too)."""
    column = {name: i for i, name in enumerate(labels)}
    absent = sorted({name for name in tr.labels if name not in column})
    if absent:
        raise ScoreError(f"{video_id}: the transcript labels {absent} are not columns of /temporal/{video_id}")
    emissions = frames_per_second * log_softmax(scores / temperature)[:, [column[name] for name in tr.labels]]
    n_sec = len(scores)
    table = {m: poisson_log_pmf(n_sec, m, frames_per_second) for m in {lengths.mean(name) for name in tr.labels}}
    return align_ordered(emissions, np.stack([table[lengths.mean(name)] for name in tr.labels]))


def score(cfg: MiningConfig, preds: Predictions) -> dict:
    check_missing_policy(cfg.missing)
    preds.require_task("mining")
    videos = load_srt_dir(annotation_dir(cfg))
    reference = cfg.protocol == "reference"
    lengths = length_model(cfg, in_frames=reference)
    fps = round(cfg.length_fps) if reference else 1
    missing = sorted(set(videos) - set(preds.temporal))
    if missing and cfg.missing == "fail":
        raise MissingPredictionsError("videos", missing)
    ious, iods, names, per_video, correct, seconds, not_sampled, fallback = [], [], [], {}, 0, 0, 0, set()
    for vid, segments in videos.items():
        pred = preds.temporal.get(vid)
        tr = transcript(segments, annotated_length(segments) if pred is None else len(pred.scores), vid)
        not_sampled += tr.not_sampled
        fallback |= {name for name in tr.labels if name not in lengths.mean_seconds}
        action = np.array([name != BACKGROUND for name in tr.labels])
        gt_spans = np.stack([tr.bounds[:-1], tr.bounds[1:]], 1)[action]
        if pred is None:
            iou, iod = np.zeros(len(gt_spans)), np.zeros(len(gt_spans))
            seconds += int(tr.bounds[-1])
        else:
            bounds = align_video(pred.scores, pred.labels, tr, lengths, cfg.temperature, vid, fps)
            iou, iod = iou_iod(gt_spans, np.stack([bounds[:-1], bounds[1:]], 1)[action])
            label_id = np.unique(np.array(tr.labels), return_inverse=True)[1].reshape(-1)
            right, total = mof(np.repeat(label_id, np.diff(bounds)), np.repeat(label_id, np.diff(tr.bounds)))
            correct, seconds = correct + right, seconds + total
        ious.append(iou)
        iods.append(iod)
        names.extend(name for name in tr.labels if name != BACKGROUND)
        per_video[vid] = {"segments": int(len(iou)), "iou": _mean(iou), "iod": _mean(iod)}
    all_iou, all_iod = np.concatenate(ious), np.concatenate(iods)
    return {
        "task": "mining", "protocol": cfg.protocol, "iou": _mean(all_iou), "iod": _mean(all_iod),
        "mof": 100.0 * correct / seconds if seconds else None,
        "iou_video_mean": _mean(np.array([v["iou"] for v in per_video.values() if v["iou"] is not None])),
        "iod_video_mean": _mean(np.array([v["iod"] for v in per_video.values() if v["iod"] is not None])),
        "segments": int(len(all_iou)), "videos": len(videos), "seconds": seconds,
        "actions_not_sampled": not_sampled, "labels_with_fallback_length": len(fallback),
        "missing_videos": missing, "per_video": per_video, "temperature": cfg.temperature,
        "per_class": _per_class(np.array(names, dtype=object), all_iou, all_iod),
    }


def _per_class(names: np.ndarray, iou: np.ndarray, iod: np.ndarray) -> dict:
    out = {}
    for name in sorted(set(names.tolist())):
        sel = names == name
        out[name] = {"segments": int(sel.sum()), "iou": _mean(iou[sel]), "iod": _mean(iod[sel])}
    return out


def _mean(values: np.ndarray) -> float | None:
    return float(np.mean(values)) if len(values) else None
