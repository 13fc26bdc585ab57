"""No ffmpeg outlives its decoder: every exit path reaps it, a killed extractor takes it along, and
absurd sampling rates never reach it."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import psutil
import pytest

from manifests import ffmpeg
from manifests.ffmpeg import probe
import pipeline.decode as decode_module
from pipeline.decode import MAX_SAMPLE_FPS, SegmentDecoder, Stream
from tests.media import colour_video

REPO = Path(__file__).resolve().parents[2]
GONE_WITHIN_S = 10.0  # generous: the kernel delivers the death signal at once
STARTED_WITHIN_S = 60.0  # the child imports numpy and PyAV first, on a possibly busy machine


@pytest.fixture(scope="module")
def long_video(tmp_path_factory) -> Path:
    return colour_video(tmp_path_factory.mktemp("v") / "long.mkv", seconds=30, fps=10, width=64, height=48)


# ---- sampling-rate and size bounds ---------------------------------------------------------------
@pytest.mark.parametrize("fps", [1e6, MAX_SAMPLE_FPS * 1.01, float("inf"), float("nan"), 0.0, -1.0])
def test_absurd_sampling_rates_are_refused_before_ffmpeg_starts(fps):
    with pytest.raises(ValueError, match=r"stream clip: sampling rate fps=.* outside \(0, 120\] frames/s"):
        Stream("clip", fps)


def test_the_bound_itself_and_s3d_rates_are_accepted():
    assert Stream("s3d", 16).fps == 16 and Stream("fast", MAX_SAMPLE_FPS).fps == MAX_SAMPLE_FPS


@pytest.mark.parametrize("kwargs, message", [
    ({"chunk_frames": 0}, "chunk_frames"), ({"chunk_frames": -5}, "chunk_frames"),
    ({"queue_chunks": 0}, "queue_chunks"), ({"start": float("nan")}, "bad segment"),
    ({"start": 1.0, "end": float("nan")}, "bad segment"),
])
def test_decoder_options_that_would_hang_are_refused(long_video, kwargs, message):
    with pytest.raises(ValueError, match=message):
        SegmentDecoder(probe(long_video), [Stream("a", 1, 32)], **kwargs)


@pytest.mark.parametrize("size", [0, -224])
def test_non_positive_frame_size_is_refused(size):
    with pytest.raises(ValueError, match="size must be a positive"):
        Stream("a", 1, size)


# ---- every exit path of SegmentDecoder reaps ffmpeg and its reader threads --------------------------
def _assert_clean(dec: SegmentDecoder) -> None:
    assert dec._proc.poll() is not None, "ffmpeg still running"
    assert not any(t.is_alive() for t in dec._threads), "reader threads left behind"


@pytest.mark.parametrize("error", [KeyboardInterrupt, RuntimeError])
def test_consumer_error_after_ffmpeg_finished_leaves_no_blocked_reader(tmp_path, error):
    # 10 tiny frames fit in the pipe buffers: ffmpeg exits while readers wait on the one-slot queue.
    info = probe(colour_video(tmp_path / "short.mp4", seconds=1, fps=10, width=32, height=32))
    dec = SegmentDecoder(info, [Stream("a", 10, 32)], chunk_frames=1, queue_chunks=1)
    with pytest.raises(error):
        with dec:
            dec._proc.wait()
            for _ in dec:
                raise error()
    _assert_clean(dec)


def test_interrupt_while_starting_readers_kills_ffmpeg(long_video, monkeypatch):
    started = []

    def recording_popen(*args, **kwargs):
        started.append(real_popen(*args, **kwargs))
        return started[-1]

    class InterruptedThread:
        def __init__(self, *args, **kwargs):
            pass

        def start(self):
            raise KeyboardInterrupt

        def is_alive(self):
            return False

    real_popen = ffmpeg.popen
    monkeypatch.setattr(ffmpeg, "popen", recording_popen)
    monkeypatch.setattr(decode_module, "threading", SimpleNamespace(Thread=InterruptedThread))
    try:
        with pytest.raises(KeyboardInterrupt):
            with SegmentDecoder(probe(long_video), [Stream("a", 10, 32)]):
                pass
        assert len(started) == 1 and started[0].poll() is not None, "ffmpeg left running after __enter__ failed"
    finally:
        for proc in started:  # never leave it behind, even when the test fails
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_abandoned_iterator_kills_ffmpeg(long_video):
    dec = SegmentDecoder(probe(long_video), [Stream("a", 10, 32)], chunk_frames=4, queue_chunks=1).__enter__()
    try:
        frames = iter(dec)
        next(frames)
        frames.close()  # what garbage collection does to a generator dropped mid-way
        _assert_clean(dec)
    finally:
        dec.__exit__(None, None, None)


# ---- a killed extractor takes its ffmpeg along ----------------------------------------------------
# The extractor-like child decodes (or runs ffmpeg on) a long video that it reads through a FIFO, as from
# a stalled disk or network mount: ffmpeg has read the start of the file and waits for the rest, so it is
# not writing and no broken pipe would ever stop it.
_CHILD = """
import dataclasses, sys
from manifests import ffmpeg
from pipeline.decode import SegmentDecoder, Stream
video, fifo, mode = sys.argv[1:]
if mode == "decode":
    info = dataclasses.replace(ffmpeg.probe(video), path=fifo)
    with SegmentDecoder(info, [Stream("clip", 1), Stream("s3d", 16)]) as dec:
        for _ in dec:
            pass
else:
    ffmpeg.run(["-i", fifo, "-f", "null", "-"], what="reading the fifo")
"""


def _wait_for(condition, what: str, seconds: float):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _ffmpeg_reading(parent_pid: int, path: Path) -> list[psutil.Process]:
    """The children of `parent_pid` that have `path` on their command line (imageio-ffmpeg may also run
    a short `ffmpeg -version` check of its own)."""
    found = []
    for proc in psutil.Process(parent_pid).children():
        try:
            if str(path) in proc.cmdline():
                found.append(proc)
        except psutil.NoSuchProcess:
            pass
    return found


def _gone(proc: psutil.Process) -> bool:
    try:
        return not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE  # no reaper: a zombie is dead
    except psutil.NoSuchProcess:
        return True


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux-only")
@pytest.mark.parametrize("mode", ["decode", "run"])
def test_sigkilled_extractor_leaves_no_ffmpeg(long_video, tmp_path, mode):
    fifo = tmp_path / "stalled.mkv"
    os.mkfifo(fifo)
    writer = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)  # holds the FIFO open: ffmpeg waits, never sees EOF
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(long_video), str(fifo), mode], cwd=REPO)
    ffmpegs: list[psutil.Process] = []
    try:
        os.write(writer, long_video.read_bytes()[:1024])  # the start of the video, then nothing more
        ffmpegs = _wait_for(lambda: _ffmpeg_reading(child.pid, fifo), "the child's ffmpeg", STARTED_WITHIN_S)
        assert len(ffmpegs) == 1 and "ffmpeg" in ffmpegs[0].name()
        assert os.getpgid(ffmpegs[0].pid) == ffmpegs[0].pid  # its own group: a terminal Ctrl-C reaches Python only
        child.send_signal(signal.SIGKILL)
        child.wait()
        _wait_for(lambda: _gone(ffmpegs[0]), f"ffmpeg {ffmpegs[0].pid} to die with its parent", GONE_WITHIN_S)
    finally:
        os.close(writer)
        for proc in ffmpegs:  # never leave an orphan behind, even when the test fails
            if not _gone(proc):
                proc.kill()
        if child.poll() is None:
            child.kill()
            child.wait()
