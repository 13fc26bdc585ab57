"""Extracting one shard: probe, decode once, encode with every encoder, write; failures become records.

Errors of one video (probe/decode: FFmpegError; encoder: EncodeError) are caught here, at the per-video
boundary: the segment is rolled back, retried, then recorded as a failure, and the shard goes on.
Anything else (a full disk, a bug) propagates and stops the run.
"""
from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from manifests.ffmpeg import FFmpegError, ProbeError, VideoInfo, probe
from pipeline import sources
from pipeline.decode import SegmentDecoder, Stream
from pipeline.plan import ShardPlan, VideoWork
from pipeline.store import ShardWriter

TEXT_BATCH = 256


def store_specs(encoders: dict, grid_dtype: str = "float16") -> dict[str, dict]:
    """The specs a store is bound to: the encoders' plus how grids are kept on disk (float16 is the default and
    is not written, so stores of either kind of run compare equal)."""
    return {name: {**enc.spec, **({"grid_dtype": grid_dtype} if grid_dtype != "float16" else {})}
            for name, enc in encoders.items()}


class EncodeError(RuntimeError):
    """An encoder failed on a video's frames or captions."""


@dataclass
class ShardSummary:
    shard: str
    videos: int = 0
    segments: int = 0
    failed_segments: int = 0
    truncated: int = 0
    frames: Counter = field(default_factory=Counter)  # per encoder
    captions: int = 0
    failures: list[dict] = field(default_factory=list)
    seconds: float = 0.0


def _encode(fn: Callable, what: str, *args):
    try:
        return fn(*args)
    except (RuntimeError, ValueError) as exc:  # torch raises these for bad input, OOM, device errors
        raise EncodeError(f"{what}: {type(exc).__name__}: {exc}") from exc


