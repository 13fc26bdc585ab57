"""The one wrapper for ffmpeg: where the binaries come from, how they are run, and probing.

Every ffmpeg/ffprobe call of the project goes through `run` or `popen` here, with argument lists
(never shell strings), so a file name can never be interpreted by a shell and every failure raises
`FFmpegError` carrying ffmpeg's own stderr.
"""
from __future__ import annotations

import functools
import json
import math
import os
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path


class FFmpegError(RuntimeError):
    """ffmpeg or ffprobe exited non-zero, or produced output we cannot use."""

    def __init__(self, message: str, stderr: str = ""):
        self.stderr = stderr
        tail = stderr.strip().splitlines()[-6:]
        super().__init__(message + ("\n  ffmpeg said: " + "\n  ".join(tail) if tail else ""))


class ProbeError(FFmpegError):
    """A file is missing, unreadable, or holds no decodable video stream."""


@functools.cache
def ffmpeg_exe() -> str:
    """ffmpeg from PATH, else the static binary of the imageio-ffmpeg wheel (no system package needed)."""
    env = os.environ.get("GROUNDCACHE_FFMPEG")
    if env:
        return env
    found = shutil.which("ffmpeg")
    if found:
        return found
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


@functools.cache
def ffprobe_exe() -> str | None:
    """ffprobe from PATH when present; the imageio-ffmpeg wheel ships none (we fall back to PyAV)."""
    return os.environ.get("GROUNDCACHE_FFPROBE") or shutil.which("ffprobe")


def run(args: list[str], *, what: str, timeout: float | None = None, stdin: bytes | None = None) -> bytes:
    """Run ffmpeg with `args` (without the executable); return stdout or raise FFmpegError(what).

    `stdin` feeds raw input (e.g. generated frames with `-i pipe:0`)."""
    cmd = [ffmpeg_exe(), "-hide_banner", *(() if stdin is not None else ("-nostdin",)), *args]
    try:
        proc = subprocess.run(cmd, input=stdin, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise FFmpegError(f"{what}: ffmpeg timed out after {timeout} s") from exc
    if proc.returncode != 0:
        raise FFmpegError(f"{what}: ffmpeg exited with {proc.returncode}", proc.stderr.decode(errors="replace"))
    return proc.stdout


def popen(args: list[str], *, pass_fds: tuple[int, ...] = ()) -> subprocess.Popen:
    """Start ffmpeg streaming to pipes; the caller reads stdout (and any passed fds) and calls `finish`."""
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", *args]
    return subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, pass_fds=pass_fds
    )


def finish(proc: subprocess.Popen, *, what: str, stderr: str = "") -> None:
    """Wait for a streaming ffmpeg and raise FFmpegError when it failed."""
    code = proc.wait()
    if code != 0:
        raise FFmpegError(f"{what}: ffmpeg exited with {code}", stderr)


@dataclass(frozen=True)
class VideoInfo:
    """What decoding needs to know about a file. Width/height are as displayed (rotation applied)."""

    path: str
    duration: float  # seconds, of the video stream when known, else of the container
    width: int
    height: int
    fps: float  # average frame rate
    rotation: int  # display rotation in degrees, one of 0, 90, 180, 270
    codec: str
    n_frames: int | None  # from the container when it says; None when unknown
    has_audio: bool
    start_time: float = 0.0  # timestamp of the first video frame; our t = 0 is that frame

    def as_dict(self) -> dict:
        return asdict(self)


def probe(path: str | os.PathLike) -> VideoInfo:
    """Describe a video file: ffprobe when present, else PyAV. Raises ProbeError naming the file."""
    path = str(path)
    p = Path(path)
    if not p.exists():
        raise ProbeError(f"{path}: file does not exist")
    if p.is_dir():
        raise ProbeError(f"{path}: is a directory, not a video file")
    if p.stat().st_size == 0:
        raise ProbeError(f"{path}: file is empty (0 bytes)")
    info = _probe_ffprobe(path) if ffprobe_exe() else _probe_pyav(path)
    if not (info.width > 0 and info.height > 0):
        raise ProbeError(f"{path}: video stream has no frame size")
    if not (math.isfinite(info.duration) and info.duration > 0):
        raise ProbeError(f"{path}: video has no positive duration")
    return info


def _display_size(width: int, height: int, rotation: int) -> tuple[int, int]:
    return (height, width) if rotation in (90, 270) else (width, height)


def _norm_rotation(deg: float) -> int:
    return int(round(deg / 90.0)) * 90 % 360


def _probe_ffprobe(path: str) -> VideoInfo:
    cmd = [ffprobe_exe(), "-v", "error", "-print_format", "json", "-show_streams", "-show_format", path]
    proc = subprocess.run(cmd, capture_output=True, check=False)
    if proc.returncode != 0:
        raise ProbeError(f"{path}: not a readable media file", proc.stderr.decode(errors="replace"))
    meta = json.loads(proc.stdout or b"{}")
    streams = meta.get("streams", [])
    video = [s for s in streams if s.get("codec_type") == "video" and not s.get("disposition", {}).get("attached_pic")]
    if not video:
        raise ProbeError(f"{path}: no video stream (audio-only or not a video)")
    s = video[0]
    rotation = 0
    for side in s.get("side_data_list", []):
        if "rotation" in side:
            rotation = _norm_rotation(-float(side["rotation"]))
    if "rotate" in s.get("tags", {}):
        rotation = _norm_rotation(float(s["tags"]["rotate"]))
    width, height = _display_size(int(s.get("width", 0)), int(s.get("height", 0)), rotation)
    duration = float(s.get("duration") or meta.get("format", {}).get("duration") or "nan")
    num, _, den = str(s.get("avg_frame_rate", "0/1")).partition("/")
    fps = float(num) / float(den or 1) if float(den or 1) else 0.0
    n_frames = int(s["nb_frames"]) if str(s.get("nb_frames", "")).isdigit() else None
    start = float(s.get("start_time") or meta.get("format", {}).get("start_time") or 0.0)
    return VideoInfo(path, duration, width, height, fps, rotation, s.get("codec_name", "?"), n_frames,
                     any(x.get("codec_type") == "audio" for x in streams), start)


def _probe_pyav(path: str) -> VideoInfo:
    import av

    try:
        with av.open(path) as container:
            if not container.streams.video:
                raise ProbeError(f"{path}: no video stream (audio-only or not a video)")
            s = container.streams.video[0]
            rotation = 0
            try:  # the display matrix lives on decoded frames in PyAV
                rotation = _norm_rotation(next(container.decode(s)).rotation)
            except (StopIteration, av.error.FFmpegError):
                pass
            duration = float("nan")
            if s.duration is not None and s.time_base is not None:
                duration = float(s.duration * s.time_base)
            elif container.duration is not None:
                duration = container.duration / 1e6
            width, height = _display_size(s.codec_context.width, s.codec_context.height, rotation)
            fps = float(s.average_rate) if s.average_rate else 0.0
            start = float(s.start_time * s.time_base) if s.start_time is not None and s.time_base else 0.0
            return VideoInfo(path, duration, width, height, fps, rotation, s.codec_context.name,
                             s.frames or None, bool(container.streams.audio), start)
    except av.error.FFmpegError as exc:
        raise ProbeError(f"{path}: not a readable media file ({exc})") from exc
