"""Benchmark builders on the real annotation files, with a temporary video folder holding a few generated
videos named like real ids (the others are listed as missing)."""
from __future__ import annotations

import json
from collections import Counter

import pytest

from manifests.build import main
from manifests.schema import Manifest
from manifests.validate import validate
from tests.manifests.helpers import place

pytestmark = pytest.mark.slow


def build(kind_args, out):
    assert main([*kind_args, "--out", str(out), "--no-progress", "--jobs", "2"]) == 0
    return Manifest.read(out)


def test_gyt(benchmarks_dir, tmp_path, media, capsys):
    videos = tmp_path / "videos"
    place(media.plain, videos, "-1okAudsnAc.mp4")
    place(media.rotated, videos, "zl-CWjwhwNQ.mkv")
    m = build(["gyt", "--benchmark-dir", str(benchmarks_dir / "groundingyoutube"), "--video-dir", str(videos)],
              tmp_path / "gyt")
    rows = {v.video_id: v for v in m.video_rows()}
    assert len(rows) == 250 and sum(v.ok for v in rows.values()) == 2
    assert rows["zl-CWjwhwNQ"].rotation == 90 and rows["zl-CWjwhwNQ"].split == "test"
    assert rows["-2TGG1WFF3A"].probe_error == f"missing: {videos / '-2TGG1WFF3A.mp4'}"
    caps = m.caption_rows()
    assert Counter(c.kind for c in caps) == {"step": 2_869, "query": 2_453}
    step = next(c for c in caps if c.caption_id == "-1okAudsnAc:step:0")
    assert (step.start, step.end, step.text, step.source) == (
        76.0, 82.0, "crack eggs", "ground_seg_3to20.json['-1okAudsnAc'] id 0")
    assert [c.text for c in caps if c.video_id == "-1okAudsnAc" and c.kind == "query"][-1] == "background"
    boxes = m.box_rows()
    assert len(boxes) == 17_316
    first = boxes[0]
    assert (first.video_id, first.time, first.x1, first.y2, first.label) == ("-1okAudsnAc", 76.0, 186.0, 452.0,
                                                                            "crack eggs")
    assert Counter((b.frame_width, b.frame_height) for b in boxes)[(640, 480)] == len(boxes) - sum(
        b.video_id == "7mabCfrc90Y" for b in boxes)
    assert {(b.frame_width, b.frame_height) for b in boxes if b.video_id == "7mabCfrc90Y"} == {(480, 640)}
    assert {(s.end, s.fps, s.purpose) for s in m.segment_rows()} == {(None, 1.0, "eval")}
    assert "videos    250: 2 probed ok, 248 missing" in capsys.readouterr().out
    codes = Counter(p.code for p in validate(tmp_path / "gyt"))
    assert codes["video_missing"] == 248 and codes["inverted_box"] == 18 and codes["box_outside_frame"] > 2_000


def test_gyt_segments_file_choice(benchmarks_dir, tmp_path):
    m = build(["gyt", "--benchmark-dir", str(benchmarks_dir / "groundingyoutube"), "--video-dir", str(tmp_path),
               "--segments-file", "seg.json"], tmp_path / "gyt")
    caps = m.caption_rows()
    assert sum(c.kind == "step" for c in caps) == 5_132
    assert sum(c.kind == "step" and c.end == c.start for c in caps) == 41  # zero-length, kept


def test_yc_interactions(benchmarks_dir, tmp_path, media):
    videos = tmp_path / "videos"
    place(media.plain, videos, "3meb_5kcPFg.mp4")   # 64x48: boxes in the original frame
    place(media.large, videos, "iqcnbNqVc7U.mp4")   # 656x368 > 640x360: boxes in 640x360
    place(media.large, videos, "4Y8vVGsv4JE.mp4")   # one of the 7 original-resolution exceptions
    m = build(["yc-interactions", "--benchmark-dir", str(benchmarks_dir / "youcook2_interactions"),
               "--video-dir", str(videos)], tmp_path / "yc")
    rows = {v.video_id: v for v in m.video_rows()}
    assert len(rows) == 91 and sum(v.ok for v in rows.values()) == 3
    assert {v.split for v in rows.values()} == {"validation"}
    caps = m.caption_rows()
    assert len(caps) == 254 and {c.kind for c in caps} == {"step"}
    assert all(c.text for c in caps)
    boxes = m.box_rows()
    assert len(boxes) == 2_570
    sizes = {b.video_id: (b.frame_width, b.frame_height) for b in boxes}
    assert sizes["3meb_5kcPFg"] == (64, 48)
    assert sizes["iqcnbNqVc7U"] == (640, 360)
    assert sizes["4Y8vVGsv4JE"] == (656, 368)
    assert sizes["nuwCjQVlBrg"] == (None, None)  # missing video: coordinate space unknown
    box = next(b for b in boxes if b.video_id == "iqcnbNqVc7U" and b.time == 21.0)  # frame_id 22 -> t = 21 s
    assert (box.x1, box.y1, box.x2, box.y2, box.source) == (
        334.0, 247.0, 415.0, 298.0, "final_dataset_annotations.pkl['iqcnbNqVc7U'][22]")


