"""Deleted, truncated and flipped chunks, and a removed encoder group: never served as zeros or wrong numbers;
verify finds them (files and sizes by default, checksums with --deep); extract --repair re-extracts exactly
the damaged shards' videos, giving the reference store back."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pipeline.extract import main as extract_main
from pipeline.store import StoreCorruptError, layout, open_store
from pipeline.verify import main as verify_main, videos_of_shards
from tests.faults.conftest import extract_args
from tests.pipeline.helpers import assert_same_features

pytestmark = pytest.mark.slow


def _delete(path: Path) -> None:
    path.unlink()


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    for i in range(len(data) // 3, len(data) // 3 + 8):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


FAULTS = {"deleted": _delete, "truncated": _truncate, "flipped": _flip}


def _target(store: Path, array: str) -> tuple[str, Path, str]:
    """(shard, the array's first chunk file, a video that shard serves)."""
    shard = sorted(p.name for p in (store / layout.SHARDS_DIR).iterdir())[0]
    chunk = next(p for p in sorted((store / layout.SHARDS_DIR / shard / array / "c").rglob("*")) if p.is_file())
    video = sorted(videos_of_shards(open_store(str(store)).index, {shard}))[0]
    return shard, chunk, video


def _read(store: Path, array: str, video: str) -> None:
    s = open_store(str(store))
    group = array.split("/")[0]
    if group.endswith("_text"):
        s.captions(video, group.removesuffix("_text"))
    else:
        s.frames(video, group)


@pytest.mark.parametrize("fault", sorted(FAULTS))
@pytest.mark.parametrize("array", ["clip/grid", "clip/times", "clip_text/words", "s3d/global"])
def test_a_damaged_chunk_is_refused_found_and_repaired(reference, damaged, fault, array, capsys):
    manifest, store = damaged
    shard, chunk, video = _target(store, array)
    FAULTS[fault](chunk)
    with pytest.raises(StoreCorruptError, match=r"chunk .*(missing|damaged).*--repair"):
        _read(store, array, video)
    deep = ["--deep"] if fault == "flipped" else []  # a flipped chunk keeps its size: only checksums see it
    assert verify_main(["--store", str(store), "--manifest", str(manifest), *deep]) == 1
    assert shard in capsys.readouterr().out
    assert extract_main(extract_args(manifest, store, "--repair", *deep)) == 0
    assert verify_main(["--store", str(store), "--manifest", str(manifest), "--deep"]) == 0
    assert not (store / layout.SHARDS_DIR / shard).exists()  # the damaged shard, replaced, is gone
    assert_same_features(reference[1], store)


def test_a_removed_encoder_group_is_refused_and_repaired(reference, damaged):
    manifest, store = damaged
    shard, _, video = _target(store, "s3d/grid")
    shutil.rmtree(store / layout.SHARDS_DIR / shard / "s3d")
    with pytest.raises(StoreCorruptError, match="missing"):
        open_store(str(store)).frames(video, "s3d")
    assert open_store(str(store)).frames(video, "clip")["grid"].shape[0] > 0  # what is intact is still served
    assert verify_main(["--store", str(store), "--manifest", str(manifest)]) == 1
    assert extract_main(extract_args(manifest, store, "--repair")) == 0
    assert_same_features(reference[1], store)


def test_an_intact_store_needs_no_repair(reference, damaged, capsys):
    manifest, store = damaged
    assert extract_main(extract_args(manifest, store, "--repair", "--deep")) == 0
    assert "nothing to do" in capsys.readouterr().out
