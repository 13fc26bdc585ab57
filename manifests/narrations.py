"""HowTo100M-style narration files, in the three published layouts (detected automatically):

1. a directory of per-video CSVs `<video_id>.csv` with a header containing `start,end,text`;
2. the HowTo100M `caption.json`: `{vid: {"start": [s...], "end": [e...], "text": [str...]}}`;
3. HowToCaption's variant of (2) where each text entry is a list of strings (several captions rewritten from
   one ASR span): each inner string becomes one narration with the span's times.

A JSON file may mix (2) and (3) entry by entry. Times are seconds.
"""
from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass
from pathlib import Path

from manifests.benchmarks.common import (
    as_dict, as_list, as_number, as_str, get, read_json, unique_stems,
)
from manifests.errors import AnnotationError

CSV_COLUMNS = ("start", "end", "text")


@dataclass(frozen=True)
class Narration:
    start: float
    end: float
    text: str
    source: str  # file and row it came from


def load_narrations(path: str | os.PathLike) -> dict[str, list[Narration]]:
    """{video_id: narrations in file order} from a CSV directory or a caption JSON file."""
    path = Path(path)
    if path.is_dir():
        return load_csv_dir(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: narration file or directory does not exist")
    return load_caption_json(path)


def load_csv_dir(directory: Path) -> dict[str, list[Narration]]:
    files = sorted(p for p in directory.iterdir() if p.suffix.lower() == ".csv" and p.is_file())
    if not files:
        raise AnnotationError(directory, "", "holds no <video_id>.csv narration files")
    return {stem: load_csv(p) for stem, p in unique_stems(directory, files).items()}


def load_csv(path: Path) -> list[Narration]:
    """One video's narrations; rows are numbered as file lines (the header is line 1)."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            reader = csv.DictReader(f)
            missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise AnnotationError(path, "header", f"missing column(s) {missing} (has {reader.fieldnames})")
            return [_csv_row(path, reader.line_num, row) for row in reader]
    except UnicodeDecodeError as exc:
        raise AnnotationError(path, f"byte {exc.start}", "not UTF-8 text") from exc
    except csv.Error as exc:
        raise AnnotationError(path, "", f"not a readable CSV ({exc})") from exc


def _csv_row(path: Path, line: int, row: dict) -> Narration:
    where = f"line {line}"
    times = []
    for key in ("start", "end"):
        value = row.get(key)
        try:
            times.append(float(value))
        except (TypeError, ValueError) as exc:
            raise AnnotationError(path, where, f"column {key!r} is not a number: {value!r}") from exc
        if not math.isfinite(times[-1]):
            raise AnnotationError(path, where, f"column {key!r} is not a finite number: {value!r}")
    if row.get("text") is None:
        raise AnnotationError(path, where, "row has no 'text' field")
    return Narration(times[0], times[1], row["text"], f"{path.name} {where}")


def load_caption_json(path: Path) -> dict[str, list[Narration]]:
    data = as_dict(read_json(path), path, "top level")
    return {vid: _json_video(path, vid, entry) for vid, entry in data.items()}


def _json_video(path: Path, vid: str, entry) -> list[Narration]:
    where = f"[{vid!r}]"
    entry = as_dict(entry, path, where)
    starts, ends, texts = (as_list(get(entry, k, path, where), path, f"{where}[{k!r}]") for k in CSV_COLUMNS)
    if not len(starts) == len(ends) == len(texts):
        raise AnnotationError(path, where, f"'start', 'end', 'text' differ in length "
                                           f"({len(starts)}, {len(ends)}, {len(texts)})")
    out = []
    for i, (s, e, text) in enumerate(zip(starts, ends, texts)):
        start = as_number(s, path, f"{where}['start'][{i}]")
        end = as_number(e, path, f"{where}['end'][{i}]")
        src = f"{path.name}{where} row {i}"
        if isinstance(text, list):  # HowToCaption: several captions for one span
            out += [Narration(start, end, as_str(t, path, f"{where}['text'][{i}][{j}]"), f"{src} text {j}")
                    for j, t in enumerate(text)]
        else:
            out.append(Narration(start, end, as_str(text, path, f"{where}['text'][{i}]"), src))
    return out
