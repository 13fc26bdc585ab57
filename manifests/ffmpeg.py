"""The one wrapper for ffmpeg: where the binaries come from, how they are run, and probing.

Every ffmpeg/ffprobe call of the project goes through `run` or `popen` here, with argument lists
(never shell strings), so a file name can never be interpreted by a shell and every failure raises
`FFmpegError` carrying ffmpeg's own stderr.

Every child (ffmpeg, ffprobe) runs in its own process group, so a Ctrl-C at the terminal reaches only
Python, which then kills the child itself; on Linux the child also gets SIGKILL from the kernel when the
thread that started it dies, so a killed extractor never leaves an ffmpeg behind (PR_SET_PDEATHSIG).
"""
from __future__ import annotations

import ctypes
import functools
import json
import math
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
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


_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def _load_prctl():
    """libc's prctl on Linux, looked up once in the parent (the child must not load libraries)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    return prctl


_PRCTL = _load_prctl()


def _die_with_parent(parent_pid: int) -> None:
    """Runs in the child between fork and exec: be killed when the parent dies."""
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


def child_options() -> dict:
    """Popen keyword arguments for every ffmpeg/ffprobe child (own process group, dies with its parent).

    The death signal fires when the *thread* that started the child ends, so start children from the
    thread that waits for them (every caller here does)."""
    options: dict = {"process_group": 0}
    if _PRCTL is not None:
        options["preexec_fn"] = functools.partial(_die_with_parent, os.getpid())
    return options


def run(args: list[str], *, what: str, timeout: float | None = None, stdin: bytes | None = None) -> bytes:
    """Run ffmpeg with `args` (without the executable); return stdout or raise FFmpegError(what).

    `stdin` feeds raw input (e.g. generated frames with `-i pipe:0`)."""
    cmd = [ffmpeg_exe(), "-hide_banner", *(() if stdin is not None else ("-nostdin",)), *args]
    try:
        proc = subprocess.run(cmd, input=stdin, capture_output=True, timeout=timeout, check=False,
                              **child_options())
    except subprocess.TimeoutExpired as exc:
        raise FFmpegError(f"{what}: ffmpeg timed out after {timeout} s") from exc
    if proc.returncode != 0:
        raise FFmpegError(f"{what}: ffmpeg exited with {proc.returncode}", proc.stderr.decode(errors="replace"))
    return proc.stdout


def popen(args: list[str], *, pass_fds: tuple[int, ...] = ()) -> subprocess.Popen:
    """Start ffmpeg streaming to pipes; the caller reads stdout (and any passed fds) and calls `finish`."""
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", *args]
    return subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, pass_fds=pass_fds,
        **child_options(),
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
    # seconds from the first video frame to the end of the last one: the stream's own duration, else
    # measured from its last packets; never the container's (audio may run longer than the video)
    duration: float
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


def _ratio(text: str) -> float:
    """ffprobe's "30000/1001" as a number; 0.0 when the denominator is zero."""
    num, _, den = str(text).partition("/")
    return float(num) / float(den or 1) if float(den or 1) else 0.0


def _probe_ffprobe(path: str) -> VideoInfo:
    cmd = [ffprobe_exe(), "-v", "error", "-print_format", "json", "-show_streams", "-show_format", path]
    proc = subprocess.run(cmd, capture_output=True, check=False, **child_options())
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
    fps = _ratio(s.get("avg_frame_rate", "0/1"))
    n_frames = int(s["nb_frames"]) if str(s.get("nb_frames", "")).isdigit() else None
    start = float(s.get("start_time") or meta.get("format", {}).get("start_time") or 0.0)
    others = [x for x in streams if x is not s and x.get("codec_type") in ("video", "audio", "subtitle")]
    container = float(meta.get("format", {}).get("duration") or "nan")
    stream_duration = float(s["duration"]) if s.get("duration") else None
    duration = video_duration(stream_duration, container, bool(others), tick=_ratio(s.get("time_base", "0/1")),
                              measure=lambda: _end_minus(video_end_from_packets(path, int(s.get("index", -1))), start))
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
            width, height = _display_size(s.codec_context.width, s.codec_context.height, rotation)
            fps = float(s.average_rate) if s.average_rate else 0.0
            start = float(s.start_time * s.time_base) if s.start_time is not None and s.time_base else 0.0
            others = [x for x in container.streams if x is not s and x.type in ("video", "audio", "subtitle")]
            stream_duration = float(s.duration * s.time_base) if s.duration is not None and s.time_base else None
            duration = video_duration(
                stream_duration, container.duration / 1e6 if container.duration is not None else float("nan"),
                bool(others), tick=float(s.time_base or 0),
                measure=lambda: _end_minus(_last_frame_end(container, s), start))
            return VideoInfo(path, duration, width, height, fps, rotation, s.codec_context.name,
                             s.frames or None, bool(container.streams.audio), start)
    except av.error.FFmpegError as exc:
        raise ProbeError(f"{path}: not a readable media file ({exc})") from exc


# Where to start reading packets, before the container's end: more than one GOP of typical video.
_END_SCAN_SECONDS = 10.0


def video_duration(stream_duration: float | None, container_duration: float, has_other_streams: bool, *,
                   tick: float, measure: Callable[[], float | None]) -> float:
    """The video stream's duration from what the header says, measured from its packets where the header
    may be another stream's: the container's duration covers its longest stream (often the audio), and
    ffmpeg copies it into streams that have none of their own (Matroska, WebM, NUT).

    A header value that can only be the video's (no other stream, or a per-track duration that differs
    from the container's) is kept, so a file cut short still decodes as truncated."""
    header = stream_duration if stream_duration is not None else container_duration
    own = stream_duration is not None and abs(stream_duration - container_duration) > max(1e-3, tick)
    if not has_other_streams or own:
        return header
    measured = measure()
    return measured if measured is not None else header


def _end_minus(end: float | None, start: float) -> float | None:
    return None if end is None else end - start


def _last_frame_end(container, stream) -> float | None:
    """Timestamp (s) where the video stream's last frame ends: max(pts + duration) over its packets,
    read (not decoded) from a little before the end of the file. None when that tail holds no video
    packet with a timestamp (a damaged tail, or no index to seek with): the caller keeps the header."""
    import av

    tb = stream.time_base
    if tb is None or container.duration is None:
        return None
    file_end = (container.duration + (container.start_time or 0)) / 1e6
    fallback = int(1 / (stream.average_rate * tb)) if stream.average_rate else 0
    end = None
    try:
        container.seek(max(0, int((file_end - _END_SCAN_SECONDS) / tb)), stream=stream, backward=True)
        for packet in container.demux(stream):
            ts = packet.pts if packet.pts is not None else packet.dts
            if ts is not None and not packet.is_discard:  # discarded: cut by an edit list, never shown
                end = max(end if end is not None else ts, ts + (packet.duration or fallback))
    except av.error.FFmpegError:
        return None
    return float(end * tb) if end is not None else None


def video_end_from_packets(path: str, index: int) -> float | None:
    """`_last_frame_end` of stream `index` of a file (the ffprobe path has no open container)."""
    import av

    try:
        with av.open(path) as container:
            streams = [s for s in container.streams.video if s.index == index] or list(container.streams.video)
            return _last_frame_end(container, streams[0]) if streams else None
    except av.error.FFmpegError:
        return None
