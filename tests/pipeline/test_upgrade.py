"""`python -m pipeline.upgrade`: a version-1 store (written here with zarr, as version 1 wrote it) is refused
with the upgrade command, upgraded without touching its features, and serves the same data; a damaged
version-2 index is rebuilt from the markers; a lost zarr.json is restored from the shards' specs."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import zarr
from zarr.codecs import BloscCodec

from pipeline.store import StoreCorruptError, StoreError, layout, open_store
from pipeline.upgrade import main as upgrade_main

D = 4
SPEC = {"encoder": "clip", "model": "tiny", "weights_sha256": "abc", "dims": dict.fromkeys(
    ("global", "grid", "sentence", "words"), D), "grid": [7, 7], "max_words": 20,
    "preprocessing": {"size": 224, "resize": "center-crop"}}


def write_v1_store(root: Path) -> dict:
    """Two shards in the version-1 layout; shard 2's word tokens are all zero, so zarr writes no chunk for them."""
    rng = np.random.default_rng(0)
    group = zarr.open_group(str(root), mode="a", attributes={layout.ATTRS_KEY: {
        "schema_version": 1, "encoders": {"clip": SPEC}, "created": 0.0}})
    want = {}
    for s, vid in enumerate(("a", "b")):
        name = f"sh-{s:016x}"
        n = 5 + s
        data = {"global": rng.standard_normal((n, D)), "grid": rng.standard_normal((n, 7, 7, D)),
                "times": np.arange(n, dtype=np.float64)}
        text = {"sentence": rng.standard_normal((2, D)), "words": np.zeros((2, 20, D)) if s else
                rng.standard_normal((2, 20, D)), "mask": np.ones((2, 20), bool)}
        shard = group.require_group(layout.shard_path(name))
        for gname, arrays in (("clip", data), ("clip_text", text)):
            g = shard.create_group(gname, attributes={"encoder_spec": SPEC})
            for key, value in arrays.items():
                f = next(f for f in (*layout.frame_fields(SPEC), *layout.text_fields(SPEC)) if f.name == key)
                a = g.create_array(key, shape=(len(value), *f.shape), chunks=(layout.chunk_rows(f), *f.shape),
                                   dtype=f.dtype, compressors=BloscCodec(cname="zstd", clevel=3), fill_value=0)
                a[:] = value.astype(f.dtype)
        marker = {"schema_version": 1, "shard": name, "committed": float(s), "encoders": ["clip"],
                  "rows": {"clip": n, "clip_text": 2},
                  "segments": [{"segment_id": f"{vid}:0", "video_id": vid, "start": 0.0, "end": None, "fps": 1.0,
                                "end_actual": float(n), "truncated": False, "rows": {"clip": [0, n]}}],
                  "captions": [{"caption_id": f"{vid}:{i}", "video_id": vid, "start": float(i), "end": i + 1.0,
                                "text": f"{vid} {i}", "kind": "narration", "row": i} for i in range(2)],
                  "failures": []}
        (root / layout.marker_path(name)).write_text(json.dumps(marker))
        want[vid] = (data, text)
    (root / "index").mkdir()
    (root / "index" / "segments.parquet").write_bytes(b"PAR1 version-1 index")
    return want


def test_a_version_1_store_is_refused_then_upgraded_without_rewriting_features(tmp_path, capsys):
    root = tmp_path / "v1.zarr"
    want = write_v1_store(root)
    chunk_files = {p: p.read_bytes() for p in root.rglob("c/*") if p.is_file()}
    with pytest.raises(StoreError, match=r"version 1.*python -m pipeline.upgrade --store"):
        open_store(str(root))
    assert upgrade_main(["--store", str(root)]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["markers_upgraded"] == 2 and report["zero_chunks_written"] == 1 and report["videos"] == 2
    assert all(p.read_bytes() == data for p, data in chunk_files.items())     # features untouched
    assert not (root / "index" / "segments.parquet").exists()
    store = open_store(str(root))
    for vid, (data, text) in want.items():
        got, caps = store.frames(vid), store.captions(vid)
        for key in data:
            np.testing.assert_array_equal(got[key], data[key].astype(got[key].dtype))
        np.testing.assert_array_equal(caps["words"], text["words"].astype(np.float16))
        assert list(caps["text"]) == [f"{vid} 0", f"{vid} 1"]
    assert upgrade_main(["--store", str(root)]) == 0                          # again: rebuilds the same index
    assert open_store(str(root)).video_ids() == ["a", "b"]


def test_a_damaged_index_is_refused_then_rebuilt_from_the_markers(tmp_path):
    root = tmp_path / "v1.zarr"
    write_v1_store(root)
    assert upgrade_main(["--store", str(root)]) == 0
    (root / layout.CURRENT).unlink()
    with pytest.raises(StoreCorruptError, match="CURRENT.json: missing.*pipeline.upgrade"):
        open_store(str(root))
    assert upgrade_main(["--store", str(root)]) == 0
    assert open_store(str(root)).video_ids() == ["a", "b"]
    shutil.rmtree(root / layout.INDEX_DIR)
    assert upgrade_main(["--store", str(root)]) == 0
    assert open_store(str(root)).video_ids() == ["a", "b"]


def test_a_lost_root_is_an_error_until_restored_from_the_shards(tmp_path, capsys):
    root = tmp_path / "v1.zarr"
    write_v1_store(root)
    assert upgrade_main(["--store", str(root)]) == 0
    os.remove(root / layout.ROOT_META)
    with pytest.raises(StoreError, match="no zarr.json.*--restore-root"):
        open_store(str(root))
    assert upgrade_main(["--store", str(root), "--restore-root"]) == 0
    assert open_store(str(root)).encoders == {"clip": SPEC}
    capsys.readouterr()
    assert upgrade_main(["--store", str(root), "--restore-root"]) == 2
    assert "nothing to restore" in capsys.readouterr().err
