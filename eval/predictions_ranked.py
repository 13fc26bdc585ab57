"""The ranked groups of the predictions file (format version 2; eval/predictions.py documents the layout):
`/retrieval/<level>` similarity matrices with their ids and `/moments/<video_id>/<query_id>` ranked proposals.
Validation, writing and reading of these groups; `eval.predictions` calls them.
"""
from __future__ import annotations

from dataclasses import dataclass

import h5py
import numpy as np

from eval.predictions_checks import PredictionsError, check_name, finite_float32

RETRIEVAL_LEVELS = ("clip", "video")
RANKED_VERSION = 2


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


def _ids(path, where: str, ids) -> tuple[str, ...]:
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
    texts, videos = _ids(path, f"{where}/text_ids", text_ids), _ids(path, f"{where}/video_ids", video_ids)
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


def write_retrieval(group: h5py.Group, pred: RetrievalPrediction) -> None:
    strings = h5py.string_dtype()
    group.create_dataset("scores", data=pred.scores)
    group.create_dataset("text_ids", data=np.array(pred.text_ids, dtype=strings))
    group.create_dataset("video_ids", data=np.array(pred.video_ids, dtype=strings))


def write_moments(group: h5py.Group, query: str, proposals: np.ndarray) -> None:
    group.attrs["query"] = str(query)
    group.create_dataset("proposals", data=proposals)


def add_retrieval(writer, level: str, text_ids, video_ids, scores) -> None:
    """PredictionsWriter.add_retrieval: checked, then written; the file becomes version 2."""
    pred = check_retrieval(writer.path, level, text_ids, video_ids, scores)
    write_retrieval(writer._new_group("retrieval", level), pred)
    writer._file.attrs["version"] = RANKED_VERSION


def add_moments(writer, video_id: str, query_id, query: str, proposals) -> None:
    """PredictionsWriter.add_moments: checked, then written; the file becomes version 2."""
    vid, qid = moment_group_names(writer.path, video_id, query_id)
    proposals = check_proposals(writer.path, f"/moments/{vid}/{qid}/proposals", proposals)
    write_moments(writer._new_group("moments", vid, qid), query, proposals)
    writer._file.attrs["version"] = RANKED_VERSION


def _exact(path, where: str, group: h5py.Group, names: set[str]) -> dict[str, np.ndarray]:
    if set(group.keys()) != names or not all(isinstance(group[n], h5py.Dataset) for n in names):
        raise PredictionsError(path, where, f"expected exactly the datasets {sorted(names)}, got {sorted(group)}")
    return {n: group[n][()] for n in names}


def read_retrieval(path, parent: h5py.Group) -> dict[str, RetrievalPrediction]:
    out = {}
    for level in parent.keys():
        where = f"/retrieval/{level}"
        if not isinstance(parent[level], h5py.Group):
            raise PredictionsError(path, where, "expected a group")
        data = _exact(path, where, parent[level], {"scores", "text_ids", "video_ids"})
        out[level] = check_retrieval(path, level, data["text_ids"], data["video_ids"], data["scores"])
    return out


def read_moments(path, parent: h5py.Group) -> dict[str, dict[str, MomentPrediction]]:
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


def moment_group_names(path, video_id: str, query_id) -> tuple[str, str]:
    where = f"/moments/{video_id}/{query_id}"
    return check_name(path, where, video_id), check_name(path, where, str(query_id))


def read_ranked(path, f: h5py.File, version: int) -> tuple[dict, dict]:
    """(/retrieval levels, /moments) of an open file; a version-1 file may not hold them."""
    present = [k for k in ("retrieval", "moments") if k in f]
    if present and version < RANKED_VERSION:
        raise PredictionsError(path, "/ attr 'version'", f"groups {present} need version {RANKED_VERSION}")
    return (read_retrieval(path, f["retrieval"]) if "retrieval" in f else {},
            read_moments(path, f["moments"]) if "moments" in f else {})
