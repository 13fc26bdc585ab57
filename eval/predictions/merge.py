"""One method's temporal predictions with another method's spatial maps: the paper's "MIL-NCE(temp.) +
RegionCLIP(spa.)" row of Table 2 (GroundingYouTube, untrimmed).

    python -m eval.predictions merge --temporal A.h5 --spatial B.h5 --out C.h5 [--method NAME]

Task gyt only. The merged file holds A's `/temporal` groups as they are (so the same predicted labels and tube
scores), and one tube per maximal run of a predicted action label of A (`eval.inference.temporal.label_runs`,
the first maximum of each row, as the scorer reads it): `/spatial/<vid>/<i>` and/or `/points/<vid>/<i>`,
i = 0, 1, ... in time order, query = the label, [start, end] = the run. A's own `/spatial` and `/points` groups are
dropped; their count is recorded.

What B must hold (any spatial method, heatmaps or points/boxes): for every tube of A (video v, label L, seconds
a..b), groups of B under `/spatial/v` or `/points/v` whose query is exactly L and whose [start, end] spans cover
every second a..b together. At each second the map is taken from the first covering group in segment-id order
(ids "0", "1", ..., "10" sorted by length then text, as the gyt scorer orders tubes; a `/spatial` and a `/points`
group with the same id are one source, as in the scorer). The simplest such B has, per video, one group per
action label of the video's pool spanning every second: `python -m eval.predictions from-boxes --task gyt
--layout coverage` writes it from a detector's boxes; a heatmap method writes `/spatial/<v>/<j>` groups of the same
shape. B's task may be gyt or gyt-spatial (both GroundingYouTube; coverage is what counts); if B does not cover
a tube second, nothing is written and the error lists every uncovered run (video, tube, label, seconds).

A merged tube gets heatmaps when every second's source has heatmaps (of one grid shape), points when every
second's source has points (boxes too when all have boxes; a uniform distribution when all are uniform); at
least one of the two, else it is refused. The root `metadata` records both inputs (`merge.temporal`,
`merge.spatial`: file, sha256, method, task, protocol, metadata) and the rule; a `mask_rule` of B (e.g.
global-sim's `cosine-0.5`) is carried over when the merged file holds B's heatmaps. The `protocol` attribute is
A's. Other tasks are refused: gyt-spatial and youcook have no temporal part to merge (the segments are given),
mining no spatial part, retrieval and moments neither.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eval.inference.temporal import label_runs
from eval.predictions.format import Predictions, PredictionsMeta
from eval.predictions.reader import read_predictions
from eval.predictions.writer import PredictionsWriter
from eval.scorers.gyt_tubes import PredTube, video_tubes
from pipeline.encoders.weights import sha256_file

SPATIAL_SOURCES = ("gyt", "gyt-spatial")


class MergeError(ValueError):
    """The two files cannot be merged (wrong task, a tube B does not cover, mixed map kinds)."""


@dataclass(frozen=True)
class MergedTube:
    video_id: str
    segment_id: str
    query: str
    start: int
    end: int
    heatmaps: np.ndarray | None
    points: np.ndarray | None
    boxes: np.ndarray | None
    uniform: bool


def _provenance(preds: Predictions) -> dict:
    meta = preds.meta
    return {"file": preds.path, "sha256": sha256_file(preds.path), "method": meta.method, "task": meta.task,
            "protocol": meta.protocol, "metadata": meta.metadata}


def check_tasks(temporal: Predictions, spatial: Predictions) -> None:
    task = temporal.meta.task
    if task != "gyt":
        why = {"gyt-spatial": "its segments are given, it has no temporal part to merge",
               "youcook": "its segments are given, it has no temporal part to merge",
               "mining": "it is temporal only: there is no spatial part to merge into it"}
        raise MergeError(f"{temporal.path}: task {task!r}: merge combines gyt temporal predictions with spatial maps; "
                         f"{why.get(task, 'it has no temporal and spatial parts')}")
    if spatial.meta.task not in SPATIAL_SOURCES:
        raise MergeError(f"{spatial.path}: task {spatial.meta.task!r} holds no GroundingYouTube spatial maps "
                         f"(one of {SPATIAL_SOURCES})")


def _sources(spatial: Predictions, vid: str, label: str) -> list[PredTube]:
    return [t for t in video_tubes(spatial, vid) if t.query == label]


def _merged(vid: str, i: int, label: str, a: int, b: int, chosen: list[PredTube], path: str) -> MergedTube:
    offsets = [s - src.start for s, src in zip(range(a, b + 1), chosen)]
    heatmaps = points = boxes = None
    uniform = False
    if all(src.spatial is not None for src in chosen) and \
            len({src.spatial.heatmaps.shape[1:] for src in chosen}) == 1:
        heatmaps = np.stack([src.spatial.heatmaps[k] for src, k in zip(chosen, offsets)])
    if all(src.points is not None for src in chosen):
        if all(src.points.uniform for src in chosen):
            uniform = True
        elif not any(src.points.uniform for src in chosen):
            points = np.stack([src.points.points[k] for src, k in zip(chosen, offsets)])
            if all(src.points.boxes is not None for src in chosen):
                boxes = np.stack([src.points.boxes[k] for src, k in zip(chosen, offsets)])
    if heatmaps is None and points is None and not uniform:
        ids = sorted({src.segment_id for src in chosen})
        raise MergeError(f"{path}: tube {vid}/{i} ({label!r}, seconds {a}..{b}) draws on groups {ids} that mix "
                         "heatmaps of different shapes, points and uniform points, or heatmaps and points: "
                         "give one kind of map for the whole tube")
    return MergedTube(vid, str(i), label, a, b, heatmaps, points, boxes, uniform)


def merged_tubes(temporal: Predictions, spatial: Predictions) -> list[MergedTube]:
    """The tubes A's temporal predictions imply, with B's maps; a MergeError lists every uncovered run."""
    out, uncovered = [], []
    for vid, pred in temporal.temporal.items():
        for i, (label, a, b) in enumerate(label_runs(pred.scores, list(pred.labels))):
            sources = _sources(spatial, vid, label)
            chosen = [next((t for t in sources if t.start <= s <= t.end), None) for s in range(a, b + 1)]
            if any(src is None for src in chosen):
                missing = [a + k for k, src in enumerate(chosen) if src is None]
                uncovered.append(f"{vid} tube {i} {label!r} seconds {a}..{b} (not covered: {_spans(missing)})")
                continue
            out.append(_merged(vid, i, label, a, b, chosen, spatial.path))
    if uncovered:
        shown = "; ".join(uncovered[:10]) + (f"; ... ({len(uncovered)} in all)" if len(uncovered) > 10 else "")
        raise MergeError(f"{spatial.path} does not cover {len(uncovered)} tube(s) of {temporal.path}: {shown}. "
                         "It needs /spatial or /points groups whose query is the tube's label and whose seconds "
                         "cover the tube (e.g. from-boxes --task gyt --layout coverage)")
    return out


def _spans(seconds: list[int]) -> str:
    runs, start = [], seconds[0]
    for prev, cur in zip(seconds, seconds[1:] + [None]):
        if cur != prev + 1:
            runs.append(f"{start}" if start == prev else f"{start}..{prev}")
            start = cur
    return ", ".join(runs)


def merge(temporal_path: str | Path, spatial_path: str | Path, out: str | Path, method: str | None = None) -> dict:
    """Write the merged file; the summary (counts, both methods)."""
    temporal, spatial = read_predictions(temporal_path), read_predictions(spatial_path)
    check_tasks(temporal, spatial)
    tubes = merged_tubes(temporal, spatial)
    with_maps = sum(t.heatmaps is not None for t in tubes)
    summary = {"videos": len(temporal.temporal), "tubes": len(tubes), "tubes_with_heatmaps": with_maps,
               "tubes_with_points": sum(t.points is not None or t.uniform for t in tubes),
               "temporal_file_tubes_dropped": len({(v, s) for v, g in temporal.spatial.items() for s in g}
                                                  | {(v, s) for v, g in temporal.points.items() for s in g})}
    metadata = {"merge": {"temporal": _provenance(temporal), "spatial": _provenance(spatial),
                          "rule": "A's /temporal as is; one tube per maximal run of a predicted action label of A; "
                                  "at each second the first group of B (segment-id order) with the tube's label "
                                  "covering it", **summary},
                "command": sys.argv}
    if with_maps and "mask_rule" in spatial.meta.metadata:
        metadata["mask_rule"] = spatial.meta.metadata["mask_rule"]
    name = method or f"{temporal.meta.method}(temp.)+{spatial.meta.method}(spa.)"
    with PredictionsWriter(out, PredictionsMeta("gyt", name, temporal.meta.protocol, metadata)) as writer:
        for vid, pred in temporal.temporal.items():
            writer.add_temporal(vid, pred.labels, pred.scores)
        for t in tubes:
            if t.heatmaps is not None:
                writer.add_spatial(t.video_id, t.segment_id, t.start, t.end, t.query, t.heatmaps)
            if t.uniform:
                writer.add_points(t.video_id, t.segment_id, t.start, t.end, t.query, uniform=True)
            elif t.points is not None:
                writer.add_points(t.video_id, t.segment_id, t.start, t.end, t.query, points=t.points, boxes=t.boxes)
    return {"method": name, **summary}
