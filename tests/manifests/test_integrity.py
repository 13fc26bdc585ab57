"""The integrity rules (manifests.integrity): duplicate ids, safe ids, numeric bounds; refused by
Manifest.write (so by every builder) and Manifest.read (so by extraction), reported row by row by validate."""
from __future__ import annotations

import json
import math

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from manifests.errors import ManifestError
from manifests.integrity import MAX_ID_CHARS, id_problem, is_under, safe_id
from manifests.schema import BoxRow, CaptionRow, Manifest, SegmentRow, VideoRow, segment_id
from manifests.segments import WindowSpec, whole_video_segments
from manifests.validate import main as validate_main, validate


def video(vid="a", path="/data/a.mp4", **kw):
    info = dict(duration=10.0, width=64, height=48, fps=10.0, rotation=0, codec="h264", has_audio=False)
    return VideoRow(vid, path, "test", None, **{**info, **kw})


def seg(vid="a", start=0.0, end=None, fps=1.0, sid=None):
    return SegmentRow(sid or segment_id(vid, start, end, fps), vid, start, end, fps, "eval")


def cap(cid="a:step:0", vid="a", start=1.0, end=2.0):
    return CaptionRow(cid, vid, start, end, "text", "step", f"anno.json[{cid!r}]")


def box(vid="a", time=1.0, coords=(1.0, 2.0, 30.0, 40.0), w=64, h=48):
    return BoxRow(vid, time, *coords, w, h, "label", f"boxes.json[{vid!r}] second {time}")


def manifest(videos=None, segments=None, captions=None, boxes=None, **kw) -> Manifest:
    return Manifest.from_rows(videos=videos or [video()], segments=segments or [seg()],
                              captions=captions or [cap()], boxes=boxes, **kw)


def refused(m: Manifest, tmp_path, *fragments) -> str:
    out = tmp_path / "m"
    with pytest.raises(ManifestError) as err:
        m.write(out)
    message = str(err.value)
    assert "\n" not in message and "nothing written" in message
    for fragment in fragments:
        assert fragment in message, message
    assert not out.exists()
    return message


def test_a_clean_manifest_passes(tmp_path):
    m = manifest(boxes=[box()])
    assert Manifest.read(m.write(tmp_path / "m")) == m


# ---- duplicate ids ------------------------------------------------------------------------------------------

def test_a_segment_given_twice_is_refused(tmp_path):
    refused(manifest(segments=[seg(), seg(end=5.0), seg()]), tmp_path,
            str(tmp_path / "m" / "segments.parquet"), "rows 0, 2", "segment_id 'a:0.000-end@1' occurs 2 times")


def test_one_unit_under_two_segment_ids_is_refused(tmp_path):
    refused(manifest(segments=[seg(sid="first"), seg(sid="second")]), tmp_path, "segments.parquet", "rows 0, 1",
            "unit (video_id, start, end, fps)")


def test_one_video_id_with_two_files_is_refused(tmp_path):
    refused(manifest(videos=[video(path="/data/a.mp4"), video(path="/other/a.mkv")]), tmp_path,
            "videos.parquet", "rows 0, 1", "video_id 'a' occurs 2 times")


def test_duplicate_caption_ids_are_refused_naming_their_source(tmp_path):
    refused(manifest(captions=[cap(), cap("a:step:1"), cap()]), tmp_path, "captions.parquet", "rows 0, 2",
            "caption_id 'a:step:0'", "from anno.json['a:step:0']")


def _edit(out, table, transform):
    path = out / f"{table}.parquet"
    pq.write_table(transform(pq.read_table(path)), path)
    return path


def _repeat_first_row(t: pa.Table) -> pa.Table:
    return pa.concat_tables([t, t.slice(0, 1)])


@pytest.mark.parametrize("table", ["videos", "segments", "captions"])
def test_read_refuses_duplicates_in_a_hand_edited_manifest(tmp_path, table):
    out = manifest().write(tmp_path / "m")
    path = _edit(out, table, _repeat_first_row)
    with pytest.raises(ManifestError) as err:
        Manifest.read(out)
    assert f"{path}: rows 0, 1:" in str(err.value) and "manifests.validate" in str(err.value)
    assert Manifest.read(out, check=False).tables()[table].num_rows == 2  # still inspectable


