"""The store: writer/reader round trip, rollback, markers, index consolidation, specs, locks, URLs."""
from __future__ import annotations

import math
import uuid

import numpy as np
import pytest
import zarr

from pipeline.store import (ShardWriter, SpecMismatchError, StoreError, StoreLockedError, WriterLock, consolidate,
                            init_store, layout, open_store)
from pipeline.store.fs import StoreFS
from pipeline.store.layout import Field
from pipeline.store.writer import clear_inflight

D = 8
SPEC = {"encoder": "clip", "model": "tiny", "weights_sha256": "abc", "dims": {"global": D, "grid": D, "sentence": D,
        "words": D}, "grid": [7, 7], "max_words": 20, "preprocessing": {"size": 224, "resize": "center-crop"}}
S3D = {**SPEC, "encoder": "s3d", "grid": [2, 7, 7], "window": 16, "fps": 8.0}


def roots(tmp_path):
    return [str(tmp_path / "local.zarr"), f"memory://{uuid.uuid4().hex}/store.zarr", f"file://{tmp_path}/url.zarr"]


def frames(rng, n, t0=0.0, fps=1.0):
    return {"global": rng.standard_normal((n, D)), "grid": rng.standard_normal((n, 7, 7, D)),
            "times": t0 + np.arange(n) / fps}


def seg(vid, start=0.0, fps=1.0):
    return {"segment_id": f"{vid}:{start}@{fps}", "video_id": vid, "start": start, "end": None, "fps": fps}


def test_chunks_are_one_to_eight_megabytes_for_real_sizes():
    for spec in ({**SPEC, "dims": dict.fromkeys(SPEC["dims"], 512)},
                 {**S3D, "grid": [4, 7, 7], "dims": {"global": 1024, "grid": 1024, "sentence": 2048, "words": 2048}}):
        for f in (*layout.frame_fields(spec), *layout.text_fields(spec)):
            nbytes = layout.chunk_rows(f) * np.dtype(f.dtype).itemsize * math.prod(f.shape)
            assert 1 << 20 <= nbytes <= 8 << 20 or layout.chunk_rows(f) == 1 << 16, f