class _WindowBuffer:
    """Cuts a stream of frames into fixed windows for S3D; the last partial window is padded by repeating
    its last frame and keeps its count of real frames in `valid`."""

    def __init__(self, window: int, fps: float, start: float):
        self.window, self.fps, self.start = window, fps, start
        self.parts: list[np.ndarray] = []
        self.n = 0
        self.emitted = 0

    def push(self, frames: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        self.parts.append(frames)
        self.n += len(frames)
        return self._take(final=False)

    def flush(self) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        return self._take(final=True)

    def _take(self, final: bool):
        k = self.n // self.window
        if not k and not (final and self.n):
            return []
        data = np.concatenate(self.parts)
        windows = data[: k * self.window].reshape(k, self.window, *data.shape[1:])
        valid = np.full(k, self.window, np.int16)
        rest = data[k * self.window:]
        if final and len(rest):
            pad = np.concatenate([rest, np.repeat(rest[-1:], self.window - len(rest), axis=0)])
            windows = np.concatenate([windows, pad[None]])
            valid = np.append(valid, np.int16(len(rest)))
            rest = rest[:0]
        self.parts, self.n = [rest], len(rest)
        times = self.start + (self.emitted + np.arange(len(windows))) * self.window / self.fps
        self.emitted += len(windows)
        return [(windows, times, valid)] if len(windows) else []


class ShardExtractor:
    """Holds loaded encoders; `run` extracts one shard plan into the store."""

    def __init__(self, root: str, encoders: dict, *, chunk_frames: int = 32, retries: int = 1,
                 grid_dtype: str = "float16", on_segment: Callable[[int], None] | None = None):
        self.root, self.encoders = root, encoders
        self.specs = store_specs(encoders, grid_dtype)
        self.chunk_frames, self.retries, self.on_segment = chunk_frames, retries, on_segment

    def run(self, plan: ShardPlan) -> ShardSummary:
        t0 = time.perf_counter()
        summary = ShardSummary(plan.name)
        writer = ShardWriter(self.root, plan.name, self.specs)
        for video in plan.videos:
            self._video(writer, video, summary)
        writer.commit()
        summary.failures = writer.failures
        summary.seconds = time.perf_counter() - t0
        return summary

    # ---- one video -------------------------------------------------------------------------------
    def _video(self, writer: ShardWriter, video: VideoWork, summary: ShardSummary) -> None:
        summary.videos += 1
        writer.set_source(video.video_id, sources.identity(video.path) if video.path else None)
        self._captions(writer, video, summary)
        try:
            if not video.path:
                raise ProbeError(f"{video.video_id}: {video.probe_error or 'no path in the manifest'}")
            info = probe(video.path)
        except ProbeError as exc:
            for seg in video.segments:
                writer.add_failure(video_id=video.video_id, segment_id=seg["segment_id"], stage="probe",
                                   reason=str(exc))
                self._count(summary, failed=True)
            return
        for seg in video.segments:
            self._segment(writer, info, seg, summary)

    def _captions(self, writer: ShardWriter, video: VideoWork, summary: ShardSummary) -> None:
        if not video.captions:
            return
        texts = [str(c["text"]) for c in video.captions]
        try:
            feats = {name: _concat([_encode(enc.encode_text, f"{video.video_id}: {name} text", texts[i:i + TEXT_BATCH])
                                    for i in range(0, len(texts), TEXT_BATCH)])
                     for name, enc in self.encoders.items()}
        except EncodeError as exc:
            writer.add_failure(video_id=video.video_id, segment_id=None, stage="text", reason=str(exc))
            return
        rows = [{k: c.get(k) for k in ("caption_id", "video_id", "start", "end", "text", "kind")}
                for c in video.captions]
        writer.add_captions(rows, feats)
        summary.captions += len(rows)

    def _segment(self, writer: ShardWriter, info: VideoInfo, seg: dict, summary: ShardSummary) -> None:
        last: Exception | None = None
        for attempt in range(1, self.retries + 2):
            try:
                with writer.segment({k: seg.get(k) for k in ("segment_id", "video_id", "start", "end", "fps")}) as rows:
                    rows.info.update(self._extract(writer, info, seg))
                summary.truncated += bool(rows.info["truncated"])
                for name, n in rows.info["frames"].items():
                    summary.frames[name] += n
                self._count(summary, failed=False)
                return
            except (FFmpegError, EncodeError) as exc:
                last = exc
        stage = "encode" if isinstance(last, EncodeError) else "decode"
        writer.add_failure(video_id=seg["video_id"], segment_id=seg["segment_id"], stage=stage, reason=str(last),
                           attempts=self.retries + 1)
        self._count(summary, failed=True)

    def _count(self, summary: ShardSummary, failed: bool) -> None:
        summary.segments += 1
        summary.failed_segments += failed
        if self.on_segment:
            self.on_segment(1)

    def _extract(self, writer: ShardWriter, info: VideoInfo, seg: dict) -> dict:
        """Decode the segment once; every chunk goes through its encoder straight into the writer."""
        start, fps = float(seg["start"]), float(seg["fps"])
        streams, windows = [], {}
        for name, enc in self.encoders.items():
            prep = enc.spec["preprocessing"]
            rate = float(enc.spec["fps"]) if enc.spec.get("window") else fps
            try:
                streams.append(Stream(name, rate, prep["size"], prep["resize"]))
            except ValueError as exc:  # a segment the decoder refuses (e.g. its rate) fails alone
                raise FFmpegError(f"{info.path}: {exc}") from exc
            if enc.spec.get("window"):
                windows[name] = _WindowBuffer(int(enc.spec["window"]), rate, start)
        produced = Counter()
        with SegmentDecoder(info, streams, start, seg.get("end"), chunk_frames=self.chunk_frames) as dec:
            for name, frames in dec:
                enc = self.encoders[name]
                what = f"{info.path}: {name} frames from {start:.2f}s"
                if name in windows:
                    for clip, times, valid in windows[name].push(frames):
                        out = _encode(enc.encode_windows, what, clip)
                        writer.append_frames(name, times=times, valid=valid, **out)
                        produced[name] += len(times)
                    continue
                out = _encode(enc.encode_frames, what, frames)
                times = start + (produced[name] + np.arange(len(frames))) / fps
                writer.append_frames(name, times=times, **out)
                produced[name] += len(frames)
        for name, buf in windows.items():
            for clip, times, valid in buf.flush():
                out = _encode(self.encoders[name].encode_windows, f"{info.path}: {name} last window", clip)
                writer.append_frames(name, times=times, valid=valid, **out)
                produced[name] += len(times)
        rep = dec.report
        clip_streams = [s for s in streams if s.name not in windows] or streams
        return {"truncated": rep.truncated, "end_actual": min(rep.actual_end(s) for s in clip_streams),
                "frames": dict(produced)}


def _concat(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
