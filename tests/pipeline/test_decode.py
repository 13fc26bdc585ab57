"""Decoding: frame i of a segment is the frame on screen at start + i/fps, streams are chunked and bounded."""
from __future__ import annotations

import math
import time

import av
import numpy as np
import pytest

from manifests.ffmpeg import FFmpegError, probe, run
from pipeline.decode import DecodeError, SegmentDecoder, Stream, decode_all, frame_count
from tests.media import (colour_index, colour_video, index_video, read_index, rotate_metadata, write_frames)

SRC_FPS = 25


@pytest.fixture(scope="module")
def idx_video(tmp_path_factory):
    return probe(index_video(tmp_path_factory.mktemp("v") / "idx.mp4", seconds=10, fps=SRC_FPS))


def expected_index(t0: float, fps: float, n: int, src_fps: float = SRC_FPS, last: int = 249) -> list[int]:
    return [min(last, math.floor((t0 + i / fps) * src_fps + 1e-9)) for i in range(n)]


def test_frame_count_hand_cases():
    assert frame_count(0, 6, 1) == 6          # t = 0..5
    assert frame_count(0, 6.01, 1) == 7
    assert frame_count(2.5, 6, 5) == 18       # 3.5 s at 5 fps
    assert frame_count(3, 3, 1) == 0
    assert frame_count(0, 0.3, 1) == 1        # shorter than one frame period still has the frame at t=0


