"""Malformed annotation files: each raises AnnotationError naming the file, where, and the problem."""
from __future__ import annotations

import json
import pickle

import pytest

from manifests.benchmarks import gyt, mining, yc_interactions, youcook2
from manifests.errors import AnnotationError
from manifests.narrations import load_narrations


def _json(tmp_path, obj, name="anno.json"):
    path = tmp_path / name
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return path


def _raises(fn, path, *fragments):
    with pytest.raises(AnnotationError) as err:
        fn(path)
    message = str(err.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message, message
    return err.value


GOOD_BOX = {"second": 3, "box": [1, 2, 30, 40], "step_name": "crack eggs"}


@pytest.mark.parametrize("content,fragments", [
    ('{"v": [', ("invalid JSON", "line 1")),
    ([], ("top level", "expected an object")),
    ({"v": 3}, ("['v']", "expected a list of boxes")),
    ({"v": [{"second": 3, "box": [1, 2, 3, 4]}]}, ("['v'][0]", "missing key 'step_name'")),
    ({"v": [{**GOOD_BOX, "box": [1, 2, 3]}]}, ("['v'][0]['box']", "expected a box")),
    ({"v": [{**GOOD_BOX, "box": [1, 2, "3", 4]}]}, ("['v'][0]['box'][2]", "expected a number")),
    ({"v": [{**GOOD_BOX, "second": "3"}]}, ("['v'][0]['second']", "expected an integer")),
    ({"v": [{**GOOD_BOX, "second": True}]}, ("['v'][0]['second']", "expected an integer")),
    ({"v": [GOOD_BOX, GOOD_BOX]}, ("['v']", "more than one box for second(s) [3]")),
    ({"v": {"3s": [1, 2, 3, 4]}}, ("['v']['3s']", "not a whole second")),
    ({"v": {"3": {"box": [1, 2, 3, 4]}}}, ("['v']['3']", "missing key 'step'")),
    ({"v": {"3": [1, 2, 3, 4], "03": [1, 2, 3, 4]}}, ("more than one box",)),
])
def test_gyt_boxes_malformed(tmp_path, content, fragments):
    _raises(gyt.load_boxes, _json(tmp_path, content), *fragments)


@pytest.mark.parametrize("content,fragments", [
    ({"v": {"segment": [1, 2]}}, ("['v']", "expected a list")),
    ({"v": [{"segment": [1, 2], "id": 0}]}, ("['v'][0]", "missing key 'sentence'")),
    ({"v": [{"segment": [1, 2, 3], "id": 0, "sentence": "x"}]}, ("['v'][0]['segment']", "expected [start, end]")),
    ({"v": [{"segment": [1.5, 2], "id": 0, "sentence": "x"}]}, ("['v'][0]['segment'][0]", "expected an integer")),
    ({"v": [{"segment": [1, 2], "id": 0, "sentence": 7}]}, ("['v'][0]['sentence']", "expected a string")),
    ({"v": [{"segment": [1, 2], "id": 0, "sentence": "a"}, {"segment": [3, 4], "id": 0, "sentence": "b"}]},
     ("['v']", "not unique")),
])
def test_gyt_segments_malformed(tmp_path, content, fragments):
    _raises(gyt.load_segments, _json(tmp_path, content), *fragments)


def test_gyt_other_files_malformed(tmp_path):
    _raises(gyt.load_vid2step, _json(tmp_path, {"v": ["a", 3]}), "['v'][1]", "expected a string")
    _raises(gyt.load_sizes, _json(tmp_path, {"v": [640.5, 480]}), "['v'][0]", "expected an integer")
    _raises(gyt.load_sizes, _json(tmp_path, {"v": [640]}), "['v']", "expected [W, H]")
    _raises(gyt.load_sizes, _json(tmp_path, {"v": [0, 480]}), "['v']", "must be positive")
    _raises(gyt.load_scales, _json(tmp_path, {"v": ["a", 1]}), "['v'][0]", "expected a number")
    url = "https://x/mining/vid_1/vid_1_12_crack_eggs.jpg"
    assert gyt.load_points(_json(tmp_path, [{"image_url": url, "x": 1, "y": 2.5, "mean_dist": None}])) == {
        "vid_1": [gyt.GytPoint("vid_1", 12, "crack_eggs", 1.0, 2.5, None, url)]}
    bad_url = [{"image_url": "https://x/vid/other_12_step.jpg", "x": 1, "y": 2, "mean_dist": 3}]
    _raises(gyt.load_points, _json(tmp_path, bad_url), "[0]", "is not .../<vid>/<vid>_<second>_<step>.jpg")
    _raises(gyt.load_points, _json(tmp_path, [{"image_url": url, "x": "1", "y": 2, "mean_dist": 3}]),
            "[0]['x']", "expected a number")


YC2_VIDEO = {"duration": 10.0, "subset": "validation", "recipe_type": "1", "video_url": "u",
             "annotations": [{"segment": [1, 2], "id": 0, "sentence": "s"}]}


@pytest.mark.parametrize("content,fragments", [
    ({"videos": {}}, ("top level", "missing key 'database'")),
    ({"database": {"v": {k: x for k, x in YC2_VIDEO.items() if k != "subset"}}}, ("['database']['v']", "'subset'")),
    ({"database": {"v": {**YC2_VIDEO, "duration": "10"}}}, ("['database']['v']['duration']", "expected a number")),
    ({"database": {"v": {**YC2_VIDEO, "annotations": [{"segment": [1, 2], "id": 0}]}}},
     ("['database']['v']['annotations'][0]", "missing key 'sentence'")),
])
def test_youcook2_malformed(tmp_path, content, fragments):
    _raises(youcook2.load_youcook2, _json(tmp_path, content), *fragments)


def test_youcook2_not_utf8(tmp_path):
    path = tmp_path / "latin1.json"
    path.write_bytes('{"database": {"caf\xe9": {}}}'.encode("latin-1"))
    _raises(youcook2.load_youcook2, path, "not UTF-8")


def _pickle(tmp_path, obj):
    path = tmp_path / "anno.pkl"
    path.write_bytes(pickle.dumps(obj))
    return path


def test_yc_interactions_malformed(tmp_path):
    assert yc_interactions.load_segments(_pickle(tmp_path, {("b", 3, 4), ("a", 1, 2)})) == [("a", 1, 2), ("b", 3, 4)]
    _raises(yc_interactions.load_segments, _pickle(tmp_path, {"a": 1}), "top level", "expected a set")
    _raises(yc_interactions.load_segments, _pickle(tmp_path, {("a", 1.0, 2)}), "('a', 1.0, 2)", "expected a tuple")
    _raises(yc_interactions.load_boxes, _pickle(tmp_path, [1]), "top level", "expected a dict")
    _raises(yc_interactions.load_boxes, _pickle(tmp_path, {"v": {0: (1, 2, 3, 4)}}), "['v'][0]", ">= 1")
    _raises(yc_interactions.load_boxes, _pickle(tmp_path, {"v": {"1": (1, 2, 3, 4)}}), "['v']['1']", "integer")
    _raises(yc_interactions.load_boxes, _pickle(tmp_path, {"v": {1: (1, 2, 3)}}), "['v'][1]", "expected a box")
    _raises(yc_interactions.load_boxes, _pickle(tmp_path, {"v": [1]}), "['v']", "expected video_id")


def _text(tmp_path, text, name="file.txt"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_mining_srt_parsing_and_errors(tmp_path):
    srt = "\ufeff1\r\n00:01:15,277 --> 00:01:23,517\r\ncrack_eggs\r\n\r\n2\r\n01:00:00,000 --> 01:00:01,5\r\nx\r\n"
    _raises(mining.load_srt, _text(tmp_path, srt, "a.srt"), "line 6", "HH:MM:SS,mmm")
    good = "1\n00:00:01,000 --> 00:00:02,500\nadd_salt\n\n\n2\n01:00:00,000 --> 01:00:01,000\nfry\negg\n"
    assert mining.load_srt(_text(tmp_path, good, "b.srt")) == [
        mining.MiningSegment(1.0, 2.5, "add_salt"), mining.MiningSegment(3600.0, 3601.0, "fry egg")]
    _raises(mining.load_srt, _text(tmp_path, "1\n00:00:01,000 --> 00:00:02,000\n", "c.srt"), "line 1", "SRT block")
    _raises(mining.load_srt, _text(tmp_path, "x\n00:00:01,000 --> 00:00:02,000\ny\n", "d.srt"), "line 1")
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    _raises(mining.load_srt_dir, empty_dir, "no .srt files")


def test_mining_text_file_errors(tmp_path):
    assert mining.load_class_dict(_text(tmp_path, "add_egg \nbackground\n\n")) == ["add_egg", "background"]
    _raises(mining.load_class_dict, _text(tmp_path, "a\n\nb\n"), "line 2", "empty class name")
    _raises(mining.load_class_dict, _text(tmp_path, "a\nb\na\n"), "duplicate class names ['a']")
    _raises(mining.load_mapping, _text(tmp_path, "0 a\nx b\n"), "line 2", "expected '<id> <name>'")
    _raises(mining.load_mapping, _text(tmp_path, "0 a\n2 b\n"), "not 0..N-1")
    _raises(mining.load_lengths, _text(tmp_path, "150\nlong\n"), "line 2", "expected a number")
    _raises(mining.load_grammar, _text(tmp_path, "\n"), "empty transcript")
    _raises(mining.load_frame_labels, _text(tmp_path, "a\n \nb\n"), "line 2", "empty frame label")


@pytest.mark.parametrize("content,fragments", [
    ("start,stop,text\n1,2,a\n", ("header", "missing column(s) ['end']")),
    ("start,end,text\n1,x,a\n", ("line 2", "column 'end' is not a number")),
    ("start,end,text\n1,2\n", ("line 2", "no 'text'")),
])
def test_narration_csv_malformed(tmp_path, content, fragments):
    (tmp_path / "csvs").mkdir()
    path = _text(tmp_path / "csvs", content, "vid.csv")
    with pytest.raises(AnnotationError) as err:
        load_narrations(tmp_path / "csvs")
    assert str(path) in str(err.value) and all(f in str(err.value) for f in fragments)


@pytest.mark.parametrize("content,fragments", [
    ({"v": {"start": [1], "end": [2]}}, ("['v']", "missing key 'text'")),
    ({"v": {"start": [1, 2], "end": [2], "text": ["a"]}}, ("['v']", "differ in length")),
    ({"v": {"start": ["1"], "end": [2], "text": ["a"]}}, ("['v']['start'][0]", "expected a number")),
    ({"v": {"start": [1], "end": [2], "text": [["a", 3]]}}, ("['v']['text'][0][1]", "expected a string")),
])
def test_narration_json_malformed(tmp_path, content, fragments):
    _raises(load_narrations, _json(tmp_path, content, "caption.json"), *fragments)
