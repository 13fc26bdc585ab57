"""GroundingYouTube (GYT) annotation files (see ../shared/benchmarks/README.md).

Time: 1 annotated frame per second; `second` s is the frame decoded at t = s seconds (0-based) by
`ffmpeg -vf fps=1`. Boxes and points are pixel coordinates in the 640x480 resized videos (`id2wh_new.json`
gives each video's frame size; one video is 480x640). The released boxes have known defects that these
readers keep as written: x2 clipped at 480, y2 not clipped (up to 629), 18 boxes with x2 < x1.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import PurePosixPath

from manifests.benchmarks.common import (
    as_box, as_dict, as_int, as_list, as_number, as_optional_number, as_second_key, as_str, get, read_json,
)
from manifests.errors import AnnotationError

GYT_FRAME_SIZE = (640, 480)  # (W, H) of the released resized videos, the space of boxes and points


@dataclass(frozen=True)
class GytBox:
    video_id: str
    second: int  # frame at t = second s
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in pixels of the 640x480 frame
    step: str | None  # None for id2xy_box.json, which has no step names


@dataclass(frozen=True)
class GytSegment:
    video_id: str
    id: int
    start: int  # whole seconds, as written (end <= start occurs in seg.json/ground_seg.json)
    end: int
    sentence: str


@dataclass(frozen=True)
class GytPoint:
    """One aggregated annotator point (mean of the clicks) of the pumpkin file; None = no point given."""

    video_id: str
    second: int
    step: str
    x: float | None
    y: float | None
    mean_dist: float | None
    image_url: str


def load_boxes(path: str | os.PathLike) -> dict[str, list[GytBox]]:
    """Boxes per video, sorted by second. Accepts the three published forms:
    box_anno.json `{vid: [{"second", "box", "step_name"}]}`, GoundingYouTubeBox.json
    `{vid: {"<sec>": {"box", "step"}}}` and id2xy_box.json `{vid: {"<sec>": [x1, y1, x2, y2]}}` (step None)."""
    data = as_dict(read_json(path), path, "top level")
    out: dict[str, list[GytBox]] = {}
    for vid, entries in data.items():
        if isinstance(entries, list):
            boxes = [_box_from_list_entry(vid, i, e, path) for i, e in enumerate(entries)]
        elif isinstance(entries, dict):
            boxes = [_box_from_keyed_entry(vid, k, e, path) for k, e in entries.items()]
        else:
            raise AnnotationError(path, f"[{vid!r}]", "expected a list of boxes or an object keyed by second")
        seconds = [b.second for b in boxes]
        if len(set(seconds)) != len(seconds):
            dup = sorted({s for s in seconds if seconds.count(s) > 1})
            raise AnnotationError(path, f"[{vid!r}]", f"more than one box for second(s) {dup[:5]}")
        out[vid] = sorted(boxes, key=lambda b: b.second)
    return out


def _box_from_list_entry(vid: str, i: int, entry, path) -> GytBox:
    where = f"[{vid!r}][{i}]"
    entry = as_dict(entry, path, where)
    second = as_int(get(entry, "second", path, where), path, f"{where}['second']")
    box = as_box(get(entry, "box", path, where), path, f"{where}['box']")
    step = as_str(get(entry, "step_name", path, where), path, f"{where}['step_name']")
    return GytBox(vid, second, box, step)


def _box_from_keyed_entry(vid: str, key: str, entry, path) -> GytBox:
    where = f"[{vid!r}][{key!r}]"
    second = as_second_key(key, path, where)
    if isinstance(entry, dict):
        box = as_box(get(entry, "box", path, where), path, f"{where}['box']")
        return GytBox(vid, second, box, as_str(get(entry, "step", path, where), path, f"{where}['step']"))
    return GytBox(vid, second, as_box(entry, path, where), None)


def load_segments(path: str | os.PathLike) -> dict[str, list[GytSegment]]:
    """seg.json / ground_seg.json / ground_seg_3to20.json: `{vid: [{"segment": [s, e], "id", "sentence"}]}`,
    in file order. Segments with e <= s are kept as written."""
    data = as_dict(read_json(path), path, "top level")
    out: dict[str, list[GytSegment]] = {}
    for vid, entries in data.items():
        segs = []
        for i, entry in enumerate(as_list(entries, path, f"[{vid!r}]")):
            where = f"[{vid!r}][{i}]"
            entry = as_dict(entry, path, where)
            span = as_list(get(entry, "segment", path, where), path, f"{where}['segment']")
            if len(span) != 2:
                raise AnnotationError(path, f"{where}['segment']", f"expected [start, end], got {span!r}")
            start, end = (as_int(v, path, f"{where}['segment'][{j}]") for j, v in enumerate(span))
            seg_id = as_int(get(entry, "id", path, where), path, f"{where}['id']")
            sentence = as_str(get(entry, "sentence", path, where), path, f"{where}['sentence']")
            segs.append(GytSegment(vid, seg_id, start, end, sentence))
        ids = [s.id for s in segs]
        if len(set(ids)) != len(ids):
            raise AnnotationError(path, f"[{vid!r}]", "segment ids are not unique")
        out[vid] = segs
    return out


def load_vid2step(path: str | os.PathLike) -> dict[str, list[str]]:
    """vid2step.json: each video's ordered query pool (its steps, then "background")."""
    data = as_dict(read_json(path), path, "top level")
    return {vid: [as_str(s, path, f"[{vid!r}][{i}]") for i, s in enumerate(as_list(steps, path, f"[{vid!r}]"))]
            for vid, steps in data.items()}