def test_colour_changes_every_second_frame_i_is_at_start_plus_i_over_fps(tmp_path):
    info = probe(colour_video(tmp_path / "c.mp4", seconds=6, fps=25, width=64, height=48))
    out, rep = decode_all(info, [Stream("clip", 1), Stream("s3d", 16)])
    assert [colour_index(f) for f in out["clip"]] == [0, 1, 2, 3, 4, 5]
    assert [colour_index(f) for f in out["s3d"]] == [i // 16 for i in range(96)]
    assert not rep.truncated
    out, _ = decode_all(info, [Stream("clip", 2)], start=2.5, end=5)
    assert [colour_index(f) for f in out["clip"]] == [2, 3, 3, 4, 4]  # t = 2.5, 3, 3.5, 4, 4.5


@pytest.mark.parametrize("t0,t1,fps", [(0, 10, 1), (1.01, 3, 3), (2.99, 5.2, 1), (7.3, 10, 16), (9.594, 10.5, 5),
                                       (0.5, 4, 0.5), (4.04, 6.1, 25), (8.29, 10, 30)])
def test_exact_source_frame_for_every_output_frame(idx_video, t0, t1, fps):
    out, rep = decode_all(idx_video, [Stream("a", fps, 160, "squash"), Stream("b", 16, 160, "squash")], t0, t1)
    for name, rate in (("a", fps), ("b", 16)):
        got = [read_index(f[:16]) for f in out[name]]
        assert got == expected_index(t0, rate, rep.expected[name]), name


def test_nonzero_container_start_time_counts_from_first_frame(tmp_path):
    src = index_video(tmp_path / "idx.mp4", seconds=4)
    shifted = tmp_path / "shifted.mp4"
    run(["-y", "-loglevel", "error", "-i", str(src), "-c", "copy", "-output_ts_offset", "0.7", str(shifted)], what="shift")
    info = probe(shifted)
    assert info.start_time == pytest.approx(0.7, abs=0.01)
    out, rep = decode_all(info, [Stream("a", 2, 160, "squash")], 1.02, 3)
    assert [read_index(f[:16]) for f in out["a"]] == expected_index(1.02, 2, rep.expected["a"], last=99)


def test_variable_frame_rate(tmp_path):
    # 25 fps, then a hole of about 0.5 s after frame 49; the true timestamps are read back with PyAV.
    path = index_video(tmp_path / "vfr.mp4", seconds=4, extra=("-vf", "setpts=PTS+gt(N\\,49)*0.5/TB", "-fps_mode", "vfr"))
    with av.open(str(path)) as container:
        s = container.streams.video[0]
        pts = [float(f.pts * s.time_base) for f in container.decode(s)]
    assert pts[50] - pts[49] > 0.4  # really variable
    info = probe(path)
    out, rep = decode_all(info, [Stream("a", 10, 160, "squash")], 1.5, 3.0)
    want = [max(n for n in range(100) if pts[n] <= 1.5 + i / 10 + 1e-9) for i in range(rep.expected["a"])]
    assert [read_index(f[:16]) for f in out["a"]] == want


def test_rotation_metadata_is_applied(tmp_path):
    frames = np.zeros((10, 40, 80, 3), np.uint8)
    frames[:, :, :40] = [255, 0, 0]   # left red, right blue
    frames[:, :, 40:] = [0, 0, 255]
    rotated = rotate_metadata(write_frames(tmp_path / "lr.mp4", frames, 10), tmp_path / "r.mp4", 90)
    info = probe(rotated)
    assert (info.width, info.height, info.rotation) == (40, 80, 90)
    out, _ = decode_all(info, [Stream("a", 1, 32, "squash")])
    f = out["a"][0].astype(int)
    top, bottom = f[2, 16], f[29, 16]  # 90 degrees counter-clockwise: left half ends at the bottom
    assert top[2] > 200 and top[0] < 60 and bottom[0] > 200 and bottom[2] < 60


@pytest.mark.parametrize("w,h", [(17, 13), (16, 16), (120, 160), (321, 97)])
def test_odd_tiny_and_portrait_sizes(tmp_path, w, h):
    info = probe(colour_video(tmp_path / "v.mp4", seconds=2, fps=10, width=w, height=h))
    out, _ = decode_all(info, [Stream("c", 1, 224, "center-crop"), Stream("s", 1, 224, "squash")])
    for name in ("c", "s"):
        assert out[name].shape == (2, 224, 224, 3)
        assert [colour_index(f) for f in out[name]] == [0, 1]


def test_native_size_stream_keeps_the_displayed_frame(tmp_path):
    info = probe(rotate_metadata(colour_video(tmp_path / "v.mp4", seconds=2, fps=10, width=36, height=20),
                                 tmp_path / "r.mp4", 90))
    out, _ = decode_all(info, [Stream("native", 1, None), Stream("small", 1, 32)])
    assert out["native"].shape == (2, 36, 20, 3) and out["small"].shape == (2, 32, 32, 3)
    assert [colour_index(f) for f in out["native"]] == [0, 1]


def test_center_crop_cuts_the_sides_squash_keeps_them(tmp_path):
    frames = np.zeros((5, 100, 300, 3), np.uint8)
    frames[:, :, :100] = [255, 0, 0]
    frames[:, :, 100:200] = [0, 255, 0]
    frames[:, :, 200:] = [0, 0, 255]
    info = probe(write_frames(tmp_path / "wide.mp4", frames, 5))
    out, _ = decode_all(info, [Stream("c", 1, 60, "center-crop"), Stream("s", 1, 60, "squash")])
    crop, squash = out["c"][0].astype(int), out["s"][0].astype(int)
    assert crop[30, 3][1] > 200 and crop[30, 56][1] > 200        # only the green third survives the crop
    assert squash[30, 3][0] > 200 and squash[30, 56][2] > 200    # squash keeps red and blue at the sides


def test_segment_past_the_end_is_truncated_and_recorded(tmp_path):
    info = probe(colour_video(tmp_path / "v.mp4", seconds=3, fps=10, width=32, height=32))
    out, rep = decode_all(info, [Stream("a", 2, 32)], start=2, end=10)
    assert len(out["a"]) == 2 and rep.truncated and rep.end == pytest.approx(3.0)
    assert rep.actual_end(Stream("a", 2, 32)) == pytest.approx(3.0)
    with pytest.raises(DecodeError, match="holds no frame"):
        SegmentDecoder(info, [Stream("a", 1, 32)], start=5, end=8).__enter__()


def test_chunks_are_bounded_and_ffmpeg_waits_for_a_slow_consumer(tmp_path):
    info = probe(colour_video(tmp_path / "long.mp4", seconds=40, fps=10, width=32, height=32))
    with SegmentDecoder(info, [Stream("a", 10, 32), Stream("b", 5, 32)], chunk_frames=8, queue_chunks=2) as dec:
        time.sleep(1.0)  # ffmpeg would be done by now if nothing held it back
        assert dec._queue.qsize() <= 2 and dec._proc.poll() is None
        sizes = {"a": 0, "b": 0}
        for name, frames in dec:
            assert 1 <= len(frames) <= 8
            sizes[name] += len(frames)
    assert sizes == {"a": 400, "b": 200}


def test_consumer_abort_kills_ffmpeg(tmp_path):
    info = probe(colour_video(tmp_path / "long.mp4", seconds=30, fps=10, width=32, height=32))
    dec = SegmentDecoder(info, [Stream("a", 10, 32)], chunk_frames=4, queue_chunks=1)
    with pytest.raises(RuntimeError, match="stop"):
        with dec:
            for _ in dec:
                raise RuntimeError("stop")
    assert dec._proc.poll() is not None and not any(t.is_alive() for t in dec._threads)


def test_corrupt_stream_raises_with_ffmpeg_stderr(tmp_path):
    good = colour_video(tmp_path / "v.mkv", seconds=4, fps=10, width=64, height=64, codec="mpeg4")
    data = bytearray(good.read_bytes())
    data[len(data) // 3:] = bytes(len(data) - len(data) // 3)  # zero the last two thirds
    bad = tmp_path / "bad.mkv"
    bad.write_bytes(bytes(data))
    info = probe(bad)
    try:
        out, rep = decode_all(info, [Stream("a", 10, 32)])
    except FFmpegError as exc:
        assert str(bad) in str(exc)
    else:  # ffmpeg may conceal the damage: then the segment must at least be marked as cut short
        assert rep.truncated and len(out["a"]) < 40
