"""Decode one segment of a video once, for every encoder at its own frame rate, in bounded chunks.

One ffmpeg process per segment runs one filter graph: the input is split into one branch per stream
(e.g. 1 fps for CLIP, 16 fps for S3D), each branch samples with `fps` *before* `scale` (so only kept
frames are resized), and each branch writes raw RGB to its own pipe. Two reader threads cut the pipes
into chunks and feed one bounded queue, so memory does not grow with video length and a slow consumer
of one stream can never deadlock ffmpeg on the other.

Timing contract: frame i of a stream is the source frame on screen at t = start + i / fps (the last
frame whose timestamp is <= t), with t = 0 at the first frame of the file. ffmpeg seeks to a little
before `start` keeping the file's timestamps (-copyts, which a complex graph needs to see the same
times as a simple one), and the `fps` filter with an absolute `start_time` and `round=up` assigns each
source frame to the first output slot at or after it, keeping the last one per slot. (ffmpeg's default
`fps=1`, as used by the authors' scripts, rounds to the nearest slot instead, so it shows the frame on
screen about half a second later.) Rotation metadata is applied by ffmpeg (autorotate) before the graph.
The segment ends at the end of the video stream's last frame (`VideoInfo.duration`, never the container's,
which counts a longer audio track), so no slot at or after that time is ever emitted.

Every way out of a `SegmentDecoder` (normal end, an exception or Ctrl-C in the consumer or in `__enter__`,
an abandoned iterator) kills and reaps its ffmpeg; a killed extractor takes ffmpeg with it (see manifests/ffmpeg.py).
"""
from __future__ import annotations

import math
import numbers
import os
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from manifests import ffmpeg
from manifests.ffmpeg import FFmpegError, VideoInfo

RESIZE_MODES = ("center-crop", "squash")
_EPS = 1e-6  # timestamps closer than this count as equal
# Highest sampling rate a stream may ask for. The encoders sample at 1-5 fps (CLIP) and 16 fps (S3D) and
# sources rarely exceed 60 fps; above the source rate `fps` only repeats frames, and a rate like 1e6
# makes ffmpeg buffer millions of copies per second of video (tens of GB) before anything is written.
MAX_SAMPLE_FPS = 120.0


class DecodeError(FFmpegError):
    """A segment could not be decoded (or produced no frames)."""


@dataclass(frozen=True)
class Stream:
    """One sampled view of the segment: frames at `fps`, `size`x`size`, resized by `resize`
    (`size=None`: the frames as displayed, unscaled, e.g. for drawing on them)."""

    name: str
    fps: float
    size: int | None = 224
    resize: str = "center-crop"  # short side to `size`, centre crop; "squash": aspect-distorting scale

    def __post_init__(self):
        if self.resize not in RESIZE_MODES:
            raise ValueError(f"resize must be one of {RESIZE_MODES}, got {self.resize!r}")
        if not (math.isfinite(self.fps) and 0 < self.fps <= MAX_SAMPLE_FPS):
            raise ValueError(f"stream {self.name}: sampling rate fps={self.fps:g} is outside (0, {MAX_SAMPLE_FPS:g}] "
                             f"frames/s (encoders sample at 1-16 fps; a higher rate only repeats frames)")
        if self.size is not None and not (isinstance(self.size, numbers.Integral) and self.size > 0):
            raise ValueError(f"stream {self.name}: size must be a positive number of pixels or None, got {self.size!r}")

    def filters(self, first_ts: float) -> str:
        sample = f"fps={self.fps:.9g}:start_time={first_ts:.6f}:round=up"
        s = self.size
        if s is None:
            return f"{sample},format=rgb24"
        if self.resize == "squash":
            scale = f"scale={s}:{s}:flags=bicubic"
        else:
            scale = f"scale={s}:{s}:force_original_aspect_ratio=increase:flags=bicubic,crop={s}:{s}"
        return f"{sample},{scale},format=rgb24"


def frame_count(start: float, end: float, fps: float) -> int:
    """Number of frames i >= 0 with start + i/fps < end."""
    if end <= start + _EPS:
        return 0
    return max(0, math.ceil((end - start) * fps - _EPS))


