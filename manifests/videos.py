"""Finding video files and describing them (videos.parquet rows).

Probing goes through `manifests.ffmpeg.probe` only, in a thread pool (ffprobe runs as a subprocess and PyAV
releases the GIL while it reads, so threads overlap the I/O). A file that is missing or cannot be probed is
not an error here: its row carries `probe_error` and the extraction stage records the failure.
"""
from __future__ import annotations

import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from tqdm import tqdm

from manifests.ffmpeg import FFmpegError, probe
from manifests.integrity import id_problem, is_under, probe_problem, safe_id, shown
from manifests.schema import VideoRow

# In order of preference when one id has several files in one directory (<vid>.mp4 and <vid>.webm); compared
# case-insensitively. MPEG transport streams (.ts, camcorder .mts/.m2ts), phone .3gp/.3g2 and Ogg .ogv included.
VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".mpg", ".mpeg", ".flv", ".wmv", ".ts",
                    ".mts", ".m2ts", ".3gp", ".3g2", ".ogv")
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


def _walk(root: Path, recursive: bool) -> tuple[list[Path], list[Path]]:
    """(video files, other files) under `root`, each sorted by relative path."""
    videos, others = [], []
    for p in root.rglob("*") if recursive else root.iterdir():
        if is_video_file(p):
            videos.append(p)
        elif p.is_file():
            others.append(p)
    key = lambda p: p.relative_to(root).as_posix()  # noqa: E731
    return sorted(videos, key=key), sorted(others, key=key)


@dataclass(frozen=True)
class FolderListing:
    videos: list[tuple[str, Path]]  # (video_id, absolute path), ids safe (manifests.integrity.safe_id)
    unsafe: list[tuple[Path, str]]  # video files whose id would not be a safe name, with the reason
    others: list[Path]  # files without a video extension


def scan_folder(root: str | os.PathLike, recursive: bool = False) -> FolderListing:
    """The videos of a folder, the video files whose names cannot be ids, and the other files.

    The id is the path relative to `root` without its extension (the file stem when not recursive); when two
    files would get the same id (clip.mp4 and clip.mkv) both keep their extension in the id."""
    root = Path(root).absolute()
    if not root.is_dir():
        raise NotADirectoryError(f"{root}: not a directory")
    files, others = _walk(root, recursive)
    stems = [p.relative_to(root).with_suffix("").as_posix() for p in files]
    counts = Counter(stems)
    videos, unsafe = [], []
    for stem, p in zip(stems, files):
        vid = p.relative_to(root).as_posix() if counts[stem] > 1 else stem
        problem = id_problem(vid)
        if problem is None:
            videos.append((vid, p))
        else:
            unsafe.append((p, problem))
    return FolderListing(videos, unsafe, others)


def list_video_files(root: str | os.PathLike, recursive: bool = False) -> list[tuple[str, Path]]:
    """(video_id, absolute path) of every video file whose id is a safe name (see `scan_folder`)."""
    return scan_folder(root, recursive).videos


def index_video_dir(root: str | os.PathLike, recursive: bool = False) -> dict[str, list[Path]]:
    """{file stem: its video files, preferred extension (VIDEO_EXTENSIONS order) first} of a directory (one
    listing instead of a stat per id and extension)."""
    root = Path(root).absolute()
    if not root.is_dir():
        raise NotADirectoryError(f"{root}: video directory does not exist")
    rank = {ext: i for i, ext in enumerate(VIDEO_EXTENSIONS)}
    found: dict[str, list[Path]] = {}
    for p in _walk(root, recursive)[0]:
        found.setdefault(p.stem, []).append(p)
    return {stem: sorted(paths, key=lambda p: rank[p.suffix.lower()]) for stem, paths in found.items()}


def locate(video_ids: Sequence[str], video_dir: str | os.PathLike, dataset: str, split: str | None,
           recursive: bool = False) -> list[VideoSource]:
    """Sources for annotation video ids: `<video_dir>/<id>.<ext>` when present, else the expected
    `<video_dir>/<id>.mp4` (probing then records it as missing). Ids must be safe names, unique, and match
    files of one directory only (with --recursive, `a/clip.mp4` and `b/clip.mp4` are ambiguous): ValueError
    naming them otherwise. Every path lies inside `video_dir`."""
    index = index_video_dir(video_dir, recursive)
    root = Path(video_dir).absolute()
    out, seen = [], set()
    for v in video_ids:
        safe_id(v, "video id")
        if v in seen:
            raise ValueError(f"video id {shown(v)} is listed twice")
        seen.add(v)
        candidates = index.get(v, [root / f"{v}.mp4"])
        if len({p.parent for p in candidates}) > 1:
            raise ValueError(f"video id {shown(v)} matches files in several directories under {root}: "
                             f"{', '.join(str(p.relative_to(root)) for p in candidates)}; keep one")
        path = candidates[0]
        if not is_under(path, root):  # safe ids never get here; a guard in case the rules change
            raise ValueError(f"video id {shown(v)} resolves to {path}, outside {root}")
        out.append(VideoSource(v, str(path), dataset, split))
    return out


def describe(source: VideoSource) -> VideoRow:
    """Probe one video into its row; a missing or unreadable file, or one whose description is beyond the
    bounds of manifests.integrity, gives a row with `probe_error`."""
    base = dict(video_id=source.video_id, path=source.path, dataset=source.dataset, split=source.split)
    if not os.path.exists(source.path):
        return VideoRow(**base, probe_error=f"missing: {source.path}")
    try:
        info = probe(source.path)
    except (FFmpegError, OSError, ValueError) as exc:  # ProbeError is an FFmpegError
        return VideoRow(**base, probe_error=str(exc) or type(exc).__name__)
    beyond = probe_problem(info.duration, info.width, info.height, info.fps, info.rotation)
    if beyond:
        return VideoRow(**base, probe_error=f"{source.path}: {beyond}")
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
