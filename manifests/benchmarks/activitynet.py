"""ActivityNet Captions annotations (Krishna et al. 2017), as published (`train.json`, `val_1.json`,
`val_2.json`): `{video_id: {"duration": seconds, "timestamps": [[start, end], ...], "sentences": [...]}}`, one
timestamp per sentence, in the order of the video's paragraph. Times are seconds of the original video.

COOT (Ging et al. NeurIPS 2020, Sec. 4 and Table 2) evaluates video-paragraph retrieval on `val_1.json` ("val1",
4,917 video-paragraph pairs with features): the paragraph is the video's sentences in order; the timed sentences
are the clips that build the video's representation (the clip level is trained on, never reported).

The reader keeps what the file says (a span past the duration, or ending before it starts, is kept as written:
callers decide); sentences are stripped of surrounding white space (the published files start most of them with
a space). A video whose lists differ in length, a span that is not two finite numbers, or a video without
sentences is refused naming the file and the key.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from manifests.benchmarks.common import as_dict, as_list, as_number, as_str, get, read_json
from manifests.errors import AnnotationError


@dataclass(frozen=True)
class ActivityNetSentence:
    index: int          # position in the video's paragraph (0-based): the query / caption id
    start: float
    end: float
    sentence: str


@dataclass(frozen=True)
class ActivityNetVideo:
    video_id: str
    duration: float
    sentences: tuple[ActivityNetSentence, ...]


def load_activitynet(path: str | os.PathLike) -> dict[str, ActivityNetVideo]:
    """Every video of the file, in file order; sentences in paragraph order."""
    top = as_dict(read_json(path), path, "top level")
    if not top:
        raise AnnotationError(path, "top level", "no video")
    return {vid: _video(vid, entry, path) for vid, entry in top.items()}


def _video(vid: str, entry, path) -> ActivityNetVideo:
    where = f"[{vid!r}]"
    entry = as_dict(entry, path, where)
    duration = as_number(get(entry, "duration", path, where), path, f"{where}['duration']")
    spans = as_list(get(entry, "timestamps", path, where), path, f"{where}['timestamps']")
    texts = as_list(get(entry, "sentences", path, where), path, f"{where}['sentences']")
    if len(spans) != len(texts):
        raise AnnotationError(path, where, f"{len(spans)} timestamps but {len(texts)} sentences")
    if not texts:
        raise AnnotationError(path, where, "no sentence")
    sentences = []
    for i, (span, text) in enumerate(zip(spans, texts)):
        at = f"{where}['timestamps'][{i}]"
        span = as_list(span, path, at)
        if len(span) != 2:
            raise AnnotationError(path, at, f"expected [start, end], got {span!r}")
        start, end = (as_number(v, path, f"{at}[{j}]") for j, v in enumerate(span))
        sentences.append(ActivityNetSentence(i, start, end, as_str(text, path, f"{where}['sentences'][{i}]").strip()))
    return ActivityNetVideo(vid, duration, tuple(sentences))
