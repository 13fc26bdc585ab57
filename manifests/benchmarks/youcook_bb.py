"""YouCook2-BoundingBox (Zhou, Louis, Corso, BMVC 2018; the object-localisation benchmark of CoMMA Sec. 4.1,
Table 3): `yc2_bb_val_annotations.json` and `yc2_bb_public_test_annotations.json` from the YouCook2 download page
(http://youcook2.eecs.umich.edu/download, the "YouCook2-BB" annotation pack; its `yc2_bb_skeleton.txt` documents
the layout):

    {"database": {video_id: {"rwidth": 720, "rheight": H, ["recipe_type": str, "duration": s,]
        "segments": {segment_id: {["segment": [start, end],] "objects": [
            {"label": str, "boxes": [{"xtl", "ytl", "xbr", "ybr", "outside": 0|1, "occluded": 0|1} or {}, ...]}
        ]}}}}}

- `segment_id` is the id of the YouCook2 segment (`youcookii_annotations_trainval.json` `annotations[].id`), written
  as a string; some copies also give the segment's `[start, end]` seconds, else they come from that file.
- Boxes are pixels of the video resized to `rwidth` x `rheight` (720 wide, aspect ratio kept).
- `boxes[j]` is the j-th frame of the segment sampled at 1 fps ("frames are annotated at 1fps", the authors'
  loader): the frame at second start + j. `{}` is a frame without annotation; `outside` = 1: the object is
  not in the frame; `occluded` = 1: it is occluded (the authors' evaluation counts neither).
- The public test file holds no boxes (the test split is kept for server-side evaluation): objects and segments
  may be absent; this reader accepts that and the scorer refuses to score an empty plan.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from manifests.benchmarks.common import as_dict, as_int, as_list, as_number, as_str, get, read_database
from manifests.errors import AnnotationError

BOX_KEYS = ("xtl", "ytl", "xbr", "ybr")


@dataclass(frozen=True)
class BBFrame:
    """One annotated frame of an object: its box (x1, y1, x2, y2) and flags."""
    box: tuple[float, float, float, float]
    outside: bool
    occluded: bool


@dataclass(frozen=True)
class BBObject:
    label: str
    frames: tuple[BBFrame | None, ...]  # frame j = second start + j of the segment; None: not annotated


@dataclass(frozen=True)
class BBSegment:
    id: str                              # the YouCook2 segment id, as written
    span: tuple[float, float] | None     # (start, end) seconds when the file gives them
    objects: tuple[BBObject, ...]


@dataclass(frozen=True)
class BBVideo:
    video_id: str
    width: int                           # rwidth: the box coordinate frame
    height: int                          # rheight
    segments: tuple[BBSegment, ...]


def load_youcook_bb(path: str | os.PathLike) -> dict[str, BBVideo]:
    """Every video of the file, in file order; segments and objects in file order."""
    return {vid: _video(vid, entry, path) for vid, entry in read_database(path).items()}


def _video(vid: str, entry, path) -> BBVideo:
    where = f"['database'][{vid!r}]"
    entry = as_dict(entry, path, where)
    size = [as_int(get(entry, k, path, where), path, f"{where}[{k!r}]") for k in ("rwidth", "rheight")]
    if min(size) < 1:
        raise AnnotationError(path, where, f"rwidth x rheight must be positive, got {size[0]}x{size[1]}")
    segments = as_dict(entry.get("segments", {}), path, f"{where}['segments']")
    return BBVideo(vid, size[0], size[1],
                   tuple(_segment(sid, seg, path, f"{where}['segments'][{sid!r}]") for sid, seg in segments.items()))


def _segment(sid: str, seg, path, where: str) -> BBSegment:
    seg = as_dict(seg, path, where)
    span = None
    if "segment" in seg:
        pair = as_list(seg["segment"], path, f"{where}['segment']")
        if len(pair) != 2:
            raise AnnotationError(path, f"{where}['segment']", f"expected [start, end], got {pair!r}")
        span = tuple(as_number(v, path, f"{where}['segment'][{i}]") for i, v in enumerate(pair))
    objects = as_list(seg.get("objects", []), path, f"{where}['objects']")
    return BBSegment(sid, span, tuple(_object(o, path, f"{where}['objects'][{i}]") for i, o in enumerate(objects)))


def _object(obj, path, where: str) -> BBObject:
    obj = as_dict(obj, path, where)
    label = as_str(get(obj, "label", path, where), path, f"{where}['label']")
    boxes = as_list(get(obj, "boxes", path, where), path, f"{where}['boxes']")
    return BBObject(label, tuple(_frame(b, path, f"{where}['boxes'][{j}]") for j, b in enumerate(boxes)))


def _frame(box, path, where: str) -> BBFrame | None:
    box = as_dict(box, path, where)
    if not box:
        return None
    coords = tuple(as_number(get(box, k, path, where), path, f"{where}[{k!r}]") for k in BOX_KEYS)
    flags = []
    for key in ("outside", "occluded"):
        value = as_int(get(box, key, path, where), path, f"{where}[{key!r}]")
        if value not in (0, 1):
            raise AnnotationError(path, f"{where}[{key!r}]", f"expected 0 or 1, got {value}")
        flags.append(bool(value))
    return BBFrame(coords, *flags)
