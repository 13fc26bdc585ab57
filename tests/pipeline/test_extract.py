"""Extraction end to end on generated videos with the tiny encoders: faults, resumption, equality."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from manifests.build import main as build_manifest
from manifests.ffmpeg import probe
from pipeline.decode import Stream, decode_all
from pipeline.encoders import build_encoders
from pipeline.extract import main as extract_main
from pipeline.store import layout, open_store
from pipeline.verify import main as verify_main
from tests.media import audio_only, colour_video
from tests.pipeline.helpers import ARGS, assert_same_features, kill_midway, narrated_world, write_csv

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def faulty_world(tmp_path_factory):
    """Videos with every kind of trouble, narrations for each, and a manifest of whole videos at 1 fps."""
    root = tmp_path_factory.mktemp("world")
    vids, caps = root / "videos", root / "captions"
    vids.mkdir(), caps.mkdir()
    colour_video(vids / "good.mp4", seconds=4, width=64, height=48, audio=True)
    colour_video(vids / "portrait.mp4", seconds=3, width=48, height=80)
    colour_video(vids / "tiny.mp4", seconds=2, width=16, height=16)
    colour_video(vids / "blink.mp4", seconds=0.2, fps=25, width=32, height=32)  # shorter than one 1-fps frame period
    whole = colour_video(vids / "whole.mp4", seconds=3, width=64, height=48).read_bytes()
    (vids / "truncated.mp4").write_bytes(whole[: len(whole) // 2])
    (vids / "zero.mp4").write_bytes(b"")
    (vids / "notavideo.mp4").write_text("this is a text file, not a video\n")
    audio_only(vids / "audioonly.mp4")
    for vid in ("good", "portrait", "tiny", "blink", "truncated", "zero", "notavideo", "audioonly", "ghost"):
        write_csv(caps / f"{vid}.csv", [(0.5, 1.5, f"{vid} first step"), (1.0, 2.5, "crack the eggs")])
    (vids / "whole.mp4").unlink()
    manifest = root / "manifest"
    assert build_manifest(["howto100m", str(caps), "--video-dir", str(vids), "--segments", "whole",
                           "--out", str(manifest), "--no-progress"]) == 0
    return root, manifest


def _extract(manifest, store, *extra) -> int:
    return extract_main(["--manifest", str(manifest), "--store", str(store), "--encoders", "clip,s3d",
                         "--preset", "tiny", "--s3d-window", "16", *extra])


def test_every_entry_ends_as_features_or_a_failure_record(faulty_world, tmp_path, capsys):
    _, manifest = faulty_world
    store_path = tmp_path / "store.zarr"
    assert _extract(manifest, store_path) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    store = open_store(str(store_path))
    assert set(store.video_ids()) == {"good", "portrait", "tiny", "blink"}
    reasons = {f.video_id: (f.stage, f.reason) for f in store.failures()}
    assert set(reasons) == {"truncated", "zero", "notavideo", "audioonly", "ghost"}
    assert "0 bytes" in reasons["zero"][1] and "no video stream" in reasons["audioonly"][1]
    assert "does not exist" in reasons["ghost"][1] and all(stage == "probe" for stage, _ in reasons.values())
    assert str(manifest.parent / "videos" / "notavideo.mp4") in reasons["notavideo"][1]
    assert summary["failed_segments"] == 5 and summary["segments"] == 9
    blink = store.frames("blink", "clip")
    assert len(blink["times"]) == 1 and store.frames("blink", "s3d")["valid"].tolist() == [4]  # 0.2 s at 16 fps
    assert store.frames("portrait", "clip")["grid"].shape[0] == 3
    caps = store.captions("good", "s3d")
    assert list(caps["text"]) == ["good first step", "crack the eggs"] and caps["words"].shape[1] == 20
    assert verify_main(["--store", str(store_path), "--manifest", str(manifest)]) == 0


def test_stored_features_equal_the_encoders_on_the_decoded_frames(faulty_world, tmp_path):
    root, manifest = faulty_world
    store_path = tmp_path / "store.zarr"
    assert _extract(manifest, store_path) == 0
    enc = build_encoders(["clip", "s3d"], "tiny", s3d_window=16)
    frames, _ = decode_all(probe(root / "videos" / "good.mp4"), [Stream("c", 1.0), Stream("s", 16.0)])
    want = enc["clip"].encode_frames(frames["c"])
    got = open_store(str(store_path)).frames("good", "clip")
    np.testing.assert_array_equal(got["times"], [0, 1, 2, 3])
    np.testing.assert_array_equal(got["grid"], want["grid"].astype(np.float16))
    windows = frames["s"].reshape(4, 16, 224, 224, 3)
    got = open_store(str(store_path)).frames("good", "s3d")
    np.testing.assert_array_equal(got["times"], [0, 1, 2, 3])
    np.testing.assert_allclose(got["global"].astype(np.float32), enc["s3d"].encode_windows(windows)["global"],
                               rtol=2e-3, atol=2e-3)


def test_rerunning_a_complete_store_does_no_work(faulty_world, tmp_path, capsys):
    _, manifest = faulty_world
    store_path = tmp_path / "store.zarr"
    assert _extract(manifest, store_path) == 0
    shards = sorted(p.name for p in (store_path / layout.SHARDS_DIR).iterdir())
    mtimes = {p: p.stat().st_mtime_ns for p in store_path.rglob("*") if p.is_file() and "index" not in p.parts}
    capsys.readouterr()
    assert _extract(manifest, store_path) == 0
    out = capsys.readouterr().out
    assert "nothing to do: all 9 manifest segments are already in the store" in out
    assert sorted(p.name for p in (store_path / layout.SHARDS_DIR).iterdir()) == shards
    assert all(p.stat().st_mtime_ns == t for p, t in mtimes.items() if p.name != layout.LOCK)


def test_other_encoder_settings_are_refused_and_the_store_is_untouched(faulty_world, tmp_path, capsys):
    _, manifest = faulty_world
    store_path = tmp_path / "store.zarr"
    assert _extract(manifest, store_path) == 0
    before = sorted(str(p) for p in store_path.rglob("*"))
    assert _extract(manifest, store_path, "--clip-normalize", "none") == 2
    err = capsys.readouterr().err
    assert "clip.preprocessing.normalize: store has 'clip', wanted 'none'" in err
    assert sorted(str(p) for p in store_path.rglob("*")) == before


@pytest.mark.slow
def test_sigkill_midway_then_rerun_equals_an_uninterrupted_run(tmp_path):
    manifest = narrated_world(tmp_path)
    args = ["--manifest", str(manifest), *ARGS, "--videos-per-shard", "1"]
    reference = tmp_path / "reference.zarr"
    assert extract_main([*args, "--store", str(reference)]) == 0
    killed = tmp_path / "killed.zarr"
    kill_midway([*args, "--store", str(killed)], lambda: len(list(killed.glob(f"{layout.JOURNAL_DIR}/*"))), 3)
    assert verify_main(["--store", str(killed), "--manifest", str(manifest)]) == 1  # really interrupted
    assert extract_main([*args, "--store", str(killed)]) == 2  # the dead run's lock is reported, not taken over
    assert extract_main([*args, "--store", str(killed), "--force-unlock"]) == 0
    assert verify_main(["--store", str(killed), "--manifest", str(manifest)]) == 0
    assert_same_features(reference, killed)


@pytest.mark.slow
@pytest.mark.ray
def test_ray_backend_writes_the_same_store_as_sequential(faulty_world, tmp_path):
    pytest.importorskip("ray")
    _, manifest = faulty_world
    seq, par = tmp_path / "seq.zarr", tmp_path / "ray.zarr"
    assert _extract(manifest, seq) == 0
    assert _extract(manifest, par, "--backend", "ray", "--workers", "2") == 0
    assert verify_main(["--store", str(par), "--manifest", str(manifest)]) == 0
    assert_same_features(seq, par)
    assert sorted((f.video_id, f.stage) for f in open_store(str(par)).failures()) == \
        sorted((f.video_id, f.stage) for f in open_store(str(seq)).failures())


def test_int8_grids_come_back_within_a_cosine_of_the_float16_ones(faulty_world, tmp_path, capsys):
    _, manifest = faulty_world
    f16, i8 = tmp_path / "f16.zarr", tmp_path / "i8.zarr"
    assert _extract(manifest, f16) == 0 and _extract(manifest, i8, "--grid-dtype", "int8") == 0
    a, b = open_store(str(f16)), open_store(str(i8))
    assert b.encoders["clip"]["grid_dtype"] == "int8" and "grid_dtype" not in a.encoders["clip"]
    for vid in a.video_ids():
        for enc in ("clip", "s3d"):
            x, y = (s.frames(vid, enc)["grid"].astype(np.float32) for s in (a, b))
            zero = ~x.any(-1)  # an all-zero token (a blank frame's features) must come back exactly zero
            assert not y[zero].any(), (vid, enc)
            if (~zero).any():
                x, y = x[~zero], y[~zero]
                cosine = (x * y).sum(-1) / (np.linalg.norm(x, axis=-1) * np.linalg.norm(y, axis=-1))
                assert cosine.mean() >= 0.999, (vid, enc)
    capsys.readouterr()
    assert _extract(manifest, i8) == 2  # a float16 run into an int8 store: refused like any spec mismatch
    assert "clip.grid_dtype: store has 'int8', this run has none" in capsys.readouterr().err
