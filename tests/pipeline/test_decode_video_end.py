"""A segment ends where the video stream's last frame ends, not where the container (or its audio) ends."""
from __future__ import annotations

from pathlib import Path

import av
import pytest

from manifests.ffmpeg import probe, run
from pipeline.decode import Stream, decode_all
from tests.media import index_frames, read_index

# 32 frames at 16 fps: the last frame ends at 2.0 s; the audio runs on past it.
N_FRAMES, SRC_FPS = 32, 16
# Containers that store no video stream duration (so the container's, set by the audio, was used) and one
# that does (mp4), with codecs the bundled ffmpeg can write.
CONTAINERS = {
    "mkv": ("-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "libvorbis"),
    "webm": ("-c:v", "libvpx-vp9", "-c:a", "libopus"),
    "nut": ("-c:v", "mpeg4", "-q:v", "2", "-c:a", "pcm_s16le"),
    "mp4": ("-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac"),
}


def video_with_longer_audio(path: Path, audio_seconds: float) -> Path:
    frames = index_frames(N_FRAMES)
    _, h, w, _ = frames.shape
    args = ["-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-r", str(SRC_FPS),
            "-i", "pipe:0", "-f", "lavfi", "-i", f"sine=frequency=440:duration={audio_seconds}",
            *CONTAINERS[path.suffix[1:]], str(path)]
    run(args, what=f"writing test video {path}", stdin=frames.tobytes())
    return path


def frame_times(path: Path) -> list[float]:
    """Presentation time (s, from the first frame) of every video frame, read back with PyAV."""
    with av.open(str(path)) as container:
        s = container.streams.video[0]
        pts = sorted(float(f.pts * s.time_base) for f in container.decode(s))
    return [t - pts[0] for t in pts]


def on_screen(times: list[float], t: float) -> int:
    """The timing contract: the last frame whose timestamp is <= t."""
    return max(i for i, ts in enumerate(times) if ts <= t + 1e-9)


# NUT's container duration is an estimate that falls below 2.0 s when the audio is only 1 ms longer.
@pytest.mark.parametrize("suffix,audio_seconds", [(s, 2.001) for s in CONTAINERS if s != "nut"] +
                         [(s, 2.5) for s in CONTAINERS])
def test_no_slot_at_or_after_the_last_frames_end(tmp_path, suffix, audio_seconds):
    path = video_with_longer_audio(tmp_path / f"v.{suffix}", audio_seconds)
    with av.open(str(path)) as container:
        assert container.duration / 1e6 > 2.0  # the container really is longer than the video
    info = probe(path)
    assert info.duration == pytest.approx(N_FRAMES / SRC_FPS, abs=1e-3)
    out, rep = decode_all(info, [Stream("s3d", 16, 160, "squash"), Stream("clip", 1, 160, "squash")])
    assert rep.expected == {"s3d": 32, "clip": 2} and not rep.truncated
    assert len(out["s3d"]) == 32 and len(out["clip"]) == 2  # slots t < 2.0 only; none at t = 2.0
    times = frame_times(path)
    assert [read_index(f[:16]) for f in out["s3d"]] == [on_screen(times, i / 16) for i in range(32)]
    assert [read_index(f[:16]) for f in out["clip"]] == [on_screen(times, i) for i in range(2)]


def test_segment_asked_past_the_video_end_stops_at_the_last_frame(tmp_path):
    info = probe(video_with_longer_audio(tmp_path / "v.mkv", 3.0))
    out, rep = decode_all(info, [Stream("a", 4, 160, "squash")], start=1.0, end=2.8)
    assert rep.end == pytest.approx(2.0, abs=1e-3) and rep.truncated  # the video ends before 2.8 s
    assert len(out["a"]) == 4  # t = 1.0, 1.25, 1.5, 1.75


def test_video_end_from_packets_reads_the_streams_own_end(tmp_path):
    from manifests.ffmpeg import video_end_from_packets  # what the ffprobe path uses for such files

    path = video_with_longer_audio(tmp_path / "v.mkv", 2.5)
    with av.open(str(path)) as container:
        index = container.streams.video[0].index
    assert video_end_from_packets(str(path), index) == pytest.approx(2.0, abs=1e-3)
    assert video_end_from_packets(str(tmp_path / "missing.mkv"), 0) is None


def test_video_duration_measures_only_where_the_header_may_be_another_streams():
    from manifests.ffmpeg import video_duration

    def measured(value):
        calls = []
        return calls, lambda: calls.append(1) or value

    calls, measure = measured(2.0)
    assert video_duration(None, 2.5, True, tick=1e-3, measure=measure) == 2.0 and calls  # mkv + longer audio
    calls, measure = measured(2.0)
    assert video_duration(2.5, 2.5, True, tick=1e-3, measure=measure) == 2.0 and calls  # copied from the container
    calls, measure = measured(2.0)
    assert video_duration(2.0625, 2.3, True, tick=1 / 16, measure=measure) == 2.0625 and not calls  # per-track value
    calls, measure = measured(1.3)
    assert video_duration(None, 4.0, False, tick=1e-3, measure=measure) == 4.0 and not calls  # video only: cut short
    calls, measure = measured(None)
    assert video_duration(None, 2.5, True, tick=1e-3, measure=measure) == 2.5 and calls  # tail unreadable: header
