"""The builders on hostile or careless input: path traversal through annotation keys, one id for two files,
duplicate keys, out-of-range options and numbers, unusual video extensions. Every case ends in exit status 2 and
one `error:` line naming the file (and key or line), or in a note, never in a manifest that is silently wrong."""
from __future__ import annotations

import dataclasses
import json
import pickle

import pytest

from manifests import videos as videos_module
from manifests.benchmarks import yc_interactions
from manifests.build import main
from manifests.errors import AnnotationError
from manifests.schema import Manifest
from manifests.validate import validate
from tests.manifests.helpers import place

pytestmark = pytest.mark.slow


def build(capsys, *argv) -> tuple[int, str]:
    code = main([*map(str, argv), "--no-progress"])
    err = capsys.readouterr().err
    if code == 2:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), err
    return code, err


@pytest.fixture
def layout(tmp_path, media):
    """videos/ (ok.mp4) and, beside it, outside/secret.mp4: a file a manifest must never reach."""
    place(media.plain, tmp_path / "videos", "ok.mp4")
    place(media.plain, tmp_path / "outside", "secret.mp4")
    return tmp_path


def _caption_json(path, keys):
    path.write_text(json.dumps({k: {"start": [0.5], "end": [1.5], "text": ["crack eggs"]} for k in keys}))
    return path


@pytest.mark.parametrize("key", ["../outside/secret", "{outside}/secret", "ok/../../outside/secret"])
def test_howto100m_key_cannot_reach_outside_the_video_dir(layout, capsys, key):
    key = key.format(outside=layout / "outside")
    source = _caption_json(layout / "caption.json", ["ok", key])
    code, err = build(capsys, "howto100m", source, "--video-dir", layout / "videos", "--out", layout / "m")
    assert code == 2
    assert str(source) in err and "is not a safe name" in err and repr(key) in err
    assert not (layout / "m").exists()


def test_youcook2_and_mining_keys_are_checked(layout, capsys):
    yc2 = layout / "yc2.json"
    yc2.write_text(json.dumps({"database": {"../outside/secret": {
        "duration": 2.0, "subset": "validation", "recipe_type": "1", "video_url": "u",
        "annotations": [{"segment": [0, 1], "id": 0, "sentence": "s"}]}}}))
    code, err = build(capsys, "youcook2", yc2, "--video-dir", layout / "videos", "--out", layout / "m")
    assert code == 2 and str(yc2) in err and "['database']['../outside/secret']" in err
    srt_dir = layout / "srt"
    srt_dir.mkdir()
    (srt_dir / "..srt").write_text("1\n00:00:00,000 --> 00:00:01,000\nx\n")  # stem "."
    code, err = build(capsys, "mining", srt_dir, "--video-dir", layout / "videos", "--out", layout / "m")
    assert code == 2 and "file ..srt" in err and "'.' or '..'" in err


def test_gyt_keys_are_checked(layout, capsys):
    bench = layout / "gyt"
    bench.mkdir()
    (bench / "ground_seg_3to20.json").write_text(json.dumps(
        {"ok": [{"segment": [0, 1], "id": 0, "sentence": "s"}]}))
    (bench / "box_anno.json").write_text(json.dumps(
        {"/etc/secret": [{"second": 0, "box": [1, 2, 3, 4], "step_name": "s"}]}))
    code, err = build(capsys, "gyt", "--benchmark-dir", bench, "--video-dir", layout / "videos", "--out", layout / "m")
    assert code == 2 and str(bench / "box_anno.json") in err and "absolute path" in err


def test_built_manifest_validates_path_containment(layout, capsys):
    source = _caption_json(layout / "caption.json", ["ok"])
    out = layout / "m"
    assert build(capsys, "howto100m", source, "--video-dir", layout / "videos", "--out", out)[0] == 0
    m = Manifest.read(out)
    assert m.args["video_dir"] == str(layout / "videos")
    assert validate(out) == []


# ---- one id, two files; duplicate keys ----------------------------------------------------------------------

def test_one_id_in_two_directories_is_ambiguous(layout, media, capsys):
    place(media.plain, layout / "videos" / "a", "clip.mp4")
    place(media.plain, layout / "videos" / "b", "clip.webm")
    source = _caption_json(layout / "caption.json", ["clip"])
    code, err = build(capsys, "howto100m", source, "--video-dir", layout / "videos", "--out", layout / "m",
                      "--recursive")
    assert code == 2 and "'clip' matches files in several directories" in err
    assert "a/clip.mp4" in err and "b/clip.webm" in err


def test_case_twins_of_one_annotation_file_are_refused(layout, capsys):
    csv_dir = layout / "csv"
    csv_dir.mkdir()
    for name in ("ok.csv", "ok.CSV"):
        (csv_dir / name).write_text("start,end,text\n0.5,1.5,x\n")
    code, err = build(capsys, "howto100m", csv_dir, "--video-dir", layout / "videos", "--out", layout / "m")
    assert code == 2 and str(csv_dir) in err and "ok.CSV and ok.csv" in err and "both give video id 'ok'" in err
    srt_dir = layout / "srt"
    srt_dir.mkdir()
    for name in ("ok.srt", "ok.SRT"):
        (srt_dir / name).write_text("1\n00:00:00,000 --> 00:00:01,000\nx\n")
    code, err = build(capsys, "mining", srt_dir, "--video-dir", layout / "videos", "--out", layout / "m")
    assert code == 2 and "both give video id 'ok'" in err


