"""validate on a manifest seeded with one problem of each kind: each is reported with its file and row."""
from __future__ import annotations

import json
import math

import pytest

from manifests.schema import BoxRow, CaptionRow, Manifest, SegmentRow, VideoRow
from manifests.validate import CODES, main, validate


def video(vid, path, **kw):
    info = dict(duration=10.0, width=64, height=48, fps=10.0, rotation=0, codec="h264", has_audio=False)
    return VideoRow(vid, str(path), "test", None, **{**info, **kw})


def seg(sid, vid, start, end, fps=1.0):
    return SegmentRow(sid, vid, start, end, fps, "eval")


def cap(cid, vid, start, end, text="text", kind="step"):
    return CaptionRow(cid, vid, start, end, text, kind, f"anno.json[{cid!r}]")


def box(vid, time, x1, y1, x2, y2, w=64, h=48):
    return BoxRow(vid, time, x1, y1, x2, y2, w, h, "label", f"boxes.json[{vid!r}] second {time}")


@pytest.fixture
def seeded(tmp_path, media):
    good = media.plain
    videos = [
        video("a", good),                                          # 0 clean
        video("a", good),                                          # 1 duplicate_id
        VideoRow("m", str(tmp_path / "m.mp4"), "test", probe_error=f"missing: {tmp_path / 'm.mp4'}"),  # 2
        VideoRow("u", str(good), "test", probe_error="u.mp4: not a readable media file"),  # 3 video_unreadable
        video("gone", tmp_path / "deleted.mp4"),                   # 4 video_missing (file went away)
        video("rel", "relative/clip.mp4"),                         # 5 path_not_absolute (and missing)
        video("z", good, duration=None),                           # 6 bad_video_info
    ]
    segments = [
        seg("a:0", "a", 0.0, None),                                # 0 clean
        seg("a:0", "a", 0.0, None),                                # 1 duplicate_id
        seg("x:0", "nobody", 0.0, None),                           # 2 unknown_video
        seg("a:neg", "a", -1.0, 5.0),                              # 3 negative_time
        seg("a:inv", "a", 5.0, 5.0),                               # 4 inverted_time (empty)
        seg("a:past", "a", 2.0, 12.0),                             # 5 past_end (10 s video, 0.5 s tolerance)
        seg("a:fps", "a", 0.0, 5.0, fps=0.0),                      # 6 bad_fps
        seg("a:ok", "a", 0.0, 10.4),                               # 7 clean (within tolerance)
    ]
    captions = [
        cap("a:0", "a", 1.0, 2.0),                                 # 0 clean
        cap("a:0", "a", 1.0, 2.0),                                 # 1 duplicate_id
        cap("n:0", "nobody", 1.0, 2.0),                            # 2 unknown_video
        cap("a:1", "a", 1.0, 2.0, text="  "),                      # 3 empty_caption
        cap("a:2", "a", -0.5, 2.0),                                # 4 negative_time
        cap("a:3", "a", 3.0, 2.0),                                 # 5 inverted_time
        cap("a:4", "a", 9.0, 11.0),                                # 6 past_end
        cap("a:5", "a", None, 2.0),                                # 7 missing_time
        cap("a:6", "a", None, None, kind="query"),                 # 8 clean: queries have no times
        cap("a:7", "a", math.nan, 2.0),                            # 9 not_finite
        cap("a:8", "a", 2.0, 2.0),                                 # 10 clean: zero length is allowed
    ]
    boxes = [
        box("a", 1.0, 1, 2, 30, 40),                               # 0 clean
        box("nobody", 1.0, 1, 2, 30, 40),                          # 1 unknown_video
        box("a", 1.0, 30, 2, 10, 40),                              # 2 inverted_box
        box("a", 1.0, 1, 2, 30, 60),                               # 3 box_outside_frame (y2 > 48)
        box("a", 1.0, 1, 2, 30, 40, w=None, h=None),               # 4 no_frame_size (video a was probed)
        box("a", -2.0, 1, 2, 30, 40),                              # 5 negative_time
        box("a", 20.0, 1, 2, 30, 40),                              # 6 past_end
        box("m", 1.0, 1, 2, 30, 40, w=None, h=None),               # 7 clean here: m is reported as missing
    ]
    out = tmp_path / "seeded"
    # seeded on purpose with what Manifest.write refuses: check=False, as a hand-edited manifest would be
    Manifest.from_rows(videos=videos, segments=segments, captions=captions, boxes=boxes).write(out, check=False)
    return out


