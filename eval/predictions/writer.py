"""Writing a predictions file (eval/predictions/format.py documents the layout)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import h5py
import numpy as np

from eval.predictions.format import (
    FORMAT, RANKED_VERSION, VERSION, PredictionsError, PredictionsMeta, check_foreground, check_labels, check_meta,
    check_name, check_proposals, check_retrieval, check_span, finite_float32, heatmaps_array, moment_group_names,
)


class PredictionsWriter:
    """Writes a predictions file; checks every item as it is added, so an invalid file is never produced.
    The file appears at `path` only when the writer closes without error (written beside it, then renamed)."""

    def __init__(self, path: str | os.PathLike, meta: PredictionsMeta):
        self.path = Path(path)
        check_meta(self.path, meta)
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
                    heatmaps: np.ndarray, padding: np.ndarray | None = None, foreground: np.ndarray | None = None,
                    threshold: float | None = None) -> None:
        where = f"/spatial/{video_id}/{segment_id}"
        heatmaps = heatmaps_array(self.path, f"{where}/heatmaps", heatmaps)
        start, end = check_span(self.path, where, start, end, heatmaps.shape[0])
        if padding is not None:
            padding = finite_float32(self.path, f"{where}/padding", padding, 2, heatmaps.shape[1:])
        foreground, threshold = check_foreground(self.path, where, foreground, threshold, heatmaps.shape[0])
        group = self._new_group("spatial", video_id, str(segment_id))
        group.attrs.update(start=start, end=end, query=str(query))
        group.create_dataset("heatmaps", data=heatmaps)
        if padding is not None:
            group.create_dataset("padding", data=padding)
        if foreground is not None:
            group.create_dataset("foreground", data=foreground)
        if threshold is not None:
            group.attrs["threshold"] = threshold

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
        """`/retrieval/<level>`: a similarity matrix [n_text, n_video] with its row and column ids; checked, then
        written; the file becomes version 2."""
        pred = check_retrieval(self.path, level, text_ids, video_ids, scores)
        group, strings = self._new_group("retrieval", level), h5py.string_dtype()
        group.create_dataset("scores", data=pred.scores)
        group.create_dataset("text_ids", data=np.array(pred.text_ids, dtype=strings))
        group.create_dataset("video_ids", data=np.array(pred.video_ids, dtype=strings))
        self._file.attrs["version"] = RANKED_VERSION

    def add_moments(self, video_id: str, query_id: str | int, query: str, proposals: np.ndarray) -> None:
        """`/moments/<video_id>/<query_id>`: ranked proposals [n, 3] (start, end, score), best first; checked, then
        written; the file becomes version 2."""
        vid, qid = moment_group_names(self.path, video_id, query_id)
        proposals = check_proposals(self.path, f"/moments/{vid}/{qid}/proposals", proposals)
        group = self._new_group("moments", vid, qid)
        group.attrs["query"] = str(query)
        group.create_dataset("proposals", data=proposals)
        self._file.attrs["version"] = RANKED_VERSION
