"""The manifest format: round trip, schema checks on read, atomic and safe writes."""
from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from manifests.errors import ManifestError
from manifests.schema import (
    BoxRow, CaptionRow, Manifest, SegmentRow, VideoRow, conform, rows_to_table, segment_id,
)


def sample_manifest(with_boxes: bool = True) -> Manifest:
    videos = [VideoRow("a", "/data/a.mp4", "set", "test", 12.5, 640, 480, 25.0, 90, "h264", True),
              VideoRow("b", "/data/b.mp4", "set", None, probe_error="missing: /data/b.mp4")]
    segments = [SegmentRow(segment_id("a", 0, None, 1), "a", 0.0, None, 1.0, "eval"),
                SegmentRow(segment_id("b", 2, 18, 5), "b", 2.0, 18.0, 5.0, "train")]
    captions = [CaptionRow("a:step:0", "a", 1.0, 3.5, "crack eggs", "step", "seg.json['a'] id 0"),
                CaptionRow("a:query:0", "a", None, None, "background", "query", "vid2step.json['a'][0]")]
    boxes = [BoxRow("a", 2.0, 1.0, 2.0, 30.5, 40.0, 640, 480, "crack eggs", "box_anno.json['a'] second 2"),
             BoxRow("b", 0.0, 1.0, 2.0, 3.0, 4.0, None, None)]
    return Manifest.from_rows(videos=videos, segments=segments, captions=captions,
                              boxes=boxes if with_boxes else None, builder="test", args={"x": 1})


def test_round_trip(tmp_path):
    m = sample_manifest()
    out = m.write(tmp_path / "m")
    assert sorted(p.name for p in out.iterdir()) == [
        "boxes.parquet", "captions.parquet", "manifest.json", "segments.parquet", "videos.parquet"]
    meta = json.loads((out / "manifest.json").read_text())
    assert meta == {"schema_version": 1, "builder": "test", "args": {"x": 1}, "created": m.created}
    back = Manifest.read(out)
    assert back == m
    assert back.video_rows() == m.video_rows() and back.box_rows() == m.box_rows()
    assert back.caption_rows()[1].start is None
    assert back.video("a").rotation == 90 and not back.video("b").ok
    with pytest.raises(KeyError):
        back.video("zzz")
    assert pq.read_table(out / "videos.parquet").schema.field("width").type == pa.int32()
    assert pq.read_table(out / "videos.parquet").schema.field("rotation").type == pa.int16()


def test_boxes_are_optional(tmp_path):
    out = sample_manifest(with_boxes=False).write(tmp_path / "m")
    assert not (out / "boxes.parquet").exists()
    back = Manifest.read(out)
    assert back.boxes is None and back.box_rows() == []


def test_write_refuses_to_overwrite_and_replaces_atomically(tmp_path):
    target = tmp_path / "m"
    sample_manifest().write(target)
    with pytest.raises(FileExistsError, match="already exists"):
        sample_manifest(with_boxes=False).write(target)
    assert (target / "boxes.parquet").exists()  # untouched
    sample_manifest(with_boxes=False).write(target, overwrite=True)
    assert not (target / "boxes.parquet").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["m"]  # no temporary or old directory left behind


def test_write_never_replaces_a_directory_that_is_not_a_manifest(tmp_path):
    target = tmp_path / "videos"
    target.mkdir()
    (target / "precious.mp4").write_bytes(b"x")
    with pytest.raises(FileExistsError, match="not a manifest"):
        sample_manifest().write(target, overwrite=True)
    assert (target / "precious.mp4").exists()


def test_failed_write_leaves_nothing(tmp_path, monkeypatch):
    def explode(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", explode)
    with pytest.raises(OSError, match="disk full"):
        sample_manifest().write(tmp_path / "m")
    assert list(tmp_path.iterdir()) == []


def _rewrite(out, table, transform):
    path = out / f"{table}.parquet"
    pq.write_table(transform(pq.read_table(path)), path)
    return path


@pytest.mark.parametrize("table,transform,fragment", [
    ("videos", lambda t: t.drop_columns(["fps"]), "missing column 'fps'"),
    ("captions", lambda t: t.append_column("extra", pa.array([1, 2])), "unexpected column(s) ['extra']"),
    ("segments", lambda t: t.set_column(2, "start", pa.array(["0", "2"])), "column 'start' has type string"),
    ("captions", lambda t: t.set_column(4, "text", pa.array(["a", None])), "column 'text' is null in row 1"),
    ("captions", lambda t: t.set_column(5, "kind", pa.array(["step", "title"])),
     "column 'kind' row 1 is 'title'"),
    ("segments", lambda t: t.set_column(5, "purpose", pa.array(["eval", "test"])), "column 'purpose' row 1"),
])
def test_read_checks_the_schema(tmp_path, table, transform, fragment):
    out = sample_manifest().write(tmp_path / "m")
    path = _rewrite(out, table, transform)
    with pytest.raises(ManifestError) as err:
        Manifest.read(out)
    assert str(path) in str(err.value) and fragment in str(err.value)


def test_read_casts_losslessly(tmp_path):
    out = sample_manifest().write(tmp_path / "m")
    _rewrite(out, "videos", lambda t: t.set_column(5, "width", t.column("width").cast(pa.int64())))
    assert Manifest.read(out).video("a").width == 640
    _rewrite(out, "videos", lambda t: t.set_column(5, "width", pa.array([2**40, None])))
    with pytest.raises(ManifestError, match="column 'width' has type int64, expected int32"):
        Manifest.read(out)


@pytest.mark.parametrize("edit,fragment", [
    (lambda m: {**m, "schema_version": 2}, "schema_version 2"),
    (lambda m: {k: v for k, v in m.items() if k != "builder"}, "'builder'"),
    (lambda m: "[1, 2", "not valid JSON"),
])
def test_read_checks_manifest_json(tmp_path, edit, fragment):
    out = sample_manifest().write(tmp_path / "m")
    meta_path = out / "manifest.json"
    new = edit(json.loads(meta_path.read_text()))
    meta_path.write_text(new if isinstance(new, str) else json.dumps(new))
    with pytest.raises(ManifestError) as err:
        Manifest.read(out)
    assert str(meta_path) in str(err.value) and fragment in str(err.value)


def test_read_missing_pieces(tmp_path):
    with pytest.raises(ManifestError, match="not a manifest directory"):
        Manifest.read(tmp_path)
    out = sample_manifest().write(tmp_path / "m")
    (out / "segments.parquet").unlink()
    with pytest.raises(ManifestError, match="segments.parquet: missing table file"):
        Manifest.read(out)
    (out / "segments.parquet").write_bytes(b"junk")
    with pytest.raises(ManifestError, match="not a readable parquet file"):
        Manifest.read(out)


def test_rows_to_table_empty_and_conform():
    t = rows_to_table([], "captions")
    assert t.num_rows == 0 and t.schema.field("start").nullable
    with pytest.raises(ManifestError, match="<x>: column 'video_id' is null"):
        conform(pa.table({"video_id": pa.array([None], pa.string()), "time": [0.0], "x1": [0.0], "y1": [0.0],
                          "x2": [1.0], "y2": [1.0], "frame_width": [1], "frame_height": [1], "label": ["l"],
                          "source": ["s"]}), "boxes", "<x>")
