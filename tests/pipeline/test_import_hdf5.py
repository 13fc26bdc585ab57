"""Importing HDF5 features from other tools: equal to extracted ones, refused when shapes differ."""
from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from manifests.build import main as build_manifest
from pipeline.extract import main as extract_main
from pipeline.import_hdf5 import main as import_main
from pipeline.store import open_store
from pipeline.store.root import read_root_attrs
from pipeline.verify import main as verify_main
from tests.media import colour_video


@pytest.fixture(scope="module")
def extracted(tmp_path_factory):
    root = tmp_path_factory.mktemp("h5")
    videos = root / "videos"
    videos.mkdir()
    for i in range(3):
        colour_video(videos / f"v{i}.mp4", seconds=3 + i, width=48, height=32)
    manifest = root / "manifest"
    assert build_manifest(["folder", str(videos), "--out", str(manifest), "--no-progress"]) == 0
    store = root / "store.zarr"
    assert extract_main(["--manifest", str(manifest), "--store", str(store), "--encoders", "clip,s3d",
                         "--preset", "tiny", "--s3d-window", "16"]) == 0
    return root, manifest, store


def _export(store_path, h5_path, videos) -> dict:
    store = open_store(str(store_path))
    with h5py.File(h5_path, "w") as h5:
        for vid in videos:
            for enc in store.encoders:
                for name, arr in store.frames(vid, enc).items():
                    h5[f"{vid}/{enc}/{name}"] = arr.astype(np.float32) if arr.dtype == np.float16 else arr
    return read_root_attrs(str(store_path))["encoders"]


def test_import_then_extract_the_rest_equals_a_plain_extraction(extracted, tmp_path):
    _, manifest, reference = extracted
    specs = _export(reference, tmp_path / "f.h5", ["v0", "v2"])
    (tmp_path / "spec.json").write_text(json.dumps(specs))
    target = tmp_path / "imported.zarr"
    assert import_main(["--h5", str(tmp_path / "f.h5"), "--store", str(target), "--manifest", str(manifest),
                        "--spec", str(tmp_path / "spec.json")]) == 0
    assert open_store(str(target)).video_ids() == ["v0", "v2"]
    assert verify_main(["--store", str(target), "--manifest", str(manifest)]) == 1  # v1 still missing
    assert extract_main(["--manifest", str(manifest), "--store", str(target), "--encoders", "clip,s3d",
                         "--preset", "tiny", "--s3d-window", "16"]) == 0
    assert verify_main(["--store", str(target), "--manifest", str(manifest)]) == 0
    a, b = open_store(str(reference)), open_store(str(target))
    for vid in ("v0", "v1", "v2"):
        for enc in ("clip", "s3d"):
            want, got = a.frames(vid, enc), b.frames(vid, enc)
            for k in want:
                np.testing.assert_array_equal(got[k], want[k], err_msg=f"{vid} {enc} {k}")


def test_wrong_shapes_are_refused_naming_the_dataset_and_nothing_is_stored(extracted, tmp_path, capsys):
    _, manifest, reference = extracted
    specs = _export(reference, tmp_path / "f.h5", ["v1"])
    with h5py.File(tmp_path / "f.h5", "a") as h5:
        del h5["v1/clip/grid"]
        h5["v1/clip/grid"] = np.zeros((4, 6, 6, 64), np.float32)
    (tmp_path / "spec.json").write_text(json.dumps(specs))
    target = tmp_path / "t.zarr"
    assert import_main(["--h5", str(tmp_path / "f.h5"), "--store", str(target), "--manifest", str(manifest),
                        "--spec", str(tmp_path / "spec.json")]) == 2
    assert "/v1/clip/grid has rows of shape (6, 6, 64), the store's clip spec needs (7, 7, 64)" in capsys.readouterr().err
    assert open_store(str(target)).video_ids() == []
    assert import_main(["--h5", str(tmp_path / "f.h5"), "--store", str(tmp_path / "new.zarr"),
                        "--manifest", str(manifest)]) == 2
    assert "pass --spec" in capsys.readouterr().err