EXPECTED = {
    ("videos", 1, "duplicate_id"), ("videos", 2, "video_missing"), ("videos", 3, "video_unreadable"),
    ("videos", 4, "video_missing"), ("videos", 5, "path_not_absolute"), ("videos", 5, "video_missing"),
    ("videos", 6, "bad_video_info"),
    ("segments", 1, "duplicate_id"), ("segments", 2, "unknown_video"), ("segments", 3, "negative_time"),
    ("segments", 4, "inverted_time"), ("segments", 5, "past_end"), ("segments", 6, "bad_fps"),
    ("captions", 1, "duplicate_id"), ("captions", 2, "unknown_video"), ("captions", 3, "empty_caption"),
    ("captions", 4, "negative_time"), ("captions", 5, "inverted_time"), ("captions", 6, "past_end"),
    ("captions", 7, "missing_time"), ("captions", 9, "not_finite"),
    ("boxes", 1, "unknown_video"), ("boxes", 2, "inverted_box"), ("boxes", 3, "box_outside_frame"),
    ("boxes", 4, "no_frame_size"), ("boxes", 5, "negative_time"), ("boxes", 6, "past_end"),
}


def test_every_problem_reported_with_file_and_row(seeded, capsys):
    assert main([str(seeded), "--json"]) == 1
    lines = capsys.readouterr().out.strip().splitlines()
    report = json.loads(lines[-1])
    assert report["ok"] is False and report["manifest"] == str(seeded)
    found = {(item["file"], item["row"], item["code"]) for item in report["items"]}
    assert found == {(str(seeded / f"{table}.parquet"), row, code) for table, row, code in EXPECTED}
    assert report["problems"] == len(EXPECTED)
    assert set(report["by_code"]) <= set(CODES)
    # text lines carry the file, row and the annotation source of caption and box rows
    assert f"{seeded / 'captions.parquet'} row 5: [inverted_time]" in "\n".join(lines)
    inverted = next(i for i in report["items"] if i["code"] == "inverted_time" and "captions" in i["file"])
    assert inverted["source"] == "anno.json['a:3']"
    outside = next(i for i in report["items"] if i["code"] == "box_outside_frame")
    assert outside["source"] == "boxes.json['a'] second 1.0" and "64x48" in outside["message"]


def test_ignore_and_no_files(seeded, capsys):
    codes = ",".join(sorted({code for _, _, code in EXPECTED}))
    assert main([str(seeded), "--ignore", codes]) == 0
    assert "clean: no problems" in capsys.readouterr().out
    problems = validate(seeded, check_files=False)
    assert ("video_missing", 4) not in {(p.code, p.row) for p in problems}  # no file-system check
    assert ("video_missing", 2) in {(p.code, p.row) for p in problems}      # recorded at build time
    with pytest.raises(SystemExit):
        main([str(seeded), "--ignore", "no_such_code"])


def test_clean_manifest_passes(tmp_path, media, capsys):
    out = tmp_path / "clean"
    Manifest.from_rows(videos=[video("a", media.plain)], segments=[seg("a:0", "a", 0.0, None)],
                       captions=[cap("a:0", "a", 1.0, 2.0)], boxes=[box("a", 1.0, 1, 2, 30, 40)]).write(out)
    assert main([str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report == {"manifest": str(out), "ok": True, "problems": 0, "ignored": 0, "by_code": {}, "items": []}


def test_unreadable_manifest_is_one_schema_problem(tmp_path, capsys):
    assert main([str(tmp_path), "--json"]) == 1
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [i["code"] for i in report["items"]] == ["schema"]
    assert str(tmp_path / "manifest.json") in report["items"][0]["file"]
