"""The store index: lookups, an empty store, shards committed after consolidation, merged runs, the newest shard
of a video winning, killed consolidations, and remote (range-read, cached) runs."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest

from pipeline.store import ShardWriter, StoreCorruptError, consolidate, init_store, layout, open_store
from pipeline.store.fs import StoreFS
from pipeline.store.index import read_current

REPO = Path(__file__).resolve().parents[2]
D = 4
SPEC = {"encoder": "clip", "model": "tiny", "weights_sha256": "abc", "dims": dict.fromkeys(
    ("global", "grid", "sentence", "words"), D), "grid": [7, 7], "max_words": 20,
    "preprocessing": {"size": 224, "resize": "center-crop"}}


def write_shard(root: str, videos: dict[str, float], source: dict | None = None) -> str:
    """One shard holding each video with 3 frames whose values are `videos[vid]`, and one caption."""
    name = layout.new_shard_name()
    w = ShardWriter(root, name, {"clip": SPEC})
    for vid, value in videos.items():
        with w.segment({"segment_id": f"{vid}:0", "video_id": vid, "start": 0.0, "end": None, "fps": 1.0}) as rows:
            w.append_frames("clip", grid=np.full((3, 7, 7, D), value), **{"global": np.full((3, D), value)},
                            times=np.arange(3.0))
            rows.info.update(truncated=False, end_actual=3.0)
        w.add_captions([{"caption_id": f"{vid}:c", "video_id": vid, "start": 0.0, "end": 1.0, "text": f"{vid} {value}",
                         "kind": "narration"}],
                       {"clip": {"sentence": np.full((1, D), value), "words": np.zeros((1, 20, D)),
                                 "mask": np.ones((1, 20), bool)}})
        w.set_source(vid, source)
    w.commit()
    return name


def served(root: str) -> dict[str, float]:
    store = open_store(root)
    out = {}
    for vid in store.video_ids():
        f, c = store.frames(vid), store.captions(vid)
        assert len(f["times"]) == 3 and list(c["caption_id"]) == [f"{vid}:c"]
        assert f["grid"].min() == f["grid"].max() == c["sentence"][0, 0]
        out[vid] = float(f["grid"][0, 0, 0, 0])
    return out


@pytest.fixture()
def root(tmp_path):
    path = str(tmp_path / "s.zarr")
    init_store(path, {"clip": SPEC})
    return path


def test_empty_store_opens_with_nothing_in_it(root):
    store = open_store(root)
    assert store.video_ids() == [] and store.failures() == [] and store.index.runs == []
    with pytest.raises(KeyError, match="no features for video 'x'"):
        store.frames("x")
    assert store.captions("x")["words"].shape == (0, 20, D)
    consolidate(root)
    assert open_store(root).video_ids() == [] and read_current(StoreFS(root))["runs"] == []


def test_lookups_find_every_video_and_only_those(root):
    vids = {f"v{i:03d}": float(i) for i in range(0, 60, 3)}
    write_shard(root, dict(list(vids.items())[:10]))
    write_shard(root, dict(list(vids.items())[10:]))
    consolidate(root)
    store = open_store(root)
    run = store.index.runs[0]
    assert [run.ids.find(v) for v in vids] == list(range(len(vids)))
    assert run.ids.find("v001") == run.ids.find("") == run.ids.find("zzz") == -1
    assert run.ids.insertion("v001") == (1, False) and run.ids.insertion("v000") == (0, True)
    assert served(root) == vids
    assert list(store.video_ids()) == sorted(vids) and store.video_ids()[-1] == "v057"


def test_journal_then_runs_then_merges_serve_the_newest_shard_of_each_video(root):
    model: dict[str, float] = {}
    rng = np.random.default_rng(0)
    for step in range(12):
        batch = {f"v{int(i):02d}": float(step * 100 + i) for i in rng.choice(30, size=5, replace=False)}
        write_shard(root, batch)
        model.update(batch)
        assert served(root) == model  # in the journal
        if step % 3 == 2:
            index = consolidate(root, merge_factor=2)
            assert index.journal == [] and served(root) == model
    current = read_current(StoreFS(root))
    assert len(current["runs"]) <= 3  # geometric merging keeps few runs
    names = set(os.listdir(Path(root) / "index"))
    assert {r["name"] for r in current["runs"]} | set(current["retired"]) | {"CURRENT.json"} == names


def test_source_identity_is_kept_per_video(root):
    write_shard(root, {"a": 1.0}, source={"size": 10, "mtime": 5.0, "hash": "ab"})
    assert open_store(root).source("a") == {"size": 10, "mtime": 5.0, "hash": "ab"}
    consolidate(root)
    assert open_store(root).source("a") == {"size": 10, "mtime": 5.0, "hash": "ab"}
    assert open_store(root).source("missing") is None


def test_a_journal_entry_without_its_marker_is_an_error_naming_the_repair(root):
    name = write_shard(root, {"a": 1.0})
    os.remove(Path(root) / layout.marker_path(name))
    with pytest.raises(StoreCorruptError, match="journal lists shard.*pipeline.upgrade"):
        open_store(root)


def test_truncated_index_files_are_refused_not_mapped(root):
    write_shard(root, {"a": 1.0, "b": 2.0})
    consolidate(root)
    run = read_current(StoreFS(root))["runs"][0]["name"]
    path = Path(root) / "index" / run / "captions.text.str.bin"
    path.write_bytes(path.read_bytes()[:-2])
    with pytest.raises(Exception, match="the index wrote .*pipeline.upgrade"):
        open_store(root)


KILLER = """
import os, signal, sys
from pipeline.store import consolidate, columns, fs
point = sys.argv[2]
if point == "run-files":      # while the new run's column files are being written
    real = columns._File.write
    count = [0]
    def write(self, data):
        count[0] += 1
        if count[0] == 20:
            os.kill(os.getpid(), signal.SIGKILL)
        real(self, data)
    columns._File.write = write
