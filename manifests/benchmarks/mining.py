"""MiningYouTube annotation files (Kuehne et al.).

- `annotations/<vid>.srt`: one block per action segment (index, `HH:MM:SS,mmm --> HH:MM:SS,mmm`, label);
  UTF-8 with or without BOM, CRLF or LF. Background is implicit (the gaps). Times in seconds of the video.
  Blocks are in time order and do not overlap: an inverted block (end < start; zero length occurs and is kept)
  or one that starts more than `OVERLAP_TOLERANCE` before the previous block ends is refused, naming the line.
- `weakYouTube_dict.txt`: 513 class names (512 actions + `background` last); line i = class id i; trailing
  spaces in the file are stripped. `mapping_without_meta.txt` lists the same classes as `<id> <name>` in another
  order: the alignment code uses `weakYouTube_dict.txt`.
- `weakYouTube_length.txt`: mean segment length (frames) per class id.
- `<vid>.grammar`: one video's transcript (class names separated by spaces, background interleaved).
- `<vid>.gt`: one class name per video frame (~30 fps).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from manifests.benchmarks.common import read_lines, unique_stems
from manifests.errors import AnnotationError

_TIME = r"(\d+):(\d{2}):(\d{2})[,.](\d{3})"
_TIME_LINE = re.compile(rf"\s*{_TIME}\s*-->\s*{_TIME}\s*")
# The released files have 3 overlaps of at most 9 ms (frame times rounded to milliseconds): below one frame of
# the ~30 fps annotation is rounding, above it the file is wrong.
OVERLAP_TOLERANCE = 1 / 30


@dataclass(frozen=True)
class MiningSegment:
    start: float  # seconds
    end: float
    label: str


def _seconds(h: str, m: str, s: str, ms: str) -> float:
    return int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000.0


def load_srt(path: str | os.PathLike) -> list[MiningSegment]:
    """Segments of one .srt file in file order."""
    lines = read_lines(path)
    blocks: list[tuple[int, list[str]]] = []  # (1-based line number of the block, its lines)
    for no, line in enumerate(lines, 1):
        if not line.strip():
            continue
        if no == 1 or not lines[no - 2].strip():
            blocks.append((no, []))
        blocks[-1][1].append(line.strip())
    segments = [_srt_block(path, no, block) for no, block in blocks]
    for i in range(1, len(segments)):
        prev, seg = segments[i - 1], segments[i]
        if seg.start < prev.end - OVERLAP_TOLERANCE:
            raise AnnotationError(path, f"line {blocks[i][0] + 1}",
                                  f"block starts at {seg.start:.3f} s, before the previous block (line "
                                  f"{blocks[i - 1][0] + 1}) ends at {prev.end:.3f} s: blocks must be in time order "
                                  "and not overlap")
    return segments


def _srt_block(path, no: int, block: list[str]) -> MiningSegment:
    where = f"line {no}"
    if len(block) < 3 or not block[0].isdigit():
        raise AnnotationError(path, where, f"expected an SRT block (index, times, label), got {block!r}")
    match = _TIME_LINE.fullmatch(block[1])
    if not match:
        raise AnnotationError(path, f"line {no + 1}", f"expected 'HH:MM:SS,mmm --> HH:MM:SS,mmm', got {block[1]!r}")
    g = match.groups()
    start, end = _seconds(*g[:4]), _seconds(*g[4:])
    if end < start:
        raise AnnotationError(path, f"line {no + 1}", f"block ends ({end:.3f} s) before it starts ({start:.3f} s)")
    return MiningSegment(start, end, " ".join(block[2:]))


def load_srt_dir(directory: str | os.PathLike) -> dict[str, list[MiningSegment]]:
    """`{video_id: segments}` for every `<video_id>.srt` in a directory, sorted by video id."""
    directory = Path(directory)
    if not directory.is_dir():
        raise AnnotationError(directory, "", "not a directory of .srt files")
    files = sorted(p for p in directory.iterdir() if p.suffix.lower() == ".srt" and p.is_file())
    if not files:
        raise AnnotationError(directory, "", "holds no .srt files")
    return {stem: load_srt(p) for stem, p in unique_stems(directory, files).items()}


def load_class_dict(path: str | os.PathLike) -> list[str]:
    """Class names in class-id order (index = class id)."""
    names = [line.strip() for line in read_lines(path)]
    _check_names(path, names)
    return names


def load_mapping(path: str | os.PathLike) -> list[str]:
    """mapping_without_meta.txt (`<id> <name>` lines) as names indexed by their id."""
    by_id: dict[int, str] = {}
    for no, line in enumerate(read_lines(path), 1):
        cid, _, name = line.strip().partition(" ")
        if not cid.isdigit() or not name.strip():
            raise AnnotationError(path, f"line {no}", f"expected '<id> <name>', got {line!r}")
        by_id[int(cid)] = name.strip()
    if sorted(by_id) != list(range(len(by_id))):
        raise AnnotationError(path, "", "class ids are not 0..N-1 each once")
    names = [by_id[i] for i in range(len(by_id))]
    _check_names(path, names)
    return names


def _check_names(path, names: list[str]) -> None:
    for no, name in enumerate(names, 1):
        if not name:
            raise AnnotationError(path, f"line {no}", "empty class name")
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise AnnotationError(path, "", f"duplicate class names {dup[:5]}")


def load_lengths(path: str | os.PathLike) -> list[float]:
    """Mean segment length (frames) per class id, one number per line."""
    out = []
    for no, line in enumerate(read_lines(path), 1):
        try:
            out.append(float(line.strip()))
        except ValueError as exc:
            raise AnnotationError(path, f"line {no}", f"expected a number, got {line!r}") from exc
    return out


def load_grammar(path: str | os.PathLike) -> list[str]:
    """An ordered transcript: the class names of the file, split on whitespace."""
    labels = [token for line in read_lines(path) for token in line.split()]
    if not labels:
        raise AnnotationError(path, "", "empty transcript")
    return labels


def load_frame_labels(path: str | os.PathLike) -> list[str]:
    """One class name per video frame (the .gt files)."""
    labels = [line.strip() for line in read_lines(path)]
    for no, label in enumerate(labels, 1):
        if not label:
            raise AnnotationError(path, f"line {no}", "empty frame label")
    return labels


def load_video_ids(path: str | os.PathLike) -> list[str]:
    """videos_test.txt / videos_val.txt / videos_train.txt: one video id per line."""
    return [line.strip() for line in read_lines(path) if line.strip()]
