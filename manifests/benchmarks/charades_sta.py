"""Charades-STA (Gao et al., "TALL: Temporal Activity Localization via Language Query", ICCV 2017): the
sentence-moment pairs of `charades_sta_test.txt` / `charades_sta_train.txt` as published with the paper
(github jiyanggao/TALL), one line per pair:

    <video_id> <start> <end>##<sentence>

e.g. `3MSZA 24.3 30.4##person turn a light on.`; times are seconds of the Charades video (one decimal in the
released files), the sentence runs to the end of the line (kept as written, trailing spaces removed). The file
has no query ids and no video durations: a query's id is its 0-based position among its video's lines in file
order (the caption id `<video>:query:<k>`), and durations come from the extracted videos (eval/README.md,
section Charades-STA and DiDeMo).

A line that does not parse (no `##`, not three fields before it, a time that is not a finite number >= 0, an
empty sentence) is refused, naming the file and the line. Inverted or empty spans (end <= start) are read as
written: the timed queries leave them out (eval.scorers.timed_queries), as they have no IoU.

`build_charades_sta` makes the manifest draft for extraction: every video of the file, whole (evaluation), its
sentences as captions of kind "query" at their times.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

from manifests.benchmarks.common import read_lines
from manifests.builders import Draft, caption_id, check_ids
from manifests.errors import AnnotationError
from manifests.schema import CaptionRow
from manifests.videos import locate

SEPARATOR = "##"


@dataclass(frozen=True)
class CharadesQuery:
    video_id: str
    index: int        # 0-based position among the video's lines, in file order (the query id)
    start: float      # seconds, as written
    end: float
    sentence: str
    line: int         # 1-based line number in the file


def _time(text: str, path, line: int, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise AnnotationError(path, f"line {line}", f"{what} time {text!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise AnnotationError(path, f"line {line}", f"{what} time {text!r} must be a finite number >= 0")
    return value


def parse_line(text: str, path, line: int) -> tuple[str, float, float, str]:
    """(video id, start, end, sentence) of one annotation line."""
    if SEPARATOR not in text:
        raise AnnotationError(path, f"line {line}", f"expected '<video> <start> <end>##<sentence>', got {text!r}")
    head, sentence = text.split(SEPARATOR, 1)
    fields = head.split()
    if len(fields) != 3:
        raise AnnotationError(path, f"line {line}", f"expected '<video> <start> <end>' before '##', got {head!r}")
    sentence = sentence.strip()
    if not sentence:
        raise AnnotationError(path, f"line {line}", "empty sentence after '##'")
    return fields[0], _time(fields[1], path, line, "start"), _time(fields[2], path, line, "end"), sentence


def load_charades_sta(path: str | os.PathLike) -> dict[str, list[CharadesQuery]]:
    """`{video_id: queries}`: videos in order of first appearance, each video's queries in file order. Blank
    lines are skipped."""
    out: dict[str, list[CharadesQuery]] = {}
    for no, text in enumerate(read_lines(path), 1):
        if not text.strip():
            continue
        vid, start, end, sentence = parse_line(text, path, no)
        queries = out.setdefault(vid, [])
        queries.append(CharadesQuery(vid, len(queries), start, end, sentence, no))
    if not out:
        raise AnnotationError(path, "", "no annotation line")
    return out


def build_charades_sta(annotations: str | os.PathLike, video_dir: str | os.PathLike, *, recursive: bool = False,
                       dataset: str = "charades-sta") -> Draft:
    """Charades-STA: every video of the file as a whole video (evaluation), each sentence a caption of kind
    "query" (`<video>:query:<k>`, k = the query id above) at its times as written."""
    path = Path(annotations)
    by_video = load_charades_sta(path)
    check_ids(path, by_video, lambda v: f"video {v!r}")
    captions = [CaptionRow(caption_id(v, "query", q.index), v, q.start, q.end, q.sentence, "query",
                           f"{path.name} line {q.line}") for v, qs in by_video.items() for q in qs]
    split = "train" if "train" in path.name else "test"
    return Draft(dataset, locate(list(by_video), video_dir, dataset, split, recursive), captions, "eval",
                 notes=("no durations in the annotation file: proposals use the extracted video's length",))