def test_mining(benchmarks_dir, tmp_path, media):
    videos = tmp_path / "videos"
    place(media.plain, videos, "-1okAudsnAc.mp4")
    m = build(["mining", str(benchmarks_dir / "miningyoutube" / "annotations"), "--video-dir", str(videos)],
              tmp_path / "myt")
    assert len(m.video_rows()) == 250 and m.video("-1okAudsnAc").ok
    caps = m.caption_rows()
    assert len(caps) == 5_132 and {c.kind for c in caps} == {"label"}
    assert (caps[0].caption_id, caps[0].start, caps[0].end, caps[0].text, caps[0].source) == (
        "-1okAudsnAc:label:0", 75.277, 83.517, "crack_eggs", "-1okAudsnAc.srt block 1")
    assert m.boxes is None


def test_youcook2_subsets(benchmarks_dir, tmp_path, media):
    videos = tmp_path / "videos"
    place(media.plain, videos, "GLd3aX16zBg.mp4")
    anno = str(benchmarks_dir / "youcook2_interactions" / "youcookii_annotations_trainval.json")
    val = build(["youcook2", anno, "--video-dir", str(videos)], tmp_path / "val")
    assert len(val.video_rows()) == 457 and {v.split for v in val.video_rows()} == {"validation"}
    assert {(s.end, s.fps, s.purpose) for s in val.segment_rows()} == {(None, 1.0, "eval")}
    train = build(["youcook2", anno, "--subset", "training", "--video-dir", str(videos)], tmp_path / "train")
    assert len(train.video_rows()) == 1_333
    caps = [c for c in train.caption_rows() if c.video_id == "GLd3aX16zBg"]
    assert (caps[0].caption_id, caps[0].start, caps[0].end) == ("GLd3aX16zBg:step:0", 90.0, 102.0)
    segs = [s for s in train.segment_rows() if s.video_id == "GLd3aX16zBg"]
    # the video on disk lasts 2 s while the annotations say 241.62 s: every window lies past its end
    assert segs == []
    other = [s for s in train.segment_rows() if s.video_id == "H_9oM1Y60lU"]
    assert (other[0].start, other[0].end, other[0].fps, other[0].purpose) == (76.5, 92.5, 5.0, "train")
    assert len({s.segment_id for s in train.segment_rows()}) == len(train.segment_rows())


def test_charades_sta_and_didemo_from_the_command_line(tmp_path, media):
    """Small files in the published formats: Charades-STA's `vid start end##sentence` lines and DiDeMo's JSON
    list (times in 5-s segments from four annotators; the caption takes the moment most of them chose)."""
    videos = tmp_path / "videos"
    place(media.plain, videos, "AO8RW.mp4")
    sta = tmp_path / "charades_sta_test.txt"
    sta.write_text("AO8RW 0.0 6.9##a person is putting a book on a shelf.\n"
                   "AO8RW 7.5 15.2##person begins to play on a phone.\nY6R7T 1.0 9.0##a person opens a door.\n")
    m = build(["charades-sta", str(sta), "--video-dir", str(videos)], tmp_path / "sta")
    assert [(c.caption_id, c.start, c.end, c.kind) for c in m.caption_rows()] == [
        ("AO8RW:query:0", 0.0, 6.9, "query"), ("AO8RW:query:1", 7.5, 15.2, "query"),
        ("Y6R7T:query:0", 1.0, 9.0, "query")]
    assert m.video("AO8RW").ok and not m.video("Y6R7T").ok   # listed, marked missing
    didemo = tmp_path / "test_data.json"
    didemo.write_text(json.dumps([{"video": "AO8RW.mp4", "annotation_id": 7, "description": "the dog jumps",
                                   "times": [[1, 1], [1, 2], [1, 1], [0, 1]]}]))
    m = build(["didemo", str(didemo), "--video-dir", str(videos)], tmp_path / "didemo")
    (cap,) = m.caption_rows()
    assert (cap.caption_id, cap.start, cap.end, cap.text) == ("AO8RW.mp4:query:7", 5.0, 10.0, "the dog jumps")