def test_extraction_refuses_a_manifest_with_duplicates(tmp_path, capsys):
    extract = pytest.importorskip("pipeline.extract")
    out = manifest().write(tmp_path / "m")
    path = _edit(out, "segments", _repeat_first_row)
    store = tmp_path / "store.zarr"
    code = extract.main(["--manifest", str(out), "--store", str(store), "--encoders", "clip", "--preset", "tiny"])
    assert code == 2
    assert f"{path}: rows 0, 1" in capsys.readouterr().err
    assert not store.exists()


# ---- safe ids -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("vid", ["-1okAudsnAc", "zzzzzzzzzzz", "a_b-c", "sub/clip", "deep/er/clip.mkv", "clip.mp4",
                                 "v:step:3", "caf\u00e9 video", "a..b", ".hidden", "x" * MAX_ID_CHARS])
def test_real_ids_are_safe(vid):
    assert id_problem(vid) is None and safe_id(vid) == vid


@pytest.mark.parametrize("vid,reason", [
    ("", "empty"), ("..", "'..'"), (".", "'.'"), ("../outside/secret", "'..'"), ("a/../b", "'..'"),
    ("a/..", "'..'"), ("/etc/passwd", "absolute"), ("a//b", "empty path component"), ("a/", "empty path"),
    ("a\\..\\b", "backslash"), ("a\x00b", "control"), ("a\nb", "control"), ("a\x1bb", "control"),
    ("a\x85b", "control"), ("x" * (MAX_ID_CHARS + 1), "characters long"), (3, "not a string"),
])
def test_unsafe_ids(vid, reason):
    assert reason in id_problem(vid)
    with pytest.raises(ValueError, match="not a safe name"):
        safe_id(vid, "video id")


def test_is_under():
    assert is_under("/data/v/a.mp4", "/data/v") and is_under("/data/v/sub/a.mp4", "/data/v/")
    assert not is_under("/data/v/../secret.mp4", "/data/v") and not is_under("/data/vx/a.mp4", "/data/v")
    assert not is_under("/data/v", "/data/v")


@pytest.mark.parametrize("m,fragment", [
    (lambda: manifest(videos=[video("../outside/secret", "/outside/secret.mp4")],
                      segments=[seg("../outside/secret")], captions=[cap("x", "../outside/secret")]),
     "video_id '../outside/secret' is not a safe name (it has a '.' or '..' path component)"),
    (lambda: manifest(videos=[video(), video("/abs/x", "/abs/x.mp4")]), "video_id '/abs/x'"),
    (lambda: manifest(captions=[cap("a:\x00")]), "caption_id 'a:\\x00'"),
    (lambda: manifest(videos=[video(path="relative/a.mp4")]), "path 'relative/a.mp4' is not absolute"),
    (lambda: manifest(segments=[seg("ghost")]), "video_id 'ghost' is not in videos.parquet"),
])
def test_write_refuses_unsafe_ids_and_paths(tmp_path, m, fragment):
    refused(m(), tmp_path, fragment)


def test_validate_reports_unsafe_ids_and_paths_outside_the_video_dir(tmp_path, capsys):
    videos = [video("ok", str(tmp_path / "videos" / "ok.mp4")),
              video("../outside/secret", str(tmp_path / "outside" / "secret.mp4")),
              video("elsewhere", "/somewhere/else.mp4")]
    m = manifest(videos=videos, segments=[seg("ok")], captions=[cap("ok:step:0", "ok")],
                 args={"video_dir": str(tmp_path / "videos")})
    out = m.write(tmp_path / "m", check=False)
    found = {(p.code, p.row) for p in validate(out, check_files=False)}
    assert found == {("unsafe_id", 1), ("path_outside_video_dir", 1), ("path_outside_video_dir", 2)}
    assert validate_main([str(out), "--no-files"]) == 1
    text = capsys.readouterr().out
    assert f"{out / 'videos.parquet'} row 1: [unsafe_id]" in text and "outside the video directory" in text