else:                          # just before or just after CURRENT.json is replaced
    real = fs.StoreFS.write_bytes
    def write_bytes(self, rel, data, durable=True):
        if rel.endswith("CURRENT.json") and point == "before-current":
            os.kill(os.getpid(), signal.SIGKILL)
        real(self, rel, data, durable)
        if rel.endswith("CURRENT.json") and point == "after-current":
            os.kill(os.getpid(), signal.SIGKILL)
    fs.StoreFS.write_bytes = write_bytes
consolidate(sys.argv[1], merge_factor=8)
"""


@pytest.mark.parametrize("point", ["run-files", "before-current", "after-current"])
def test_a_consolidation_killed_midway_loses_nothing(root, point):
    model = {}
    for k in range(3):
        batch = {f"v{k}{i}": float(10 * k + i) for i in range(4)}
        write_shard(root, batch)
        model.update(batch)
    consolidate(root)
    for k in range(3, 6):  # a journal to fold in, with one video re-extracted
        batch = {f"v{k}{i}": float(10 * k + i) for i in range(4)} | {"v00": 99.0 + k}
        write_shard(root, batch)
        model.update(batch)
    proc = subprocess.run([sys.executable, "-c", KILLER, root, point], cwd=REPO, capture_output=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    assert served(root) == model        # opens correctly in a fresh process, nothing lost
    consolidate(root)                   # the next consolidation cleans up after the killed one
    assert served(root) == model and open_store(root).index.journal == []
    current = read_current(StoreFS(root))
    assert set(os.listdir(Path(root) / "index")) == {r["name"] for r in current["runs"]} | \
        set(current["retired"]) | {"CURRENT.json"}
    assert os.listdir(Path(root) / layout.JOURNAL_DIR) == []


@pytest.mark.parametrize("whole", [0, 64 << 20])
def test_remote_runs_are_read_by_range_or_cached_whole(tmp_path, monkeypatch, whole):
    from pipeline.store import columns

    monkeypatch.setenv("GROUNDCACHE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(columns, "REMOTE_WHOLE", whole)
    root = f"memory://{uuid.uuid4().hex}/store.zarr"
    init_store(root, {"clip": SPEC})
    model = {f"v{i}": float(i) for i in range(8)}
    write_shard(root, model)
    consolidate(root)
    assert served(root) == model
    cached = {p.name for p in (tmp_path / "cache").rglob("*.bin")}
    assert "videos.id.str.bin" in cached                                    # what open needs: always whole
    assert ("captions.text.str.bin" in cached) == bool(whole)               # per-video rows: by range when large
    assert json.loads(StoreFS(root).read_bytes(layout.CURRENT))["runs"][0]["videos"] == 8
