"""A source file's identity end to end (`pipeline.sources`): a file rewritten with the same size and new content
is re-extracted (only the hash of its first and last MiB can tell), a file merely touched or copied in place is
not; and a video that failed while its file was there is extracted again, without --retry-failed, once its file
is replaced by a good one."""
from __future__ import annotations

import json
import os
import shutil
import struct

import pytest

from pipeline.extract import main as extract_main
from pipeline.store import open_store
from pipeline.worker import EncodeError, ShardExtractor
from tests.faults.conftest import extract_args
from tests.media import colour_per_second_frames, colour_video, write_frames
from tests.pipeline.helpers import assert_same_features, narrated_world

pytestmark = pytest.mark.slow


def _summary(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def _pad(path, size: int) -> None:
    """Grow an mp4 to exactly `size` bytes with a top-level `free` box (legal padding every demuxer skips)."""
    n = size - path.stat().st_size
    assert n >= 8, (path, n)
    with open(path, "ab") as f:
        f.write(struct.pack(">I", n) + b"free" + bytes(n - 8))


def _rerun_does_nothing(manifest, store, capsys) -> None:
    capsys.readouterr()
    assert extract_main(extract_args(manifest, store)) == 0
    out = capsys.readouterr().out
    assert "nothing to do" in out
    assert json.loads(out.strip().splitlines()[-1])["work_by_reason"] == {}


def test_same_size_new_content_is_re_extracted_and_touched_or_copied_files_are_not(tmp_path, capsys):
    manifest = narrated_world(tmp_path, videos=3)
    videos, store = tmp_path / "videos", tmp_path / "store.zarr"
    v00 = videos / "v00.mp4"
    # v00 and its replacement (the inverted colours) padded to one size, so size alone cannot tell them apart
    replacement = write_frames(tmp_path / "replacement.mp4",
                               255 - colour_per_second_frames(3, 25, 64, 48), 25)
    size = max(v00.stat().st_size, replacement.stat().st_size) + 64
    _pad(v00, size)
    _pad(replacement, size)
    assert extract_main(extract_args(manifest, store)) == 0

    # touched (new mtime, same bytes) and copied in place (new inode and mtime, same bytes): not re-extracted
    st = (videos / "v01.mp4").stat()
    os.utime(videos / "v01.mp4", (st.st_atime + 100, st.st_mtime + 100))
    shutil.copyfile(videos / "v02.mp4", tmp_path / "copy.mp4")
    os.replace(tmp_path / "copy.mp4", videos / "v02.mp4")
    assert (videos / "v02.mp4").stat().st_mtime != st.st_mtime
    _rerun_does_nothing(manifest, store, capsys)

    # the same size, new bytes and a new mtime: the content hash tells, and only v00 is extracted again
    before = open_store(str(store)).frames("v00")["grid"]
    old_mtime = v00.stat().st_mtime
    shutil.copyfile(replacement, v00)
    os.utime(v00, (old_mtime + 200, old_mtime + 200))
    assert v00.stat().st_size == size
    capsys.readouterr()
    assert extract_main(extract_args(manifest, store)) == 0
    assert _summary(capsys)["work_by_reason"] == {"changed": 1}
    assert (open_store(str(store)).frames("v00")["grid"] != before).any()
    fresh = tmp_path / "fresh.zarr"  # an uninterrupted run on the files as they are now
    assert extract_main(extract_args(manifest, fresh)) == 0
    assert_same_features(fresh, store)
    _rerun_does_nothing(manifest, store, capsys)


def _fail_encoding_v01(monkeypatch) -> None:
    real = ShardExtractor._extract

    def failing(self, writer, info, seg):
        if seg["video_id"] == "v01":
            raise EncodeError("out of memory (simulated)")
        return real(self, writer, info, seg)

    monkeypatch.setattr(ShardExtractor, "_extract", failing)


@pytest.mark.parametrize("failure", ["probe", "encode"])
def test_a_failed_video_whose_file_is_replaced_is_extracted_again(tmp_path, capsys, monkeypatch, failure):
    manifest = narrated_world(tmp_path, videos=2)
    videos, store = tmp_path / "videos", tmp_path / "store.zarr"
    v01 = videos / "v01.mp4"
    if failure == "probe":  # the file is there, but it is not a video
        v01.write_bytes(b"not a video, whatever its name says\n" * 40)
        assert extract_main(extract_args(manifest, store)) == 0
    else:  # the file is fine, the encoder fails on it
        with monkeypatch.context() as m:
            _fail_encoding_v01(m)
            assert extract_main(extract_args(manifest, store)) == 0
    assert {(f.video_id, f.stage) for f in open_store(str(store)).failures()} == {("v01", failure)}
    _rerun_does_nothing(manifest, store, capsys)  # an unchanged file is not retried without --retry-failed

    colour_video(tmp_path / "good.mp4", seconds=4, width=48, height=64)  # another good video, same name
    os.replace(tmp_path / "good.mp4", v01)
    capsys.readouterr()
    assert extract_main(extract_args(manifest, store)) == 0
    assert _summary(capsys)["work_by_reason"] == {"changed": 1}
    assert open_store(str(store)).failures() == [] and "v01" in open_store(str(store)).video_ids()
    fresh = tmp_path / "fresh.zarr"
    assert extract_main(extract_args(manifest, fresh)) == 0
    assert_same_features(fresh, store)
