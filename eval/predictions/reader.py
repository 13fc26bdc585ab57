"""Reading and validating a predictions file (eval/predictions/format.py documents the layout)."""
from __future__ import annotations

import json
import os

import h5py
import numpy as np

from eval.predictions.format import (
    FORMAT, RANKED_VERSION, READS, MomentPrediction, PointPrediction, Predictions, PredictionsError,
    PredictionsMeta, RetrievalPrediction, SpatialPrediction, TemporalPrediction, check_foreground, check_labels,
    check_meta, check_proposals, check_retrieval, check_span, finite_float32, heatmaps_array,
)


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
    check_meta(path, meta)
    return meta


def _required(path, where: str, data: dict, name: str) -> np.ndarray:
    if name not in data:
        raise PredictionsError(path, f"{where}/{name}", "missing dataset")
    return data[name]


def _read_spatial(path, vid: str, sid: str, g: h5py.Group) -> SpatialPrediction:
    where, attrs = f"/spatial/{vid}/{sid}", dict(g.attrs)
    data = _datasets(path, where, g, {"heatmaps", "padding", "foreground"})
    heatmaps = heatmaps_array(path, f"{where}/heatmaps", _required(path, where, data, "heatmaps"))
    start, end = check_span(path, where, _attr_int(path, where, attrs, "start"),
                             _attr_int(path, where, attrs, "end"), heatmaps.shape[0])
    padding = None
    if "padding" in data:
        padding = finite_float32(path, f"{where}/padding", data["padding"], 2, heatmaps.shape[1:])
    threshold = attrs.get("threshold")
    foreground, threshold = check_foreground(path, where, data.get("foreground"),
                                             threshold.item() if isinstance(threshold, np.generic) else threshold,
                                             heatmaps.shape[0])
    return SpatialPrediction(vid, sid, start, end, _attr_str(path, where, attrs, "query"), heatmaps, padding,
                             foreground, threshold)


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


# -------------------------------------------------------------------------- ranked groups (version 2)
def _exact(path, where: str, group: h5py.Group, names: set[str]) -> dict[str, np.ndarray]:
    if set(group.keys()) != names or not all(isinstance(group[n], h5py.Dataset) for n in names):
        raise PredictionsError(path, where, f"expected exactly the datasets {sorted(names)}, got {sorted(group)}")
    return {n: group[n][()] for n in names}


def _read_retrieval(path, parent: h5py.Group) -> dict[str, RetrievalPrediction]:
    out = {}
    for level in parent.keys():
        where = f"/retrieval/{level}"
        if not isinstance(parent[level], h5py.Group):
            raise PredictionsError(path, where, "expected a group")
        data = _exact(path, where, parent[level], {"scores", "text_ids", "video_ids"})
        out[level] = check_retrieval(path, level, data["text_ids"], data["video_ids"], data["scores"])
    return out


def _read_moments(path, parent: h5py.Group) -> dict[str, dict[str, MomentPrediction]]:
    out: dict[str, dict[str, MomentPrediction]] = {}
    for vid in parent.keys():
        video = parent[vid]
        if not isinstance(video, h5py.Group):
            raise PredictionsError(path, f"/moments/{vid}", "expected a group")
        out[vid] = {}
        for qid in video.keys():
            where = f"/moments/{vid}/{qid}"
            if not isinstance(video[qid], h5py.Group):
                raise PredictionsError(path, where, "expected a group")
            query = video[qid].attrs.get("query")
            if isinstance(query, bytes):
                query = query.decode("utf-8")
            if not isinstance(query, str):
                raise PredictionsError(path, where, "missing string attribute 'query'")
            proposals = check_proposals(path, f"{where}/proposals",
                                        _exact(path, where, video[qid], {"proposals"})["proposals"])
            out[vid][qid] = MomentPrediction(vid, qid, query, proposals)
    return out


def _read_ranked(path, f: h5py.File, version: int) -> tuple[dict, dict]:
    """(/retrieval levels, /moments) of an open file; a version-1 file may not hold them."""
    present = [k for k in ("retrieval", "moments") if k in f]
    if present and version < RANKED_VERSION:
        raise PredictionsError(path, "/ attr 'version'", f"groups {present} need version {RANKED_VERSION}")
    return (_read_retrieval(path, f["retrieval"]) if "retrieval" in f else {},
            _read_moments(path, f["moments"]) if "moments" in f else {})


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
        retrieval, moments = _read_ranked(path, f, _attr_int(path, "/", dict(f.attrs), "version"))
    return Predictions(path, meta, spatial, points, temporal, retrieval, moments)