def load_sizes(path: str | os.PathLike) -> dict[str, tuple[int, int]]:
    """id2wh.json / id2wh_new.json: `{vid: [W, H]}` in pixels (for id2wh_reso.json use `load_scales`)."""
    data = as_dict(read_json(path), path, "top level")
    out = {}
    for vid, wh in data.items():
        w, h = _pair(wh, path, vid)
        out[vid] = (as_int(w, path, f"[{vid!r}][0]"), as_int(h, path, f"[{vid!r}][1]"))
        if min(out[vid]) <= 0:
            raise AnnotationError(path, f"[{vid!r}]", f"frame size must be positive, got {wh!r}")
    return out


def load_scales(path: str | os.PathLike) -> dict[str, tuple[float, float]]:
    """id2wh_reso.json: `{vid: [640/W, 480/H]}`, the resize ratio from the original to the 640x480 video."""
    data = as_dict(read_json(path), path, "top level")
    out = {}
    for vid, ratio in data.items():
        a, b = _pair(ratio, path, vid)
        out[vid] = (as_number(a, path, f"[{vid!r}][0]"), as_number(b, path, f"[{vid!r}][1]"))
    return out


def _pair(value, path, vid: str) -> list:
    value = as_list(value, path, f"[{vid!r}]")
    if len(value) != 2:
        raise AnnotationError(path, f"[{vid!r}]", f"expected [W, H], got {value!r}")
    return value


def load_points(path: str | os.PathLike) -> dict[str, list[GytPoint]]:
    """pumpkin_youtube_FPS_21k_annotation_full_agg_p.json: a list of `{image_url, x, y, mean_dist}` where the
    image name is `<vid>/<vid>_<second>_<step>.jpg`. Grouped by video, sorted by (second, step)."""
    data = as_list(read_json(path), path, "top level")
    out: dict[str, list[GytPoint]] = {}
    for i, entry in enumerate(data):
        where = f"[{i}]"
        entry = as_dict(entry, path, where)
        url = as_str(get(entry, "image_url", path, where), path, f"{where}['image_url']")
        vid, second, step = _parse_point_url(url, path, where)
        point = GytPoint(vid, second, step,
                         *(as_optional_number(get(entry, k, path, where), path, f"{where}[{k!r}]")
                           for k in ("x", "y", "mean_dist")), url)
        out.setdefault(vid, []).append(point)
    for points in out.values():
        points.sort(key=lambda p: (p.second, p.step))
    return out


def _parse_point_url(url: str, path, where: str) -> tuple[str, int, str]:
    # Video ids contain "_" themselves, so the folder name (the id) is matched as a prefix of the file name.
    parts = PurePosixPath(url).parts
    if len(parts) < 2 or not parts[-1].endswith(".jpg"):
        raise AnnotationError(path, where, f"image_url {url!r} is not .../<vid>/<vid>_<second>_<step>.jpg")
    vid, stem = parts[-2], parts[-1][: -len(".jpg")]
    second, sep, step = stem[len(vid) + 1:].partition("_")
    if not stem.startswith(vid + "_") or not sep or not step or not (second.isascii() and second.isdigit()):
        raise AnnotationError(path, where, f"image_url {url!r} is not .../<vid>/<vid>_<second>_<step>.jpg")
    return vid, int(second), step
