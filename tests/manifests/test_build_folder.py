"""The folder builder end to end on generated files, including the fixed CLI contract."""
from __future__ import annotations

import subprocess
import sys

import pytest

from manifests.build import main
from manifests.schema import Manifest
from manifests.validate import validate
from manifests.videos import list_video_files
from tests.conftest import REPO
from tests.manifests.helpers import place

pytestmark = pytest.mark.slow


@pytest.fixture
def video_dir(tmp_path, media):
    d = tmp_path / "videos"
    for src, name in [(media.plain, "plain.mp4"), (media.portrait, "portrait.mp4"), (media.rotated, "rotated.MOV"),
                      (media.audio, "audio_only.mp4"), (media.corrupt, "corrupt.mp4"), (media.empty, "empty.mkv"),
                      (media.plain, "sub/deep.mp4")]:
        place(src, (d / name).parent, (d / name).name)
    (d / "notes.txt").write_text("not a video")
    return d


def test_folder_builder(video_dir, tmp_path, capsys):
    out = tmp_path / "manifest"
    assert main(["folder", str(video_dir), "--out", str(out), "--jobs", "2"]) == 0
    m = Manifest.read(out)
    videos = {v.video_id: v for v in m.video_rows()}
    assert sorted(videos) == ["audio_only", "corrupt", "empty", "plain", "portrait", "rotated"]
    plain = videos["plain"]
    assert (plain.width, plain.height, plain.fps, plain.rotation, plain.codec, plain.has_audio) == (
        64, 48, 10.0, 0, "h264", True)
    assert plain.duration == pytest.approx(2.0, abs=0.1) and plain.path == str(video_dir / "plain.mp4")
    assert plain.dataset == "videos" and plain.split is None
    assert (videos["portrait"].width, videos["portrait"].height) == (48, 64)
    rotated = videos["rotated"]
    assert (rotated.width, rotated.height, rotated.rotation) == (48, 64, 90)  # as displayed
    assert "no video stream" in videos["audio_only"].probe_error
    assert "corrupt.mp4" in videos["corrupt"].probe_error
    assert "empty" in videos["empty"].probe_error and videos["empty"].duration is None
    # every listed video gets a whole-video segment at 1 fps, failures included (they become failure records)
    segs = m.segment_rows()
    assert {(s.video_id, s.start, s.end, s.fps, s.purpose) for s in segs} == {
        (v, 0.0, None, 1.0, "eval") for v in videos}
    assert m.caption_rows() == [] and m.boxes is None
    text = capsys.readouterr().out
    assert "videos    6: 3 probed ok, 0 missing, 3 unreadable" in text
    problems = validate(out)
    assert sorted((p.code, p.row) for p in problems) == [
        ("video_unreadable", list(videos).index(v)) for v in ("audio_only", "corrupt", "empty")]


def test_folder_recursive_fps_and_overwrite(video_dir, tmp_path, capsys):
    out = tmp_path / "manifest"
    assert main(["folder", str(video_dir), "--out", str(out), "--recursive", "--fps", "2", "--dataset", "mine"]) == 0
    m = Manifest.read(out)
    assert "sub/deep" in {v.video_id for v in m.video_rows()}
    assert {s.fps for s in m.segment_rows()} == {2.0}
    assert m.args["fps"] == 2.0 and m.builder == "folder" and m.video("plain").dataset == "mine"
    assert main(["folder", str(video_dir), "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["folder", str(video_dir), "--out", str(out), "--overwrite"]) == 0
    assert {s.fps for s in Manifest.read(out).segment_rows()} == {1.0}


def test_folder_missing_directory(tmp_path, capsys):
    assert main(["folder", str(tmp_path / "nope"), "--out", str(tmp_path / "m")]) == 2
    assert "nope" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


def test_duplicate_stems_keep_their_extension(tmp_path, media):
    place(media.plain, tmp_path, "clip.mp4")
    place(media.plain, tmp_path, "clip.mkv")
    place(media.plain, tmp_path, "other.mp4")
    assert [vid for vid, _ in list_video_files(tmp_path)] == ["clip.mkv", "clip.mp4", "other"]


def test_cli_contract_in_a_subprocess(video_dir, tmp_path):
    out = tmp_path / "contract"
    proc = subprocess.run([sys.executable, "-m", "manifests.build", "folder", str(video_dir), "--out", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "probed ok" in proc.stdout
    assert len(Manifest.read(out).segment_rows()) == 6
