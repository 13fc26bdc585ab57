"""Finding video files and describing them (videos.parquet rows).

Probing goes through `pipeline.ffmpeg.probe` only, in a thread pool (ffprobe runs as a subprocess and PyAV
releases the GIL while it reads, so threads overlap the I/O). A file that is missing or cannot be probed is
not an error here: its row carries `probe_error` and the extraction stage records the failure.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from tqdm import tqdm

from manifests.schema import VideoRow
from pipeline.ffmpeg import FFmpegError, probe

# In order of preference when one id has several files (<vid>.mp4 and <vid>.webm).
VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".mpg", ".mpeg", ".flv", ".wmv")
PROGRESS_MIN = 20  # show a progress bar from this many videos on


@dataclass(frozen=True)
class VideoSource:
    """A video to describe: where it is (or is expected to be) and what it belongs to."""

    video_id: str
    path: str  # absolute
    dataset: str
    split: str | None = None


def is_video_file(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_EXTENSIONS and path.is_file()


def _walk(root: Path, recursive: bool) -> list[Path]:
    files = (p for p in (root.rglob("*") if recursive else root.iterdir()) if is_video_file(p))
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


def list_video_files(root: str | os.PathLike, recursive: bool = False) -> list[tuple[str, Path]]:
    """(video_id, absolute path) for every file with a video extension, sorted by relative path.

    The id is the path relative to `root` without its extension (the file stem when not recursive); when two
    files would get the same id (clip.mp4 and clip.mkv) both keep their extension in the id."""
    root = Path(root).absolute()
    if not root.is_dir():
        raise NotADirectoryError(f"{root}: not a directory")
    files = _walk(root, recursive)
    stems = [p.relative_to(root).with_suffix("").as_posix() for p in files]
    clashes = {s for s in stems if stems.count(s) > 1}
    return [(p.relative_to(root).as_posix() if s in clashes else s, p) for s, p in zip(stems, files)]


def index_video_dir(root: str | os.PathLike, recursive: bool = False) -> dict[str, Path]:
    """{file stem: absolute path} of the videos in a directory (one listing instead of a stat per id and
    extension). Among files with the same stem the preferred extension (VIDEO_EXTENSIONS order) wins."""
    root = Path(root).absolute()
    if not root.is_dir():
        raise NotADirectoryError(f"{root}: video directory does not exist")
    rank = {ext: i for i, ext in enumerate(VIDEO_EXTENSIONS)}
    found: dict[str, Path] = {}
    for p in _walk(root, recursive):
        best = found.get(p.stem)
        if best is None or rank[p.suffix.lower()] < rank[best.suffix.lower()]:
            found[p.stem] = p
    return found


def locate(video_ids: Sequence[str], video_dir: str | os.PathLike, dataset: str, split: str | None,
           recursive: bool = False) -> list[VideoSource]:
    """Sources for annotation video ids: `<video_dir>/<id>.<ext>` when present, else the expected
    `<video_dir>/<id>.mp4` (probing then records it as missing)."""
    index = index_video_dir(video_dir, recursive)
    root = Path(video_dir).absolute()
    return [VideoSource(v, str(index.get(v, root / f"{v}.mp4")), dataset, split) for v in video_ids]


def describe(source: VideoSource) -> VideoRow:
    """Probe one video into its row; a missing or unreadable file gives a row with `probe_error`."""
    base = dict(video_id=source.video_id, path=source.path, dataset=source.dataset, split=source.split)
    if not os.path.exists(source.path):
        return VideoRow(**base, probe_error=f"missing: {source.path}")
    try:
        info = probe(source.path)
    except (FFmpegError, OSError, ValueError) as exc:  # ProbeError is an FFmpegError
        return VideoRow(**base, probe_error=str(exc) or type(exc).__name__)
    return VideoRow(**base, duration=info.duration, width=info.width, height=info.height, fps=info.fps,
                    rotation=info.rotation, codec=info.codec, has_audio=info.has_audio)


def probe_videos(sources: Sequence[VideoSource], jobs: int = 4, progress: bool = True) -> list[VideoRow]:
    """Rows for all sources, in input order; probes run `jobs` at a time."""
    if not sources:
        return []
    rows: dict[int, VideoRow] = {}
    show = progress and len(sources) >= PROGRESS_MIN
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool, \
            tqdm(total=len(sources), desc="probing videos", unit="video", disable=not show) as bar:
        futures = {pool.submit(describe, s): i for i, s in enumerate(sources)}
        for future in as_completed(futures):
            rows[futures[future]] = future.result()
            bar.update()
    return [rows[i] for i in range(len(sources))]
