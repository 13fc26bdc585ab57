"""DiDeMo (Hendricks et al., "Localizing Moments in Video with Natural Language", ICCV 2017): the published
annotation files `train_data.json`, `val_data.json`, `test_data.json` (github LisaAnne/LocalizingMoments,
data/): a JSON list of

    {"video": "<flickr id>.mov", "times": [[s, e], ...], "description": str, "annotation_id": int, ...}

(other keys, such as "dl_link", "num_segments", "train_times", are not read). A video is cut into 5-s segments,
at most 6 (videos are 25-30 s, the DiDeMo paper Sec. 4); `times` holds each annotator's moment (4 in val/test) as
inclusive segment indices 0 <= s <= e <= 5. The 21 candidate moments are every contiguous span of 1-6 segments
(`CANDIDATES`: by length, then start: (0,0), (1,1), ... (5,5), (0,1), ... (0,5)).

A query's id is its `annotation_id` (unique in the file; the caption id `<video>:query:<id>`); its one
span, where one is needed (retrieval clips, the caption's times), is `consensus(times)`: the moment most
annotators chose, ties to the one written first. The moments scorer reads every annotator's times instead
(eval.metrics.moments.didemo_metrics). The video id is the file's "video" value as written (with its
extension): a video file is looked for as `<video_dir>/<video>.<ext>`.

`build_didemo` makes the manifest draft: every video of the file, whole (evaluation), its descriptions as
captions of kind "query" at their consensus times in seconds.
"""
from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from manifests.benchmarks.common import as_dict, as_int, as_list, as_str, get, read_json
from manifests.builders import Draft, caption_id, check_ids
from manifests.errors import AnnotationError
from manifests.schema import CaptionRow
from manifests.videos import locate

SEGMENT_S = 5.0        # seconds per segment (DiDeMo paper Sec. 4: "5-second segments")
N_SEGMENTS = 6         # at most 6 segments per video (30 s)
# every contiguous span (first, last) of 1..6 segments, by length, then start: the 21 candidates
CANDIDATES: tuple[tuple[int, int], ...] = tuple((s, s + n - 1) for n in range(1, N_SEGMENTS + 1)
                                                for s in range(N_SEGMENTS - n + 1))


@dataclass(frozen=True)
class DidemoQuery:
    annotation_id: int
    video_id: str
    times: tuple[tuple[int, int], ...]   # each annotator's (first, last) segment, inclusive, as written
    description: str


def span_seconds(span: tuple[int, int]) -> tuple[float, float]:
    """(start, end) in seconds [start, end) of inclusive segment indices (first, last)."""
    return span[0] * SEGMENT_S, (span[1] + 1) * SEGMENT_S


def consensus(times: tuple[tuple[int, int], ...]) -> tuple[int, int]:
    """The moment chosen by most annotators; ties go to the one written first."""
    counts = Counter(times)
    return max(times, key=lambda t: (counts[t], -times.index(t)))


def _times(value, path, where: str) -> tuple[tuple[int, int], ...]:
    spans = as_list(value, path, where)
    if not spans:
        raise AnnotationError(path, where, "no annotator's times")
    out = []
    for k, span in enumerate(spans):
        w = f"{where}[{k}]"
        span = as_list(span, path, w)
        if len(span) != 2:
            raise AnnotationError(path, w, f"expected [first, last] segment, got {span!r}")
        s, e = (as_int(v, path, f"{w}[{j}]") for j, v in enumerate(span))
        if not 0 <= s <= e < N_SEGMENTS:
            raise AnnotationError(path, w, f"segments [{s}, {e}] outside 0 <= first <= last <= {N_SEGMENTS - 1}")
        out.append((s, e))
    return tuple(out)


def load_didemo(path: str | os.PathLike) -> list[DidemoQuery]:
    """Every entry of the file, in file order; annotation ids must be unique."""
    items = as_list(read_json(path), path, "top level")
    out, seen = [], {}
    for i, item in enumerate(items):
        where = f"[{i}]"
        item = as_dict(item, path, where)
        aid = as_int(get(item, "annotation_id", path, where), path, f"{where}['annotation_id']")
        if aid in seen:
            raise AnnotationError(path, f"{where}['annotation_id']", f"{aid} already used by entry [{seen[aid]}]")
        seen[aid] = i
        description = as_str(get(item, "description", path, where), path, f"{where}['description']")
        if not description.strip():
            raise AnnotationError(path, f"{where}['description']", "empty description")
        out.append(DidemoQuery(aid, as_str(get(item, "video", path, where), path, f"{where}['video']"),
                               _times(get(item, "times", path, where), path, f"{where}['times']"), description))
    if not out:
        raise AnnotationError(path, "top level", "no annotation")
    return out


def build_didemo(annotations: str | os.PathLike, video_dir: str | os.PathLike, *, recursive: bool = False,
                 dataset: str = "didemo") -> Draft:
    """DiDeMo: every video of the file as a whole video (evaluation); each description a caption of kind
    "query" (`<video>:query:<annotation_id>`) at its consensus moment in seconds."""
    path = Path(annotations)
    queries = load_didemo(path)
    videos = list(dict.fromkeys(q.video_id for q in queries))
    check_ids(path, videos, lambda v: f"video {v!r}")
    captions = [CaptionRow(caption_id(q.video_id, "query", q.annotation_id), q.video_id,
                           *span_seconds(consensus(q.times)), q.description, "query",
                           f"{path.name} annotation_id {q.annotation_id}") for q in queries]
    split = next((s for s in ("train", "val", "test") if path.name.startswith(s)), None)
    return Draft(dataset, locate(videos, video_dir, dataset, split, recursive), captions, "eval",
                 notes=("caption times: the moment most annotators chose (manifests.benchmarks.didemo.consensus)",))