# ---- numeric bounds -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("m,fragment", [
    (lambda: manifest(segments=[seg(fps=1e6)]), "fps 1000000.0 outside (0, 120]"),
    (lambda: manifest(segments=[seg(fps=math.nan)]), "fps nan outside"),
    (lambda: manifest(segments=[seg(fps=0.0)]), "fps 0.0 outside"),
    (lambda: manifest(segments=[seg(start=math.nan)]), "start nan outside [0, 86400]"),
    (lambda: manifest(segments=[seg(start=-1.0, end=4.0)]), "start -1.0 outside"),
    (lambda: manifest(segments=[seg(start=0.0, end=math.inf)]), "end inf outside"),
    (lambda: manifest(segments=[seg(start=5.0, end=5.0)]), "end 5.0 <= start 5.0"),
    (lambda: manifest(segments=[seg(start=1e9, end=2e9)]), "start 1000000000.0 outside"),
    (lambda: manifest(captions=[cap(start=math.nan)]), "start nan outside [-86400, 86400]"),
    (lambda: manifest(captions=[cap(end=1e12)]), "from anno.json['a:step:0']"),
    (lambda: manifest(boxes=[box(coords=(1.0, math.nan, 3.0, 4.0))]), "y1 nan outside"),
    (lambda: manifest(boxes=[box(coords=(1.0, 2.0, 1e30, 4.0))]), "x2 1e+30 outside"),
    (lambda: manifest(boxes=[box(w=100_000)]), "frame_width 100000 outside [1, 16384]"),
    (lambda: manifest(boxes=[box(time=math.inf)]), "time inf outside"),
    (lambda: manifest(videos=[video(width=100_000)]), "width 100000 outside"),
    (lambda: manifest(videos=[video(duration=math.nan)]), "duration nan outside"),
    (lambda: manifest(videos=[video(fps=1e9)]), "fps 1000000000.0 outside [0, 1000]"),
    (lambda: manifest(videos=[video(rotation=45)]), "rotation 45 is not one of [0, 90, 180, 270]"),
])
def test_write_refuses_numbers_out_of_bounds(tmp_path, m, fragment):
    refused(m(), tmp_path, fragment)


def test_read_refuses_a_hand_edited_fps(tmp_path):
    out = manifest().write(tmp_path / "m")
    path = _edit(out, "segments", lambda t: t.set_column(4, "fps", pa.array([1e6])))
    with pytest.raises(ManifestError, match=f"{path}: row\\(s\\) 0: fps 1000000.0 outside"):
        Manifest.read(out)


def test_kept_as_written_defects_are_not_refused(tmp_path):
    # inverted and negative captions, inverted boxes, boxes past their frame: reported by validate, kept
    m = manifest(captions=[cap(start=3.0, end=2.0), cap("a:step:1", start=-0.5)],
                 boxes=[box(coords=(30.0, 2.0, 10.0, 60.0))])
    assert Manifest.read(m.write(tmp_path / "m")) == m


def test_segment_helpers_bound_fps_and_window():
    for bad in (0.0, -1.0, 1e6, math.nan, math.inf):
        with pytest.raises(ValueError, match="fps must be in"):
            whole_video_segments(["a"], bad)
        with pytest.raises(ValueError, match="fps must be in"):
            WindowSpec(fps=bad)
    for bad in (0.0, 1e9, math.nan):
        with pytest.raises(ValueError, match="window"):
            WindowSpec(window=bad)
    assert WindowSpec(window=3600, fps=120).fps == 120


def test_validate_reports_bounds_row_by_row(tmp_path):
    m = manifest(segments=[seg(fps=1e6), seg(start=0.0, end=2e5)], boxes=[box(w=100_000)])
    out = m.write(tmp_path / "m", check=False)
    found = {(p.file.rsplit("/", 1)[1], p.row, p.code) for p in validate(out, check_files=False)}
    assert found == {("segments.parquet", 0, "bad_fps"), ("segments.parquet", 1, "out_of_range"),
                     ("boxes.parquet", 0, "out_of_range")}


@pytest.mark.parametrize("option", [["--tolerance", "nan"], ["--tolerance", "-1"], ["--max-print", "-3"]])
def test_validate_options_are_bounded(tmp_path, capsys, option):
    out = manifest().write(tmp_path / "m")
    with pytest.raises(SystemExit) as exit_:
        validate_main([str(out), *option])
    assert exit_.value.code == 2
    assert f"argument {option[0]}: must be in" in capsys.readouterr().err


def test_build_records_absolute_directories(tmp_path, monkeypatch):
    from manifests.build import _json_args, make_parser
    monkeypatch.chdir(tmp_path)
    args = make_parser().parse_args(["mining", "srt", "--video-dir", "videos", "--out", "m"])
    recorded = json.loads(json.dumps(_json_args(args)))
    assert recorded["video_dir"] == str(tmp_path / "videos") and recorded["srt_dir"] == str(tmp_path / "srt")
