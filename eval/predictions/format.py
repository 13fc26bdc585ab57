"""The predictions file format: what inference (or a baseline) writes and every scorer reads (HDF5, via h5py).

Scoring needs no model: any method that writes this layout can be scored. External scripts depend on it, so
the layout below is a contract (``FORMAT``/``VERSION`` change when it does).

Root attributes
    ``format``  = "groundcache-predictions", ``version`` = 1, or 2 when the file holds ``/retrieval`` or
                ``/moments`` groups (readers of version 1 refuse those files; this reader reads both),
    ``task``    = the scorer the file is for: "gyt" (untrimmed spatio-temporal), "gyt-spatial", "youcook", "mining",
                "retrieval" (text-video retrieval), "moments" (moment retrieval), "gyt-clips" (clip-level
                spatio-temporal grounding of one given step),
    ``method``  = free text naming the method ("ours", "centre-prior", ...),
    ``protocol`` = "paper" | "reference": the inference preset the file was made with,
    ``metadata`` = a JSON object as text (config, git SHA, annotation files used, ...); may be "{}".

Time: one row per second. Second s is the frame decoded at t = s seconds (0-based) by ``ffmpeg -vf fps=1``
(YouCook2-Interactions frame id k is second k - 1).

``/spatial/<video_id>/<segment_id>`` (group; one per query the method localised: for gyt-spatial and youcook
    the segments of the scorer's query plan, for gyt one per detected tube, e.g. per run of a predicted label)
    attrs ``start``, ``end`` (int seconds, inclusive) and ``query`` (the text localised);
    dataset ``heatmaps`` float32 [n, gh, gw] with n = end - start + 1: heatmap j is second start + j, at model
    resolution (e.g. 7x7; gh, gw >= 1), any non-negative or signed scale; scorers upsample it to the frame size;
    optional dataset ``padding`` float32 [gh, gw]: the model's heatmap for an all-black (zero-padded) frame. The
    published scripts score a segment's last second on such a padded frame; ``--protocol reference`` uses this
    map there (zeros when absent). Reference-preset inference writes it.
    gyt-clips (one group per clip of `eval.scorers.gyt_clips.clip_plan`, segment id = the clip id, start/end =
    the clip, query = its step): also dataset ``foreground`` float32 [n] (second start + j: how much the query
    happens then, higher = more) and attr ``threshold`` (float): second start + j is predicted foreground when
    foreground[j] >= threshold. Optional elsewhere (other scorers ignore it); ``threshold`` needs ``foreground``.
``/points/<video_id>/<segment_id>`` (group; optional, for methods that predict points or boxes directly)
    attrs ``start``, ``end``, ``query`` as above, and either dataset ``points`` float32 [n, 2] ((x, y) pixels of
    the frame) with optional ``boxes`` float32 [n, 4] ((x1, y1, x2, y2) pixels), or attr
    ``distribution`` = "uniform" and no datasets: a point drawn uniformly at random from the frame at every second,
    scored by its expected value (pointing = the share of the frame inside the box; region = the whole frame).
    Where both a points and a spatial group exist for a segment, pointing uses the points and region metrics
    use the heatmaps.
``/temporal/<video_id>`` (group)
    dataset ``scores`` float32 [n_seconds, n_labels] (row s = second s; higher = more likely) with attr
    ``labels``: the n_labels column names, unique, one of them "background". A method with a background threshold
    writes the threshold as the background column, so the predicted label of a second is its first maximum.

``/retrieval/<level>`` (group; level "clip" = clip-sentence, "video" = video-paragraph; version 2)
    datasets ``scores`` float32 [n_text, n_video] (higher = more similar), ``text_ids`` and ``video_ids`` (strings,
    unique within each list): text i's correct candidate is the column with the same id. Ids: a video id for
    "video"; "<video_id>/<query_id>" (the segment's annotation id) for "clip".
``/moments/<video_id>/<query_id>`` (group; version 2) attr ``query`` (the text grounded) and dataset
    ``proposals`` float32 [n, 3] rows (start, end, score) in seconds, 0 <= start < end, ranked: best first,
    scores not increasing down the rows (n may be 0).

Segment and query ids are the annotation's ids written in decimal ("12"); video ids may not contain "/".
This module holds the names, constants, item types and checks; `eval.predictions.writer` writes a file and
`eval.predictions.reader` reads one; both validate every item with the checks here.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from eval.tasks import TASKS

FORMAT = "groundcache-predictions"
VERSION = 1             # written unless the file holds ranked groups (then RANKED_VERSION)
RANKED_VERSION = 2      # a file with /retrieval or /moments groups
READS = (1, 2)
PROTOCOLS = ("paper", "reference")
BACKGROUND = "background"
RETRIEVAL_LEVELS = ("clip", "video")


class PredictionsError(ValueError):
    """A predictions file (or data about to be written to one) breaks the documented layout."""

    def __init__(self, path: str | os.PathLike, where: str, problem: str):
        self.path, self.where, self.problem = str(path), where, problem
        super().__init__(f"{self.path}: {where}: {problem}")


# ---------------------------------------------------------------------------------------------- the items
@dataclass(frozen=True)
class PredictionsMeta:
    task: str
    method: str
    protocol: str = "paper"
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SpatialPrediction:
    video_id: str
    segment_id: str
    start: int
    end: int
    query: str
    heatmaps: np.ndarray  # float32 [end - start + 1, gh, gw]
    padding: np.ndarray | None = None  # float32 [gh, gw]: heatmap of a zero-padded frame (reference protocol)
    foreground: np.ndarray | None = None  # float32 [end - start + 1]: per-second score of the query (gyt-clips)
    threshold: float | None = None  # foreground >= threshold: the query is predicted at that second


@dataclass(frozen=True)
class PointPrediction:
    video_id: str
    segment_id: str
    start: int
    end: int
    query: str
    points: np.ndarray | None  # float32 [n, 2] (x, y); None for the uniform distribution
    boxes: np.ndarray | None = None  # float32 [n, 4]
    uniform: bool = False


@dataclass(frozen=True)
class TemporalPrediction:
    video_id: str
    labels: tuple[str, ...]
    scores: np.ndarray  # float32 [n_seconds, n_labels]

    def predicted(self) -> np.ndarray:
        """Index of the predicted label per second: the first maximum of each row."""
        return np.argmax(self.scores, axis=1)


@dataclass(frozen=True)
class RetrievalPrediction:
    level: str                   # "clip" (clip-sentence) or "video" (video-paragraph)
    text_ids: tuple[str, ...]    # row ids (sentences / paragraphs)
    video_ids: tuple[str, ...]   # column ids (clips / videos); text i matches the column with its id
    scores: np.ndarray           # float32 [n_text, n_video], higher = more similar


@dataclass(frozen=True)
class MomentPrediction:
    video_id: str
    query_id: str
    query: str
    proposals: np.ndarray        # float32 [n, 3] (start, end, score) in seconds, best first


@dataclass(frozen=True)
class Predictions:
    path: str
    meta: PredictionsMeta
    spatial: dict[str, dict[str, SpatialPrediction]]
    points: dict[str, dict[str, PointPrediction]]
    temporal: dict[str, TemporalPrediction]
    retrieval: dict[str, RetrievalPrediction] = field(default_factory=dict)         # level -> matrix
    moments: dict[str, dict[str, MomentPrediction]] = field(default_factory=dict)  # video -> query id -> ...

    def video_ids(self) -> set[str]:
        return set(self.spatial) | set(self.points) | set(self.temporal) | set(self.moments)

    def require_task(self, task: str) -> None:
        if self.meta.task != task:
            raise PredictionsError(self.path, "/ attr 'task'",
                                   f"the file was written for task {self.meta.task!r}, not {task!r}")


# ------------------------------------------------------------------------------------------------- checks
# Shared by the writer and the reader: every error names the file, the group and the problem.
def check_meta(path, meta: PredictionsMeta) -> None:
    if meta.task not in TASKS:
        raise PredictionsError(path, "/ attr 'task'", f"unknown task {meta.task!r} (one of {TASKS})")
    if meta.protocol not in PROTOCOLS:
        raise PredictionsError(path, "/ attr 'protocol'", f"unknown protocol {meta.protocol!r} (one of {PROTOCOLS})")


def check_name(path, where: str, name: str) -> str:
    name = str(name)
    if not name or "/" in name or name in (".", ".."):
        raise PredictionsError(path, where, f"invalid HDF5 group name {name!r} (empty, '.', '..' or contains '/')")
    return name


def finite_float32(path, where: str, array, rank: int, last: tuple[int, ...] = ()) -> np.ndarray:
    array = np.asarray(array)
    if array.ndim != rank:
        raise PredictionsError(path, where, f"expected rank {rank}, got shape {array.shape}")
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise PredictionsError(path, where, f"expected a numeric array, got dtype {array.dtype}")
    if last and array.shape[-len(last):] != last:
        raise PredictionsError(path, where, f"expected trailing shape {last}, got shape {array.shape}")
    array = array.astype(np.float32, copy=False)
    if not np.isfinite(array).all():
        bad = int((~np.isfinite(array)).sum())
        raise PredictionsError(path, where, f"{bad} value(s) are NaN or infinite")
    return array


def heatmaps_array(path, where: str, array) -> np.ndarray:
    """Heatmaps [n, gh, gw], finite, with at least one cell (an empty map has no point to upsample)."""
    array = finite_float32(path, where, array, 3)
    if min(array.shape[1:]) < 1:
        raise PredictionsError(path, where, f"heatmaps of shape {array.shape} have no cells (need gh, gw >= 1)")
    return array


def check_foreground(path, where: str, foreground, threshold, n: int) -> tuple[np.ndarray | None, float | None]:
    """A /spatial group's optional per-second `foreground` scores [n] and attr `threshold` (finite; only with
    `foreground`)."""
    if foreground is not None:
        foreground = finite_float32(path, f"{where}/foreground", foreground, 1)
        if len(foreground) != n:
            raise PredictionsError(path, f"{where}/foreground", f"{len(foreground)} scores for {n} heatmaps")
    if threshold is None:
        return foreground, None
    if foreground is None:
        raise PredictionsError(path, f"{where} attr 'threshold'", "a threshold without a 'foreground' dataset")
    if isinstance(threshold, (bool, np.bool_)) or not isinstance(threshold, (int, float, np.integer, np.floating)) \
            or not np.isfinite(threshold):
        raise PredictionsError(path, f"{where} attr 'threshold'", f"must be a finite number, got {threshold!r}")
    return foreground, float(threshold)


def check_span(path, where: str, start, end, n: int | None) -> tuple[int, int]:
    if isinstance(start, bool) or isinstance(end, bool) or not all(
            isinstance(v, (int, np.integer)) for v in (start, end)):
        raise PredictionsError(path, where, f"start/end must be integers, got {start!r}, {end!r}")
    start, end = int(start), int(end)
    if start < 0 or end < start:
        raise PredictionsError(path, where, f"need 0 <= start <= end, got start={start}, end={end}")
    if n is not None and n != end - start + 1:
        raise PredictionsError(path, where, f"{n} rows for seconds {start}..{end} (need end - start + 1 = "
                                            f"{end - start + 1})")
    return start, end


def check_labels(path, where: str, labels, n_columns: int) -> tuple[str, ...]:
    labels = tuple(str(v) for v in labels)
    if len(labels) != n_columns:
        raise PredictionsError(path, where, f"{len(labels)} labels for {n_columns} score columns")
    if len(set(labels)) != len(labels):
        raise PredictionsError(path, where, f"duplicate labels {sorted({l for l in labels if labels.count(l) > 1})}")
    if BACKGROUND not in labels:
        raise PredictionsError(path, where, f"labels must include {BACKGROUND!r}")
    return labels


# --------------------------------------------------------------------------------------- ranked groups
def check_ids(path, where: str, ids) -> tuple[str, ...]:
    """A list of non-empty, unique ids (str or UTF-8 bytes) as a tuple of str."""
    raw = np.atleast_1d(np.asarray(ids, dtype=object))
    if raw.ndim != 1:
        raise PredictionsError(path, where, f"expected a list of ids, got shape {raw.shape}")
    out = tuple(v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in raw.tolist())
    if any(not v for v in out):
        raise PredictionsError(path, where, "empty id")
    if len(set(out)) != len(out):
        dup = sorted({v for v in out if out.count(v) > 1})
        raise PredictionsError(path, where, f"duplicate ids {dup[:5]}")
    return out


def check_retrieval(path, level: str, text_ids, video_ids, scores) -> RetrievalPrediction:
    where = f"/retrieval/{level}"
    if level not in RETRIEVAL_LEVELS:
        raise PredictionsError(path, where, f"unknown level {level!r} (one of {RETRIEVAL_LEVELS})")
    texts = check_ids(path, f"{where}/text_ids", text_ids)
    videos = check_ids(path, f"{where}/video_ids", video_ids)
    scores = finite_float32(path, f"{where}/scores", scores, 2)
    if scores.shape != (len(texts), len(videos)):
        raise PredictionsError(path, f"{where}/scores", f"shape {scores.shape} for {len(texts)} text ids and "
                                                        f"{len(videos)} video ids")
    return RetrievalPrediction(level, texts, videos, scores)


def check_proposals(path, where: str, proposals) -> np.ndarray:
    """[n, 3] (start, end, score) with 0 <= start < end and scores not increasing (the file order is the rank)."""
    p = np.asarray(proposals)
    if p.size == 0:
        p = np.zeros((0, 3), np.float32)
    p = finite_float32(path, where, p, 2, (3,))
    if np.any(p[:, 0] < 0) or np.any(p[:, 1] <= p[:, 0]):
        raise PredictionsError(path, where, "every proposal needs 0 <= start < end")
    if np.any(np.diff(p[:, 2]) > 0):
        raise PredictionsError(path, where, "proposals must be ranked: scores may not increase down the rows")
    return p


def moment_group_names(path, video_id: str, query_id) -> tuple[str, str]:
    where = f"/moments/{video_id}/{query_id}"
    return check_name(path, where, video_id), check_name(path, where, str(query_id))