def test_a_json_key_given_twice_is_refused(layout, capsys):
    source = layout / "caption.json"
    source.write_text('{"ok": {"start": [0], "end": [1], "text": ["a"]}, '
                      '"ok": {"start": [5], "end": [6], "text": ["b"]}}')
    code, err = build(capsys, "howto100m", source, "--video-dir", layout / "videos", "--out", layout / "m")
    assert code == 2 and str(source) in err and "key 'ok': appears twice" in err


def test_youcook2_annotation_ids_must_be_unique(layout, capsys):
    yc2 = layout / "yc2.json"
    yc2.write_text(json.dumps({"database": {"ok": {
        "duration": 2.0, "subset": "validation", "recipe_type": "1", "video_url": "u",
        "annotations": [{"segment": [0, 1], "id": 0, "sentence": "a"}, {"segment": [1, 2], "id": 0, "sentence": "b"}]
    }}}))
    code, err = build(capsys, "youcook2", yc2, "--video-dir", layout / "videos", "--out", layout / "m")
    assert code == 2 and "['database']['ok']['annotations']" in err and "annotation id(s) [0]" in err


def test_yc_interactions_segment_listed_twice(tmp_path):
    path = tmp_path / "segments.pkl"
    path.write_bytes(pickle.dumps([("v", 1, 2), ("v", 1, 2)]))
    with pytest.raises(AnnotationError, match=r"segments.pkl: entry \('v', 1, 2\): listed twice"):
        yc_interactions.load_segments(path)


# ---- numbers ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("option,value", [
    ("--fps", "1e6"), ("--fps", "0"), ("--fps", "-1"), ("--fps", "nan"), ("--fps", "inf"), ("--window", "0"),
    ("--window", "1e9"), ("--window", "nan"), ("--jobs", "0"), ("--jobs", "100000"), ("--jobs", "-2"),
])
def test_numeric_options_are_bounded(layout, capsys, option, value):
    with pytest.raises(SystemExit) as exit_:
        main(["folder", str(layout / "videos"), "--out", str(layout / "m"), option, value])
    assert exit_.value.code == 2
    assert f"error: argument {option}: must be in" in capsys.readouterr().err
    assert not (layout / "m").exists()


def test_option_bounds_admit_their_limits(layout, capsys):
    code, _ = build(capsys, "folder", layout / "videos", "--out", layout / "m", "--fps", "120", "--jobs", "1")
    assert code == 0 and {s.fps for s in Manifest.read(layout / "m").segment_rows()} == {120.0}


@pytest.mark.parametrize("row,fragment", [("nan,1.5,x", "column 'start' is not a finite number: 'nan'"),
                                          ("0.5,inf,x", "column 'end' is not a finite number"),
                                          ("0.5,1e999,x", "column 'end' is not a finite number")])
def test_narration_csv_numbers_must_be_finite(layout, capsys, row, fragment):
    csv_dir = layout / "csv"
    csv_dir.mkdir()
    (csv_dir / "ok.csv").write_text(f"start,end,text\n0,1,fine\n{row}\n")
    code, err = build(capsys, "howto100m", csv_dir, "--video-dir", layout / "videos", "--out", layout / "m")
    assert code == 2 and f"{csv_dir / 'ok.csv'}: line 3: {fragment}" in err


def test_json_nan_and_huge_times(layout, capsys):
    source = layout / "caption.json"
    source.write_text('{"ok": {"start": [NaN], "end": [1], "text": ["a"]}}')
    code, err = build(capsys, "howto100m", source, "--video-dir", layout / "videos", "--out", layout / "m")
    assert code == 2 and "['ok']['start'][0]: expected a finite number, got nan" in err
    source.write_text('{"ok": {"start": [0], "end": [1e7], "text": ["a"]}}')  # milliseconds, not seconds
    code, err = build(capsys, "howto100m", source, "--video-dir", layout / "videos", "--out", layout / "m",
                      "--segments", "whole")
    assert code == 2 and "captions.parquet: row(s) 0: end 10000000.0 outside" in err
    assert "from caption.json['ok'] row 0" in err


def test_implausible_probe_results_become_probe_errors(layout, monkeypatch, capsys):
    real = videos_module.probe
    monkeypatch.setattr(videos_module, "probe", lambda p: dataclasses.replace(real(p), width=100_000))
    code, _ = build(capsys, "folder", layout / "videos", "--out", layout / "m")
    assert code == 0
    row = Manifest.read(layout / "m").video("ok")
    assert row.width is None and "implausible probe result: width 100000 outside [1, 16384]" in row.probe_error


# ---- the folder builder -------------------------------------------------------------------------------------

def test_transport_stream_phone_and_ogg_extensions_are_videos(tmp_path, media, capsys):
    d = tmp_path / "videos"
    for name in ("a.ts", "b.MTS", "c.3gp", "d.ogv", "e.M2TS", "f.3G2"):
        place(media.plain, d, name)  # MP4 content: ffprobe reads the content, whatever the name
    code, _ = build(capsys, "folder", d, "--out", tmp_path / "m")
    assert code == 0
    videos = {v.video_id: v for v in Manifest.read(tmp_path / "m").video_rows()}
    assert sorted(videos) == ["a", "b", "c", "d", "e", "f"] and all(v.ok for v in videos.values())


def test_folder_skips_unsafe_names_and_other_files_with_a_note(tmp_path, media, capsys):
    d = tmp_path / "videos"
    for name in ("good.mp4", "back\\slash.mp4", "new\nline.mp4"):
        place(media.plain, d, name)
    (d / "notes.txt").write_text("x")
    assert main(["folder", str(d), "--out", str(tmp_path / "m"), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert [v.video_id for v in Manifest.read(tmp_path / "m").video_rows()] == ["good"]
    assert "has a backslash" in out and "has a control character" in out
    assert "skipped 1 file(s) without a video extension (notes.txt)" in out
