"""YouCook2 annotations (`youcookii_annotations_trainval.json`):
`{"database": {vid: {"duration", "subset", "recipe_type", "video_url", "annotations": [{"segment": [s, e],
"id", "sentence"}]}}}`. Times are seconds of the original video."""
from __future__ import annotations

import os
from dataclasses import dataclass

from manifests.benchmarks.common import as_dict, as_int, as_list, as_number, as_str, get, read_database
from manifests.errors import AnnotationError


@dataclass(frozen=True)
class YouCook2Segment:
    id: int
    start: float
    end: float
    sentence: str


@dataclass(frozen=True)
class YouCook2Video:
    video_id: str
    subset: str  # "training" | "validation" (as written in the file)
    duration: float
    recipe_type: str
    url: str
    segments: tuple[YouCook2Segment, ...]


def load_youcook2(path: str | os.PathLike) -> dict[str, YouCook2Video]:
    """Every video of the file, in file order; segments in file order."""
    return {vid: _video(vid, entry, path) for vid, entry in read_database(path).items()}


def _video(vid: str, entry, path) -> YouCook2Video:
    where = f"['database'][{vid!r}]"
    entry = as_dict(entry, path, where)
    segments = tuple(_segment(i, seg, path, f"{where}['annotations'][{i}]") for i, seg in
                     enumerate(as_list(get(entry, "annotations", path, where), path, f"{where}['annotations']")))
    ids = [s.id for s in segments]
    if len(set(ids)) != len(ids):  # the id names the caption ("<vid>:step:<id>"): two would collide
        dup = sorted({i for i in ids if ids.count(i) > 1})
        raise AnnotationError(path, f"{where}['annotations']", f"annotation id(s) {dup[:5]} occur more than once")
    return YouCook2Video(
        video_id=vid,
        subset=as_str(get(entry, "subset", path, where), path, f"{where}['subset']"),
        duration=as_number(get(entry, "duration", path, where), path, f"{where}['duration']"),
        recipe_type=as_str(get(entry, "recipe_type", path, where), path, f"{where}['recipe_type']"),
        url=as_str(get(entry, "video_url", path, where), path, f"{where}['video_url']"),
        segments=segments,
    )


def _segment(i: int, seg, path, where: str) -> YouCook2Segment:
    seg = as_dict(seg, path, where)
    span = as_list(get(seg, "segment", path, where), path, f"{where}['segment']")
    if len(span) != 2:
        raise AnnotationError(path, f"{where}['segment']", f"expected [start, end], got {span!r}")
    start, end = (as_number(v, path, f"{where}['segment'][{j}]") for j, v in enumerate(span))
    return YouCook2Segment(
        id=as_int(get(seg, "id", path, where), path, f"{where}['id']"),
        start=start,
        end=end,
        sentence=as_str(get(seg, "sentence", path, where), path, f"{where}['sentence']"),
    )
