"""The howto100m builder on the three narration layouts, written by the test."""
from __future__ import annotations

import json

import pytest

from manifests.build import main
from manifests.narrations import load_narrations
from manifests.schema import Manifest
from tests.manifests.helpers import place, write_narration_csvs

pytestmark = pytest.mark.slow

# vidA exists (a 2 s video); vidB does not. Times in seconds.
NARRATIONS = {
    "vidA": [(0.2, 0.8, "crack the eggs"), (1.0, 1.5, "whisk them")],
    "vidB": [(10.0, 12.0, "heat the pan"), (13.0, 14.0, "add butter"), (30.0, 31.0, "pour")],
}


def write_csv_dir(root):
    return write_narration_csvs(root, NARRATIONS)


def write_caption_json(root):
    data = {vid: {"start": [r[0] for r in rows], "end": [r[1] for r in rows], "text": [r[2] for r in rows]}
            for vid, rows in NARRATIONS.items()}
    path = root / "caption.json"
    path.write_text(json.dumps(data))
    return path


def write_howtocaption_json(root):
    # each span carries a list of rewritten captions: one caption per inner string
    data = {vid: {"start": [r[0] for r in rows], "end": [r[1] for r in rows],
                  "text": [[r[2], r[2].upper()] for r in rows]} for vid, rows in NARRATIONS.items()}
    path = root / "howtocaption.json"
    path.write_text(json.dumps(data))
    return path


@pytest.fixture
def video_dir(tmp_path, media):
    d = tmp_path / "videos"
    place(media.plain, d, "vidA.webm")
    place(media.plain, d, "vidA.mp4")  # the preferred extension wins
    return d


@pytest.mark.parametrize("writer,per_span", [(write_csv_dir, 1), (write_caption_json, 1),
                                             (write_howtocaption_json, 2)])
def test_howto100m_formats(tmp_path, video_dir, writer, per_span):
    source = writer(tmp_path)
    out = tmp_path / "manifest"
    assert main(["howto100m", str(source), "--video-dir", str(video_dir), "--out", str(out)]) == 0
    m = Manifest.read(out)
    videos = {v.video_id: v for v in m.video_rows()}
    assert videos["vidA"].path == str(video_dir / "vidA.mp4") and videos["vidA"].ok
    assert videos["vidB"].probe_error == f"missing: {video_dir / 'vidB.mp4'}"
    caps = m.caption_rows()
    assert len(caps) == 5 * per_span
    assert {c.kind for c in caps} == {"narration"}
    assert len({c.caption_id for c in caps}) == len(caps)
    first = [c for c in caps if c.video_id == "vidA"][0]
    assert (first.caption_id, first.start, first.end, first.text) == ("vidA:narration:0", 0.2, 0.8, "crack the eggs")
    assert source.name in first.source
    if per_span == 2:
        assert [c.text for c in caps[:2]] == ["crack the eggs", "CRACK THE EGGS"]
        assert caps[1].source.endswith("row 0 text 1")
    # 16 s windows at 5 fps, centred, clipped to [0, duration], merged where they overlap
    segs = [(s.video_id, s.start, s.end, s.fps, s.purpose) for s in m.segment_rows()]
    assert segs == [("vidA", 0.0, 2.0, 5.0, "train"),
                    ("vidB", 3.0, 21.5, 5.0, "train"),   # [3, 19] and [5.5, 21.5] merged
                    ("vidB", 22.5, 38.5, 5.0, "train")]  # duration unknown: not clipped at the end


def test_howto100m_window_options(tmp_path, video_dir):
    out = tmp_path / "manifest"
    args = ["howto100m", str(write_csv_dir(tmp_path)), "--video-dir", str(video_dir), "--out", str(out),
            "--window", "4", "--fps", "2", "--anchor", "start", "--no-merge"]
    assert main(args) == 0
    segs = [(s.video_id, s.start, s.end, s.fps) for s in Manifest.read(out).segment_rows()]
    assert segs == [("vidA", 0.2, 2.0, 2.0), ("vidA", 1.0, 2.0, 2.0),
                    ("vidB", 10.0, 14.0, 2.0), ("vidB", 13.0, 17.0, 2.0), ("vidB", 30.0, 34.0, 2.0)]
    out2 = tmp_path / "whole"
    assert main(["howto100m", str(write_caption_json(tmp_path)), "--video-dir", str(video_dir), "--out", str(out2),
                 "--segments", "whole"]) == 0
    assert [(s.video_id, s.end, s.fps, s.purpose) for s in Manifest.read(out2).segment_rows()] == [
        ("vidA", None, 1.0, "train"), ("vidB", None, 1.0, "train")]


def test_mixed_json_and_bad_input(tmp_path, video_dir, capsys):
    path = tmp_path / "mixed.json"
    path.write_text(json.dumps({"v": {"start": [0, 5], "end": [2, 6], "text": ["plain", ["a", "b"]]}}))
    assert [n.text for n in load_narrations(path)["v"]] == ["plain", "a", "b"]
    bad = tmp_path / "bad.json"
    bad.write_text('{"v": {"start": [0], "end": [1], "text": [3]}}')
    assert main(["howto100m", str(bad), "--video-dir", str(video_dir), "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "['v']['text'][0]" in err
    assert not (tmp_path / "m").exists()
