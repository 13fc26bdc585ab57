"""A replaced source video is noticed and re-extracted (its old rows dropped, not served next to the new ones),
or kept or refused as asked; failure records are retried when their source appears or changes, or on request."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from pipeline.encoders import build_encoders
from pipeline.extract import main as extract_main
from pipeline.store import open_store
from pipeline.verify import main as verify_main
from pipeline.worker import EncodeError, ShardExtractor
from tests.faults.conftest import extract_args
from tests.media import colour_per_second_frames, write_frames
from tests.pipeline.helpers import narrated_world

pytestmark = pytest.mark.slow


@pytest.fixture()
def world(tmp_path):
    manifest = narrated_world(tmp_path, videos=3)
    store = tmp_path / "store.zarr"
    assert extract_main(extract_args(manifest, store)) == 0
    return manifest, store, tmp_path / "videos"


def _replace(path, seconds: float, width: int = 64, height: int = 48) -> None:
    """Another video under the same name: the inverted colours (and another length or size)."""
    write_frames(path, 255 - colour_per_second_frames(seconds, 25, width, height), 25)


def _summary(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_a_replaced_video_is_re_extracted_and_its_old_rows_dropped(world, capsys):
    manifest, store, videos = world
    before = {v: open_store(str(store)).frames(v) for v in ("v00", "v01")}
    _replace(videos / "v00.mp4", seconds=4, width=48, height=64)
    capsys.readouterr()
    assert extract_main(extract_args(manifest, store)) == 0
    assert _summary(capsys)["work_by_reason"] == {"changed": 1}
    after = open_store(str(store)).frames("v00")
    assert len(np.unique(after["times"])) == len(after["times"])        # no timestamp served twice
    assert not np.array_equal(after["grid"], before["v00"]["grid"][:len(after["grid"])])
    enc = build_encoders(["clip"], "tiny")["clip"]
    from pipeline.decode import Stream, decode_all
    from manifests.ffmpeg import probe

    frames, _ = decode_all(probe(videos / "v00.mp4"), [Stream("c", 5.0)], 0.0, 2.5)  # its first window
    np.testing.assert_array_equal(after["grid"][:len(frames["c"])],
                                  enc.encode_frames(frames["c"])["grid"].astype(np.float16))
    np.testing.assert_array_equal(open_store(str(store)).frames("v01")["grid"], before["v01"]["grid"])
    assert verify_main(["--store", str(store), "--manifest", str(manifest)]) == 0
    assert extract_main(extract_args(manifest, store)) == 0 and "nothing to do" in capsys.readouterr().out


def test_a_replaced_video_is_kept_or_refused_on_request(world, capsys):
    manifest, store, videos = world
    before = open_store(str(store)).frames("v01")
    _replace(videos / "v01.mp4", seconds=4)
    capsys.readouterr()
    assert extract_main(extract_args(manifest, store, "--on-change", "refuse")) == 2
    assert "v01" in capsys.readouterr().err
    assert extract_main(extract_args(manifest, store, "--on-change", "keep")) == 0
    assert _summary(capsys)["changed_kept"] == 1
    np.testing.assert_array_equal(open_store(str(store)).frames("v01")["grid"], before["grid"])


def test_a_missing_video_is_retried_when_it_appears(tmp_path, capsys):
    manifest = narrated_world(tmp_path, videos=2)
    videos, store = tmp_path / "videos", tmp_path / "store.zarr"
    shutil.move(videos / "v01.mp4", tmp_path / "aside.mp4")
    assert extract_main(extract_args(manifest, store)) == 0
    assert {(f.video_id, f.stage) for f in open_store(str(store)).failures()} == {("v01", "probe")}
    shutil.move(tmp_path / "aside.mp4", videos / "v01.mp4")
    capsys.readouterr()
    assert extract_main(extract_args(manifest, store)) == 0
    assert _summary(capsys)["work_by_reason"] == {"appeared": 1}
    assert open_store(str(store)).failures() == [] and "v01" in open_store(str(store)).video_ids()


def test_retry_failed_extracts_a_failed_video_again(tmp_path, capsys, monkeypatch):
    manifest = narrated_world(tmp_path, videos=2)
    store = tmp_path / "store.zarr"
    real = ShardExtractor._extract

    def flaky(self, writer, info, seg):  # an encoder failure that does not come from the file
        if seg["video_id"] == "v01":
            raise EncodeError("out of memory (simulated)")
        return real(self, writer, info, seg)

    monkeypatch.setattr(ShardExtractor, "_extract", flaky)
    assert extract_main(extract_args(manifest, store)) == 0
    assert {f.stage for f in open_store(str(store)).failures()} == {"encode"}
    monkeypatch.setattr(ShardExtractor, "_extract", real)
    capsys.readouterr()
    assert extract_main(extract_args(manifest, store)) == 0 and "nothing to do" in capsys.readouterr().out
    assert extract_main(extract_args(manifest, store, "--retry-failed")) == 0
    assert _summary(capsys)["work_by_reason"] == {"retry": 1}
    assert open_store(str(store)).failures() == [] and "v01" in open_store(str(store)).video_ids()
