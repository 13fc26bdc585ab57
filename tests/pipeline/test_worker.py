"""The per-shard extractor: retries, failure records by stage, S3D windowing, fsspec store roots."""
from __future__ import annotations

import uuid

import numpy as np
import pytest

from pipeline.encoders import build_encoders
from pipeline.plan import ShardPlan, VideoWork
from pipeline.store import init_store, open_store
from pipeline.worker import ShardExtractor, _WindowBuffer
from tests.media import colour_video


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    d = tmp_path_factory.mktemp("w")
    return {v: str(colour_video(d / f"{v}.mp4", seconds=3, width=48, height=32)) for v in ("a", "b", "c")}


@pytest.fixture(scope="module")
def encoders():
    return build_encoders(["clip", "s3d"], "tiny", s3d_window=16)


def _plan(videos) -> ShardPlan:
    work = tuple(VideoWork(v, p, ({"segment_id": f"{v}:all", "video_id": v, "start": 0.0, "end": None, "fps": 1.0},),
                           ({"caption_id": f"{v}:0", "video_id": v, "start": 0.0, "end": 1.0, "text": "hello",
                             "kind": "narration"},))
                 for v, p in sorted(videos.items()))
    return ShardPlan("sh-test", work)


class Flaky:
    """Wraps an encoder; raises on chosen videos' frames (by call count) to exercise retries."""

    def __init__(self, inner, fail_calls: set[int]):
        self.inner, self.fail_calls, self.calls = inner, fail_calls, 0
        self.name, self.spec = inner.name, inner.spec

    def encode_frames(self, frames):
        self.calls += 1
        if self.calls in self.fail_calls:
            raise RuntimeError("CUDA error: an illegal memory access was encountered (simulated)")
        return self.inner.encode_frames(frames)

    def encode_text(self, texts):
        return self.inner.encode_text(texts)


@pytest.mark.parametrize("root_kind", ["memory", "file-url"])
def test_retry_then_record_and_fsspec_roots(videos, encoders, tmp_path, root_kind):
    root = f"memory://{uuid.uuid4().hex}/s.zarr" if root_kind == "memory" else f"file://{tmp_path}/s.zarr"
    # calls: a -> 1 (fails) then 2 (retry succeeds); b -> 3, 4 (both fail: recorded); c -> 5
    clip = Flaky(encoders["clip"], {1, 3, 4})
    init_store(root, {"clip": clip.spec, "s3d": encoders["s3d"].spec})
    summary = ShardExtractor(root, {"clip": clip, "s3d": encoders["s3d"]}, retries=1).run(_plan(videos))
    assert (summary.segments, summary.failed_segments) == (3, 1)
    store = open_store(root)
    assert store.video_ids() == ["a", "c"]
    [fail] = store.failures()
    assert (fail.video_id, fail.stage, fail.attempts) == ("b", "encode", 2)
    assert "simulated" in fail.reason and videos["b"] in fail.reason
    # the retried video is whole: its rolled-back first attempt left nothing behind
    assert len(store.frames("a", "clip")["times"]) == 3 and len(store.frames("a", "s3d")["times"]) == 3
    assert list(store.captions("b", "clip")["text"]) == ["hello"]  # captions do not depend on the video


def test_window_buffer_pads_the_last_window_and_times_windows():
    buf = _WindowBuffer(window=4, fps=2.0, start=10.0)
    out = buf.push(np.arange(6)[:, None].repeat(3, 1).astype(np.uint8))
    assert len(out) == 1 and out[0][1].tolist() == [10.0] and out[0][2].tolist() == [4]
    out = buf.push(np.arange(6, 7)[:, None].repeat(3, 1).astype(np.uint8)) + buf.flush()
    windows, times, valid = out[0]
    assert times.tolist() == [12.0] and valid.tolist() == [3]
    assert windows[0, :, 0].tolist() == [4, 5, 6, 6]  # padded by repeating the last real frame
    assert buf.flush() == []