@pytest.mark.parametrize("which", [0, 1, 2], ids=["local", "memory", "file-url"])
def test_round_trip_across_chunk_boundaries(tmp_path, which):
    root = roots(tmp_path)[which]
    rng = np.random.default_rng(0)
    init_store(root, {"clip": SPEC})
    w = ShardWriter(root, "sh-1", {"clip": SPEC})
    chunk = layout.chunk_rows(Field("grid", "float16", (7, 7, D)))
    written = {}
    for k, n in enumerate([3, chunk + 5, 2 * chunk, 1]):  # uneven appends straddling chunk boundaries
        vid = f"v{k}"
        with w.segment(seg(vid)) as rows:
            parts = [frames(rng, m, t0=sum(([n // 2, n - n // 2])[:j])) for j, m in enumerate([n // 2, n - n // 2]) if m]
            for p in parts:
                w.append_frames("clip", **p)
            rows.info.update(truncated=False, end_actual=float(n))
        written[vid] = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
    w.commit()
    store = open_store(root)
    assert store.video_ids() == sorted(written)
    for vid, want in written.items():
        got = store.frames(vid, "clip")
        np.testing.assert_array_equal(got["times"], want["times"])
        np.testing.assert_array_equal(got["grid"], want["grid"].astype(np.float16))
        np.testing.assert_array_equal(got["global"], want["global"].astype(np.float16))


def test_failed_segment_rolls_back_even_after_flushing(tmp_path):
    root = str(tmp_path / "s.zarr")
    rng = np.random.default_rng(1)
    init_store(root, {"clip": SPEC})
    w = ShardWriter(root, "sh-1", {"clip": SPEC})
    chunk = layout.chunk_rows(Field("grid", "float16", (7, 7, D)))
    first = frames(rng, chunk // 2 + 1)
    with w.segment(seg("a")):
        w.append_frames("clip", **first)
    with pytest.raises(OSError):
        with w.segment(seg("b")):
            w.append_frames("clip", **frames(rng, 3 * chunk))  # flushes whole chunks to disk
            raise OSError("decoder died")
    w.add_failure(video_id="b", segment_id="b:0.0@1.0", stage="decode", reason="decoder died")
    third = frames(rng, 7)
    with w.segment(seg("c")):
        w.append_frames("clip", **third)
    w.commit()
    store = open_store(root)
    np.testing.assert_array_equal(store.frames("a")["grid"], first["grid"].astype(np.float16))
    np.testing.assert_array_equal(store.frames("c")["grid"], third["grid"].astype(np.float16))
    assert store.video_ids() == ["a", "c"]
    assert [(f.video_id, f.stage) for f in store.failures()] == [("b", "decode")]
    assert zarr.open_group(root, mode="r")["shards/sh-1/clip/grid"].shape[0] == len(first["grid"]) + 7


def test_time_ranges_fps_filter_and_order(tmp_path):
    root = str(tmp_path / "s.zarr")
    rng = np.random.default_rng(2)
    init_store(root, {"clip": SPEC})
    w = ShardWriter(root, "sh-1", {"clip": SPEC})
    with w.segment(seg("v", start=10.0, fps=5.0)):   # a later segment written first
        w.append_frames("clip", **frames(rng, 10, t0=10.0, fps=5.0))
    with w.segment(seg("v", start=0.0, fps=1.0)):
        w.append_frames("clip", **frames(rng, 20, t0=0.0, fps=1.0))
    w.commit()
    store = open_store(root)
    allf = store.frames("v")
    assert np.all(np.diff(allf["times"]) >= 0) and len(allf["times"]) == 30
    np.testing.assert_allclose(store.frames("v", start=10, end=11, fps=5.0)["times"], [10, 10.2, 10.4, 10.6, 10.8])
    np.testing.assert_allclose(store.frames("v", start=3.5, end=6, fps=1.0)["times"], [4, 5])
    assert store.frames("v", start=100)["grid"].shape == (0, 7, 7, D)
    with pytest.raises(KeyError, match="no features for video 'nope'"):
        store.frames("nope")
    with pytest.raises(KeyError, match="encoder 's3d' not in the store"):
        store.frames("v", encoder="s3d")


def test_captions_round_trip_per_encoder(tmp_path):
    root = str(tmp_path / "s.zarr")
    specs = {"clip": SPEC, "s3d": S3D}
    init_store(root, specs)
    w = ShardWriter(root, "sh-1", specs)
    rows = [{"caption_id": f"v:{i}", "video_id": "v", "start": float(i), "end": i + 1.0, "text": f"t{i}",
             "kind": "narration"} for i in range(3)]
    feats = {e: {"sentence": np.full((3, D), k + 1.0), "words": np.arange(3 * 20 * D).reshape(3, 20, D) % 7,
                 "mask": np.tri(3, 20, 1, bool)} for k, e in enumerate(specs)}
    w.add_captions(rows, feats)
    w.commit()
    for k, e in enumerate(specs):
        c = open_store(root).captions("v", encoder=e)
        assert list(c["text"]) == ["t0", "t1", "t2"] and list(c["caption_id"]) == ["v:0", "v:1", "v:2"]
        np.testing.assert_array_equal(c["sentence"], np.full((3, D), k + 1.0, np.float16))
        np.testing.assert_array_equal(c["mask"], np.tri(3, 20, 1, bool))
    assert open_store(root).captions("other")["words"].shape == (0, 20, D)


def test_shard_without_marker_does_not_exist_and_index_consolidates(tmp_path):
    root = str(tmp_path / "s.zarr")
    rng = np.random.default_rng(3)
    init_store(root, {"clip": SPEC})
    for name, vid in (("sh-a", "a"), ("sh-b", "b")):
        w = ShardWriter(root, name, {"clip": SPEC})
        with w.segment(seg(vid)):
            w.append_frames("clip", **frames(rng, 4))
        if name == "sh-a":
            w.commit()
    assert open_store(root).video_ids() == ["a"]             # sh-b has chunks but no marker
    assert StoreFS(root).list_names(layout.INFLIGHT_DIR) == ["sh-b"]
    assert clear_inflight(root) == {"recovered": 0, "removed": 1}  # debris of ours: removed
    assert not (tmp_path / "s.zarr" / "shards" / "sh-b").exists()
    index = consolidate(root)
    assert index.journal == [] and len(index.runs) == 1
    w = ShardWriter(root, "sh-c", {"clip": SPEC})            # committed after consolidation: read from its marker
    with w.segment(seg("c")):
        w.append_frames("clip", **frames(rng, 2))
    w.commit()
    store = open_store(root)
    assert store.video_ids() == ["a", "c"] and store.index.journal == ["sh-c"]
    assert consolidate(root).n_shards == 2


def test_non_finite_and_float16_overflow_are_refused(tmp_path):
    root = str(tmp_path / "s.zarr")
    init_store(root, {"clip": SPEC})
    w = ShardWriter(root, "sh-1", {"clip": SPEC})
    rng = np.random.default_rng(4)
    bad = frames(rng, 2)
    bad["global"][0, 0] = 1e6  # beyond float16
    with pytest.raises(ValueError, match="non-finite"):
        with w.segment(seg("v")):
            w.append_frames("clip", **bad)


def test_spec_mismatch_names_both_sides(tmp_path):
    root = str(tmp_path / "s.zarr")
    init_store(root, {"clip": SPEC})
    init_store(root, {"clip": dict(SPEC)})  # same spec again: fine
    with pytest.raises(SpecMismatchError, match=r"clip.weights_sha256: store has 'abc', wanted 'zzz'"):
        init_store(root, {"clip": {**SPEC, "weights_sha256": "zzz"}})
    with pytest.raises(SpecMismatchError, match="holds encoders"):
        init_store(root, {"clip": SPEC, "s3d": S3D})
    with pytest.raises(SpecMismatchError, match=r"clip.preprocessing.resize: store has 'center-crop', wanted 'squash'"):
        open_store(root, expect={"clip": {"preprocessing": {"resize": "squash"}}})
    assert open_store(root, expect={"clip": {"model": "tiny"}}).encoders["clip"]["model"] == "tiny"
    with pytest.raises(StoreError, match="no groundcache store"):
        open_store(str(tmp_path / "absent.zarr"))


def test_writer_lock(tmp_path):
    root = str(tmp_path / "s.zarr")
    init_store(root, {"clip": SPEC})
    with WriterLock(root):
        with pytest.raises(StoreLockedError, match="being written by pid"):
            WriterLock(root).__enter__()
    fs = StoreFS(root)
    assert not fs.exists(layout.LOCK)
    fs.write_json(layout.LOCK, {"host": WriterLock(root).me["host"], "pid": 2 ** 22 + 12345, "since": 0, "token": "x"})
    with pytest.raises(StoreLockedError, match="no longer running.*--force-unlock"):  # reported, not taken over
        WriterLock(root).__enter__()
    with WriterLock(root, force=True):
        pass
    assert not fs.exists(layout.LOCK)


def test_int8_grids_come_back_as_float16_close_to_the_original_and_half_the_size(tmp_path):
    from pipeline.verify import store_sizes

    big = {**SPEC, "dims": dict.fromkeys(SPEC["dims"], 512)}
    rng = np.random.default_rng(5)
    grid = rng.standard_normal((150, 7, 7, 512)) * rng.uniform(0.2, 3.0, (150, 7, 7, 1))  # tokens of varied norm
    got, sizes = {}, {}
    for dtype in ("float16", "int8"):
        root = str(tmp_path / f"{dtype}.zarr")
        spec = {**big, "grid_dtype": dtype} if dtype == "int8" else big
        init_store(root, {"clip": spec})
        w = ShardWriter(root, "sh-1", {"clip": spec})
        with w.segment(seg("v")):
            w.append_frames("clip", grid=grid, times=np.arange(150.0), **{"global": grid.mean((1, 2))})
        w.commit()
        store = open_store(root)
        got[dtype], sizes[dtype] = store.frames("v")["grid"], store_sizes(store)["clip"]
        assert got[dtype].dtype == np.float16 and got[dtype].shape == grid.shape
    a, b = got["float16"].astype(np.float32), got["int8"].astype(np.float32)
    cosine = (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)
    assert cosine.mean() >= 0.999 and cosine.min() > 0.995
    assert sizes["float16"] / sizes["int8"] >= 1.8
    with pytest.raises(SpecMismatchError, match="grid_dtype"):  # one store, one grid dtype
        init_store(str(tmp_path / "float16.zarr"), {"clip": {**big, "grid_dtype": "int8"}})