@dataclass
class DecodeReport:
    """What a decode produced, filled in as it runs (read it after the iterator is exhausted)."""

    start: float
    end: float  # the requested end, clipped to the video's duration
    requested_end: float | None
    expected: dict[str, int]
    produced: dict[str, int] = field(default_factory=dict)

    @property
    def truncated(self) -> bool:
        """True when the segment ran past the end of the video or the file ended early."""
        past_end = self.requested_end is not None and self.requested_end > self.end + _EPS
        return past_end or any(self.produced.get(k, 0) < n for k, n in self.expected.items())

    def actual_end(self, stream: Stream) -> float:
        return min(self.end, self.start + self.produced.get(stream.name, 0) / stream.fps)


class SegmentDecoder:
    """Context manager yielding (stream name, uint8 frames [n, size, size, 3]) chunks of one segment.

    with SegmentDecoder(info, [Stream("clip", 1.0)], start=0, end=None) as dec:
        for name, frames in dec: ...
    dec.report tells what was expected and produced (truncation).
    """

    def __init__(self, info: VideoInfo, streams: list[Stream], start: float = 0.0, end: float | None = None,
                 chunk_frames: int = 32, queue_chunks: int = 4):
        if not streams:
            raise ValueError("at least one stream is needed")
        if len({s.name for s in streams}) != len(streams):
            raise ValueError("stream names must be unique")
        if not (math.isfinite(start) and start >= 0) or (end is not None and not end > start):
            raise ValueError(f"{info.path}: bad segment [{start}, {end})")
        if chunk_frames < 1 or queue_chunks < 1:
            raise ValueError(f"chunk_frames and queue_chunks must be at least 1, got {chunk_frames} and {queue_chunks}")
        self.info, self.streams, self.chunk = info, streams, chunk_frames
        clipped_end = info.duration if end is None else min(end, info.duration)
        self.report = DecodeReport(start, clipped_end, end, {s.name: frame_count(start, clipped_end, s.fps)
                                                             for s in streams})
        self._queue: queue.Queue = queue.Queue(maxsize=queue_chunks)
        self._proc = None
        self._threads: list[threading.Thread] = []
        self._stderr: list[bytes] = []

    # ---- process set-up -------------------------------------------------------------------------
    def _args(self, fds: list[int]) -> list[str]:
        # Seek a little early so the frame on screen at `start` is decoded, then let `fps` trim to it.
        margin = max(2.0, 2.0 / self.info.fps) if self.info.fps > 0 else 2.0
        seek = max(0.0, self.report.start - margin)
        first_ts = self.info.start_time + self.report.start
        # One cloned frame at the end lets `fps` emit the slot of the true last frame (it only
        # closes a slot when it sees a later frame); `-frames:v` stops before any slot past the end.
        graph = [f"[0:v]tpad=stop_mode=clone:stop=1,split={len(self.streams)}" + "".join(f"[in{i}]" for i in range(len(self.streams)))]
        for i, s in enumerate(self.streams):
            graph.append(f"[in{i}]{s.filters(first_ts)}[out{i}]")
        args = ["-ss", f"{seek:.6f}"] if seek > 0 else []
        args += ["-t", f"{self.report.end - seek + 1.0:.6f}", "-copyts", "-i", self.info.path,
                 "-filter_complex", ";".join(graph)]
        for i, (s, fd) in enumerate(zip(self.streams, fds)):
            args += ["-map", f"[out{i}]", "-frames:v", str(max(1, self.report.expected[s.name])),
                     "-f", "rawvideo", "-pix_fmt", "rgb24", f"pipe:{fd}"]
        return args

    def __enter__(self) -> "SegmentDecoder":
        if all(n == 0 for n in self.report.expected.values()):
            raise DecodeError(f"{self.info.path}: segment [{self.report.start:.3f}, {self.report.end:.3f}) "
                              f"holds no frame (video duration {self.info.duration:.3f} s)")
        pipes = [os.pipe() for _ in self.streams]
        readers = [os.fdopen(r, "rb", buffering=0) for r, _ in pipes]
        try:
            try:
                self._proc = ffmpeg.popen(self._args([w for _, w in pipes]), pass_fds=tuple(w for _, w in pipes))
            finally:
                for _, w in pipes:
                    os.close(w)
            self._start_readers(readers)
        except BaseException:  # Ctrl-C included: __exit__ does not run when __enter__ raises
            self._stop()
            for pipe in readers:
                pipe.close()
            raise
        return self

    def _start_readers(self, pipes: list) -> None:
        targets = [(self._read_stream, (s, pipe)) for s, pipe in zip(self.streams, pipes)]
        for target, args in [*targets, (self._read_stderr, ())]:
            t = threading.Thread(target=target, args=args, daemon=True)
            self._threads.append(t)
            t.start()

    # ---- reader threads -------------------------------------------------------------------------
    def _shape(self, s: Stream) -> tuple[int, int, int]:
        return (self.info.height, self.info.width, 3) if s.size is None else (s.size, s.size, 3)

    def _read_stream(self, s: Stream, pipe) -> None:
        shape = self._shape(s)
        frame_bytes = shape[0] * shape[1] * 3
        want = self.report.expected[s.name]
        count = 0
        with pipe:
            while True:
                buf = _read_exact(pipe, frame_bytes * self.chunk)
                n = len(buf) // frame_bytes
                n = min(n, want - count)  # ffmpeg may emit one frame when zero were wanted
                if n > 0:
                    frames = np.frombuffer(buf[: n * frame_bytes], np.uint8).reshape(n, *shape)
                    self._queue.put((s.name, frames))
                    count += n
                if len(buf) < frame_bytes * self.chunk:
                    break
        self.report.produced[s.name] = count
        self._queue.put((s.name, None))

    def _read_stderr(self) -> None:
        for line in self._proc.stderr:
            self._stderr.append(line)
            del self._stderr[:-50]  # keep the tail only

    # ---- consumer side --------------------------------------------------------------------------
    def __iter__(self) -> Iterator[tuple[str, np.ndarray]]:
        open_streams = len(self.streams)
        try:
            while open_streams:
                name, frames = self._queue.get()
                if frames is None:
                    open_streams -= 1
                    continue
                yield name, frames
        except BaseException:  # Ctrl-C while waiting, or the iterator closed early (GeneratorExit)
            self._stop()
            raise
        self._finish()

    def _finish(self) -> None:
        for t in self._threads:
            t.join()
        stderr = b"".join(self._stderr).decode(errors="replace")
        ffmpeg.finish(self._proc, what=f"decoding {self.info.path}", stderr=stderr)
        if all(self.report.produced.get(s.name, 0) == 0 for s in self.streams):
            raise DecodeError(f"{self.info.path}: no frame decoded in [{self.report.start:.3f}, "
                              f"{self.report.end:.3f})", stderr)

    def __exit__(self, *exc) -> None:
        self._stop()

    def _stop(self) -> None:
        """Kill ffmpeg if it still runs, let the reader threads end, reap the process. Idempotent."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
        while any(t.is_alive() for t in self._threads):  # unblock readers stuck on a full queue
            try:
                self._queue.get(timeout=0.05)
            except queue.Empty:
                pass
        if self._proc is not None:
            self._proc.wait()
            if self._proc.stderr is not None:
                self._proc.stderr.close()


def _read_exact(pipe, n: int) -> bytearray:
    """Up to n bytes (fewer only at end of stream), read into one writable buffer without copies."""
    buf = bytearray(n)
    view, got = memoryview(buf), 0
    while got < n:
        k = pipe.readinto(view[got:])
        if not k:
            break
        got += k
    del view
    del buf[got:]
    return buf


def decode_all(info: VideoInfo, streams: list[Stream], start: float = 0.0, end: float | None = None,
               **kw) -> tuple[dict[str, np.ndarray], DecodeReport]:
    """Convenience for tests and small clips: every frame of every stream in memory."""
    parts: dict[str, list[np.ndarray]] = {s.name: [] for s in streams}
    with SegmentDecoder(info, streams, start, end, **kw) as dec:
        for name, frames in dec:
            parts[name].append(frames)
    out = {k: (np.concatenate(v) if v else np.zeros((0, *dec._shape(s)), np.uint8))
           for (k, v), s in zip(parts.items(), streams)}
    return out, dec.report
