"""The predictions file: what inference (or a baseline) writes and every scorer reads (HDF5, via h5py).

Scoring needs no model: any method that writes this layout can be scored. External scripts depend on it, so
the layout below is a contract (``FORMAT``/``VERSION`` change when it does).

Root attributes
    ``format``  = "groundcache-predictions", ``version`` = 1, or 2 when the file holds ``/retrieval`` or
                ``/moments`` groups (readers of version 1 refuse those files; this reader reads both),
    ``task``    = the scorer the file is for: "gyt" (untrimmed spatio-temporal), "gyt-spatial", "youcook", "mining",
                "retrieval" (text-video retrieval), "moments" (moment retrieval),
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
Ranked groups: eval/predictions_ranked.py.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from eval.predictions_checks import (  # noqa: F401  (BACKGROUND, PredictionsError: part of this module's API)
    BACKGROUND, PredictionsError, check_labels, check_name, check_span, finite_float32, heatmaps_array,
)

FORMAT = "groundcache-predictions"
VERSION = 1             # written unless the file holds ranked groups (then predictions_ranked.RANKED_VERSION)
READS = (1, 2)
TASKS = ("gyt", "gyt-spatial", "youcook", "mining", "retrieval", "moments")
PROTOCOLS = ("paper", "reference")


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
class Predictions:
    path: str
    meta: PredictionsMeta
    spatial: dict[str, dict[str, SpatialPrediction]]
    points: dict[str, dict[str, PointPrediction]]
    temporal: dict[str, TemporalPrediction]
    retrieval: dict = field(default_factory=dict)  # level -> predictions_ranked.RetrievalPrediction
    moments: dict = field(default_factory=dict)    # video -> query id -> predictions_ranked.MomentPrediction

    def video_ids(self) -> set[str]:
        return set(self.spatial) | set(self.points) | set(self.temporal) | set(self.moments)

    def require_task(self, task: str) -> None:
        if self.meta.task != task:
            raise PredictionsError(self.path, "/ attr 'task'",
                                   f"the file was written for task {self.meta.task!r}, not {task!r}")


# ----------------------------------------------------------------------------------------------- validation
def _check_meta(path, meta: PredictionsMeta) -> None:
    if meta.task not in TASKS:
        raise PredictionsError(path, "/ attr 'task'", f"unknown task {meta.task!r} (one of {TASKS})")
    if meta.protocol not in PROTOCOLS:
        raise PredictionsError(path, "/ attr 'protocol'", f"unknown protocol {meta.protocol!r} (one of {PROTOCOLS})")


# ------------------------------------------------------------------------------------------------- writing
class PredictionsWriter:
    """Writes a predictions file; checks every item as it is added, so an invalid file is never produced.
    The file appears at `path` only when the writer closes without error (written beside it, then renamed)."""

    def __init__(self, path: str | os.PathLike, meta: PredictionsMeta):
        self.path = Path(path)
        _check_meta(self.path, meta)
        self._tmp = self.path.with_name(self.path.name + ".partial")
        self._file = h5py.File(self._tmp, "w")
        attrs = self._file.attrs
        attrs["format"], attrs["version"] = FORMAT, VERSION
        attrs["task"], attrs["method"], attrs["protocol"] = meta.task, meta.method, meta.protocol
        attrs["metadata"] = json.dumps(meta.metadata, sort_keys=True)

    def __enter__(self) -> PredictionsWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self._file.close()
        if exc_type is None:
            os.replace(self._tmp, self.path)
        else:
            self._tmp.unlink(missing_ok=True)

    def _new_group(self, kind: str, video_id: str, segment_id: str | None = None) -> h5py.Group:
        where = f"/{kind}/{video_id}" + ("" if segment_id is None else f"/{segment_id}")
        check_name(self.path, where, video_id)
        if segment_id is not None:
            check_name(self.path, where, segment_id)
        if where in self._file:
            raise PredictionsError(self.path, where, "written twice")
        return self._file.create_group(where)

    def add_spatial(self, video_id: str, segment_id: str | int, start: int, end: int, query: str,
                    heatmaps: np.ndarray, padding: np.ndarray | None = None) -> None:
        where = f"/spatial/{video_id}/{segment_id}"
        heatmaps = heatmaps_array(self.path, f"{where}/heatmaps", heatmaps)
        start, end = check_span(self.path, where, start, end, heatmaps.shape[0])
        if padding is not None:
            padding = finite_float32(self.path, f"{where}/padding", padding, 2, heatmaps.shape[1:])
        group = self._new_group("spatial", video_id, str(segment_id))
        group.attrs.update(start=start, end=end, query=str(query))
        group.create_dataset("heatmaps", data=heatmaps)
        if padding is not None:
            group.create_dataset("padding", data=padding)

    def add_points(self, video_id: str, segment_id: str | int, start: int, end: int, query: str,
                   points: np.ndarray | None = None, boxes: np.ndarray | None = None,
                   uniform: bool = False) -> None:
        where = f"/points/{video_id}/{segment_id}"
        if uniform == (points is not None) or (uniform and boxes is not None):
            raise PredictionsError(self.path, where, "give either points (and optional boxes) or uniform=True")
        n = None
        if points is not None:
            points = finite_float32(self.path, f"{where}/points", points, 2, (2,))
            n = points.shape[0]
        if boxes is not None:
            boxes = finite_float32(self.path, f"{where}/boxes", boxes, 2, (4,))
            if boxes.shape[0] != n:
                raise PredictionsError(self.path, f"{where}/boxes", f"{boxes.shape[0]} boxes for {n} points")
        start, end = check_span(self.path, where, start, end, n)
        group = self._new_group("points", video_id, str(segment_id))
        group.attrs.update(start=start, end=end, query=str(query))
        if uniform:
            group.attrs["distribution"] = "uniform"
            return
        group.create_dataset("points", data=points)
        if boxes is not None:
            group.create_dataset("boxes", data=boxes)

    def add_temporal(self, video_id: str, labels: list[str] | tuple[str, ...], scores: np.ndarray) -> None:
        where = f"/temporal/{video_id}"
        scores = finite_float32(self.path, f"{where}/scores", scores, 2)
        labels = check_labels(self.path, f"{where}/scores attr 'labels'", labels, scores.shape[1])
        group = self._new_group("temporal", video_id)
        dataset = group.create_dataset("scores", data=scores)
        dataset.attrs["labels"] = np.array(labels, dtype=h5py.string_dtype())

    def add_retrieval(self, level: str, text_ids, video_ids, scores: np.ndarray) -> None:
        """`/retrieval/<level>`: a similarity matrix [n_text, n_video] with its row and column ids."""
        _ranked().add_retrieval(self, level, text_ids, video_ids, scores)

    def add_moments(self, video_id: str, query_id: str | int, query: str, proposals: np.ndarray) -> None:
        """`/moments/<video_id>/<query_id>`: ranked proposals [n, 3] (start, end, score), best first."""
        _ranked().add_moments(self, video_id, query_id, query, proposals)


def _ranked():
    from eval import predictions_ranked  # imported late: it builds on this module's helpers

    return predictions_ranked


# ------------------------------------------------------------------------------------------------- reading
# Each h5py object access costs ~0.1 ms and a GYT file holds ~5k groups: attributes are read once per group
# into a dict, and locations are spelled from names rather than asked of h5py.
def _attr_str(path, where: str, attrs: dict, key: str) -> str:
    if key not in attrs:
        raise PredictionsError(path, where, f"missing attribute {key!r}")
    value = attrs[key]
    if isinstance(value, bytes):
        value = value.decode("utf-8")
    if not isinstance(value, str):
        raise PredictionsError(path, where, f"attribute {key!r} must be a string, got {value!r}")
    return value


def _attr_int(path, where: str, attrs: dict, key: str):
    if key not in attrs:
        raise PredictionsError(path, where, f"missing attribute {key!r}")
    value = attrs[key]
    return value.item() if isinstance(value, np.generic) else value


def _datasets(path, where: str, group: h5py.Group, allowed: set[str]) -> dict[str, np.ndarray]:
    names = set(group.keys())
    if names - allowed:
        raise PredictionsError(path, where, f"unknown entries {sorted(names - allowed)}")
    out = {}
    for name in names:
        item = group[name]
        if not isinstance(item, h5py.Dataset):
            raise PredictionsError(path, f"{where}/{name}", "expected a dataset")
        out[name] = item[()]
    return out


def _groups(path, where: str, parent: h5py.Group) -> list[tuple[str, h5py.Group]]:
    out = []
    for name in parent.keys():
        item = parent[name]
        if not isinstance(item, h5py.Group):
            raise PredictionsError(path, f"{where}/{name}", "expected a group")
        out.append((name, item))
    return out


def _read_meta(path, f: h5py.File) -> PredictionsMeta:
    attrs = dict(f.attrs)
    if attrs.get("format") != FORMAT:
        raise PredictionsError(path, "/ attr 'format'", f"not a {FORMAT} file (format={attrs.get('format')!r})")
    version = _attr_int(path, "/", attrs, "version")
    if version not in READS:
        raise PredictionsError(path, "/ attr 'version'", f"version {version!r}; this reader knows {list(READS)}")
    text = _attr_str(path, "/", attrs, "metadata")
    try:
        metadata = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PredictionsError(path, "/ attr 'metadata'", f"not JSON ({exc.msg})") from exc
    if not isinstance(metadata, dict):
        raise PredictionsError(path, "/ attr 'metadata'", "must be a JSON object")
    meta = PredictionsMeta(_attr_str(path, "/", attrs, "task"), _attr_str(path, "/", attrs, "method"),
                           _attr_str(path, "/", attrs, "protocol"), metadata)
    _check_meta(path, meta)
    return meta


def _required(path, where: str, data: dict, name: str) -> np.ndarray:
    if name not in data:
        raise PredictionsError(path, f"{where}/{name}", "missing dataset")
    return data[name]


def _read_spatial(path, vid: str, sid: str, g: h5py.Group) -> SpatialPrediction:
    where, attrs = f"/spatial/{vid}/{sid}", dict(g.attrs)
    data = _datasets(path, where, g, {"heatmaps", "padding"})
    heatmaps = heatmaps_array(path, f"{where}/heatmaps", _required(path, where, data, "heatmaps"))
    start, end = check_span(path, where, _attr_int(path, where, attrs, "start"),
                             _attr_int(path, where, attrs, "end"), heatmaps.shape[0])
    padding = None
    if "padding" in data:
        padding = finite_float32(path, f"{where}/padding", data["padding"], 2, heatmaps.shape[1:])
    return SpatialPrediction(vid, sid, start, end, _attr_str(path, where, attrs, "query"), heatmaps, padding)


def _read_points(path, vid: str, sid: str, g: h5py.Group) -> PointPrediction:
    where, attrs = f"/points/{vid}/{sid}", dict(g.attrs)
    start, end = _attr_int(path, where, attrs, "start"), _attr_int(path, where, attrs, "end")
    query = _attr_str(path, where, attrs, "query")
    data = _datasets(path, where, g, {"points", "boxes"})
    if "distribution" in attrs:
        kind = _attr_str(path, where, attrs, "distribution")
        if kind != "uniform" or data:
            raise PredictionsError(path, where, f"distribution={kind!r} with datasets {sorted(data)}: only "
                                                "'uniform' without datasets is defined")
        start, end = check_span(path, where, start, end, None)
        return PointPrediction(vid, sid, start, end, query, None, None, uniform=True)
    points = finite_float32(path, f"{where}/points", _required(path, where, data, "points"), 2, (2,))
    boxes = None
    if "boxes" in data:
        boxes = finite_float32(path, f"{where}/boxes", data["boxes"], 2, (4,))
        if boxes.shape[0] != points.shape[0]:
            raise PredictionsError(path, f"{where}/boxes", f"{boxes.shape[0]} boxes for {points.shape[0]} points")
    start, end = check_span(path, where, start, end, points.shape[0])
    return PointPrediction(vid, sid, start, end, query, points, boxes)


def _read_temporal(path, vid: str, g: h5py.Group) -> TemporalPrediction:
    where = f"/temporal/{vid}/scores"
    if set(g.keys()) != {"scores"} or not isinstance(g["scores"], h5py.Dataset):
        raise PredictionsError(path, f"/temporal/{vid}", f"expected exactly a dataset 'scores', got {list(g)}")
    dataset = g["scores"]
    scores = finite_float32(path, where, dataset[()], 2)
    if "labels" not in dataset.attrs:
        raise PredictionsError(path, where, "missing attribute 'labels'")
    raw = np.atleast_1d(dataset.attrs["labels"])
    labels = [v.decode("utf-8") if isinstance(v, bytes) else v for v in raw.tolist()]
    return TemporalPrediction(vid, check_labels(path, f"{where} attr 'labels'", labels, scores.shape[1]), scores)


def read_predictions(path: str | os.PathLike) -> Predictions:
    """Read and validate a whole predictions file (errors name the file, the group and the problem)."""
    path = str(path)
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise PredictionsError(path, "/", f"cannot open as HDF5 ({exc})") from exc
    with f:
        meta = _read_meta(path, f)
        unknown = sorted(set(f.keys()) - {"spatial", "points", "temporal", "retrieval", "moments"})
        if unknown:
            raise PredictionsError(path, "/", f"unknown top-level entries {unknown}")
        spatial: dict[str, dict[str, SpatialPrediction]] = {}
        points: dict[str, dict[str, PointPrediction]] = {}
        temporal: dict[str, TemporalPrediction] = {}
        for vid, video in _groups(path, "/spatial", f["spatial"]) if "spatial" in f else []:
            spatial[vid] = {sid: _read_spatial(path, vid, sid, g) for sid, g in _groups(path, f"/spatial/{vid}", video)}
        for vid, video in _groups(path, "/points", f["points"]) if "points" in f else []:
            points[vid] = {sid: _read_points(path, vid, sid, g) for sid, g in _groups(path, f"/points/{vid}", video)}
        for vid, g in _groups(path, "/temporal", f["temporal"]) if "temporal" in f else []:
            temporal[vid] = _read_temporal(path, vid, g)
        retrieval, moments = _ranked().read_ranked(path, f, _attr_int(path, "/", dict(f.attrs), "version"))
    return Predictions(path, meta, spatial, points, temporal, retrieval, moments)
