"""A hand-edited manifest (its parquet tables rewritten after `manifests.build`) with an unsafe video id or a
video path outside the video directory it was built from (`args.video_dir` in manifest.json) is refused where it
is read: `Manifest.read` raises, and `pipeline.extract` stops with one `error:` line naming the table file and the
problem, exit 2, and writes no store."""
from __future__ import annotations

import json
import shutil

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from manifests.build import main as build_manifest
from manifests.errors import ManifestError
from manifests.schema import MANIFEST_FILE, Manifest
from tests.media import colour_video


@pytest.fixture()
def built(tmp_path):
    """(manifest, video dir): two generated videos, whole videos at 1 fps, as `manifests.build folder` writes it."""
    videos = tmp_path / "videos"
    videos.mkdir()
    for vid in ("a", "b"):
        colour_video(videos / f"{vid}.mp4", seconds=2, width=32, height=32)
    out = tmp_path / "manifest"
    assert build_manifest(["folder", str(videos), "--out", str(out), "--no-progress"]) == 0
    assert json.loads((out / MANIFEST_FILE).read_text())["args"]["video_dir"] == str(videos)
    return out, videos


def _edit_column(manifest, table: str, column: str, fn) -> str:
    path = manifest / f"{table}.parquet"
    t = pq.read_table(path)
    values = [fn(v) for v in t.column(column).to_pylist()]
    pq.write_table(t.set_column(t.column_names.index(column), column, pa.array(values, t.schema.field(column).type)),
                   path)
    return str(path)


def _rename_video(manifest, old: str, new: str) -> str:
    """Rename video `old` to `new` in every table (ids that embed it too), as a careful hand edit would."""
    for table, columns in (("videos", ["video_id"]), ("segments", ["segment_id", "video_id"]),
                           ("captions", ["caption_id", "video_id"])):
        if pq.read_table(manifest / f"{table}.parquet").num_rows:
            for column in columns:
                _edit_column(manifest, table, column,
                             lambda v: new + v[len(old):] if v == old or v.startswith(old + ":") else v)
    return str(manifest / "videos.parquet")


def _move_path(manifest, vid: str, path: str) -> str:
    t = pq.read_table(manifest / "videos.parquet")
    row = t.column("video_id").to_pylist().index(vid)
    return _edit_column(manifest, "videos", "path", lambda v, target=t.column("path")[row].as_py():
                        path if v == target else v)


def _outside(tmp_path, videos) -> str:
    """A real video outside the video dir: nothing but the check keeps it from being extracted."""
    target = tmp_path / "outside" / "a.mp4"
    target.parent.mkdir(exist_ok=True)
    shutil.copyfile(videos / "a.mp4", target)
    return str(target)


def _escaping(tmp_path, videos) -> str:
    """The same video reached from the video dir by a '..' component: it starts with the video dir's path."""
    _outside(tmp_path, videos)
    return f"{videos}/../outside/a.mp4"


EDITS = {  # name: (edit(manifest, tmp_path, video dir) -> the table file at fault, the problem named)
    "id with ..": (lambda m, tmp, v: _rename_video(m, "a", "../x"),
                   "video_id '../x' is not a safe name (it has a '.' or '..' path component)"),
    "id that climbs": (lambda m, tmp, v: _rename_video(m, "a", "sub/../../x"),
                       "is not a safe name (it has a '.' or '..' path component)"),
    "absolute id": (lambda m, tmp, v: _rename_video(m, "a", "/etc/x"), "is not a safe name (it is an absolute path)"),
    "path outside": (lambda m, tmp, v: _move_path(m, "a", _outside(tmp, v)), "is outside the video directory"),
    "path escaping with ..": (lambda m, tmp, v: _move_path(m, "a", _escaping(tmp, v)),
                              "is outside the video directory"),
}


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_a_hand_edited_unsafe_id_or_outside_path_is_refused_by_read_and_extract(built, tmp_path, capsys, edit):
    manifest, videos = built
    fn, problem = EDITS[edit]
    table = fn(manifest, tmp_path, videos)
    with pytest.raises(ManifestError) as err:
        Manifest.read(manifest)
    assert str(err.value).startswith(f"{table}: row(s) 0:") and problem in str(err.value), str(err.value)
    assert Manifest.read(manifest, check=False).videos.num_rows == 2  # still inspectable (manifests.validate)

    extract = pytest.importorskip("pipeline.extract")
    store = tmp_path / "store.zarr"
    capsys.readouterr()
    assert extract.main(["--manifest", str(manifest), "--store", str(store), "--encoders", "clip",
                         "--preset", "tiny"]) == 2
    err_lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err_lines) == 1 and err_lines[0].startswith(f"error: {table}: row(s) 0:"), err_lines
    assert problem in err_lines[0]
    assert not store.exists()


def test_paths_inside_the_video_dir_are_read_however_they_are_spelled(built):
    manifest, videos = built
    (videos / "sub").mkdir()
    _move_path(manifest, "a", f"{videos}/sub/../a.mp4")  # normalises to a path inside
    _move_path(manifest, "b", f"{videos}/./b.mp4")
    paths = Manifest.read(manifest).videos.column("path").to_pylist()
    assert pc.all(pc.starts_with(pa.array(paths), str(videos))).as_py()


def test_without_a_recorded_video_dir_paths_are_not_judged(built, tmp_path):
    manifest, videos = built
    meta = json.loads((manifest / MANIFEST_FILE).read_text())
    del meta["args"]["video_dir"]  # e.g. a manifest written by code, not by manifests.build
    (manifest / MANIFEST_FILE).write_text(json.dumps(meta))
    _move_path(manifest, "a", _outside(tmp_path, videos))
    assert Manifest.read(manifest).videos.num_rows == 2
