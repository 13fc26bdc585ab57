"""Samples from the store: candidate placement, the narration index, epoch sampling, padding, workers."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from pipeline.store import ShardWriter, consolidate, init_store, open_store
from trainer.data import (DataError, EpochSampler, NarrationDataset, build_index, collate, make_loader,
                          place_rows)
from trainer.narrations import narration_table
from trainer.synthetic import SyntheticSpec, encoder_specs, write_synthetic_store
from trainer.train_config import DataConfig

CLIP = DataConfig(window_s=16.0, fps=5.0, candidates=80, batch_size=4, workers=0)


def test_place_rows_hand_cases():
    times = np.arange(10) / 5.0                                         # 0.0 .. 1.8 at 5 fps
    rows, ok = place_rows(times, -0.4, 5.0, 5.0, 6)                     # slots -0.4 .. 0.6
    assert rows.tolist() == [-1, -1, 0, 1, 2, 3] and ok.tolist() == [False, False, True, True, True, True]
    rows, ok = place_rows(times, 0.0, 1.0, 5.0, 3)                      # 1 fps from a 5 fps store
    assert rows.tolist() == [0, 5, -1] and ok.tolist() == [True, True, False]
    gap = np.array([0.0, 0.2, 1.0, 1.2])                                # rows missing between 0.2 and 1.0
    assert place_rows(gap, 0.0, 5.0, 5.0, 7)[0].tolist() == [0, 1, -1, -1, -1, 2, 3]
    assert place_rows(np.zeros(0), 0.0, 5.0, 5.0, 2)[0].tolist() == [-1, -1]


def test_index_windows(synthetic_store):
    root, truth, spec = synthetic_store
    store = open_store(root)
    index = build_index(store, CLIP)
    assert len(index) == spec.videos * spec.events and index.videos == store.video_ids()
    table = narration_table(store, index, CLIP)
    caps = {cid: (s, e) for v in store.video_ids() for cid, s, e in
            zip(*(store.captions(v)[k] for k in ("caption_id", "start", "end")))}
    assert len(table["caption_id"]) == len(index) and index.counts.tolist() == [spec.events] * spec.videos
    for j in range(len(index)):
        s, e = caps[table["caption_id"][j]]
        assert table["lo"][j] == pytest.approx((s + e) / 2 - 8.0) and table["center"][j] == pytest.approx(40.0)
    start_cfg = dataclasses.replace(CLIP, anchor="start", fps=1.0, candidates=16)
    starts = narration_table(store, build_index(store, start_cfg), start_cfg)
    assert starts["center"][0] == pytest.approx(1.0) and starts["rate"][0] == 1.0 and starts["stored_rate"][0] == 5.0
    s3d_cfg = DataConfig(encoder="s3d", fps=None, window_s=16.0, candidates=8)
    s3d = narration_table(store, build_index(store, s3d_cfg), s3d_cfg)
    assert s3d["rate"][0] == pytest.approx(spec.s3d_fps / spec.s3d_window)
    with pytest.raises(DataError, match="above the stored rate"):
        build_index(store, dataclasses.replace(CLIP, fps=10.0, candidates=160))
    with pytest.raises(DataError, match="cover 8 s, not data.window_s=16 s"):
        build_index(store, dataclasses.replace(CLIP, candidates=40))


def test_sampler_epochs_are_deterministic_and_ranks_split_the_global_batch(synthetic_store):
    index = build_index(open_store(synthetic_store[0]), CLIP)
    per_video = EpochSampler(index, dataclasses.replace(CLIP, batch_size=2), seed=7)
    batches = per_video.epoch_batches(0)
    assert batches.shape == (3, 2)
    assert sorted(index.video_of(batches.ravel()).tolist()) == list(range(6))   # one narration per video
    assert np.array_equal(batches, EpochSampler(index, dataclasses.replace(CLIP, batch_size=2), 7).epoch_batches(0))
    assert not np.array_equal(batches, per_video.epoch_batches(1))
    every = EpochSampler(index, dataclasses.replace(CLIP, sampling="per_narration"), seed=7)
    assert sorted(every.epoch_batches(3).ravel().tolist()) == list(range(24))
    ranks = [EpochSampler(index, dataclasses.replace(CLIP, sampling="per_narration"), 7, rank=r, world=2)
             for r in range(2)]
    for r in ranks:
        r.set_epoch(3, start_batch=2)
    joined = [a + b for a, b in zip(*[list(r) for r in ranks])]
    assert joined == every.epoch_batches(3)[2:].tolist() and len(ranks[0]) == 4
    with pytest.raises(DataError, match="fewer than one batch of 64"):
        EpochSampler(index, dataclasses.replace(CLIP, batch_size=64), seed=0)


def test_samples_hold_the_stored_features_in_their_slots(synthetic_store):
    root, _, _ = synthetic_store
    store = open_store(root)
    index = build_index(store, CLIP)
    ds = NarrationDataset(root, index, CLIP)
    table = narration_table(store, index, CLIP)
    first = int(np.argmin(table["lo"]))                                 # a window that starts before 0 s
    sample = ds[first]
    vid = index.videos[index.video_of(first)]
    frames = store.frames(vid, "clip")
    slots = np.round((frames["times"] - table["lo"][first]) * 5.0).astype(int)
    inside = (slots >= 0) & (slots < 80)
    assert sample["frame_mask"].sum() == inside.sum() and not sample["frame_mask"][0]
    np.testing.assert_array_equal(sample["grid"][slots[inside]], frames["grid"][inside])
    np.testing.assert_array_equal(sample["global"][slots[inside]], frames["global"][inside])
    assert not sample["grid"][~sample["frame_mask"]].any()
    caps = store.captions(vid, "clip")
    row = list(caps["caption_id"]).index(table["caption_id"][first])
    np.testing.assert_array_equal(sample["words"], caps["words"][row])
    assert sample["word_mask"].tolist() == caps["mask"][row].tolist()
    s3d_cfg = DataConfig(encoder="s3d", fps=None, window_s=16.0, candidates=8)
    s3d = NarrationDataset(root, build_index(store, s3d_cfg), s3d_cfg)[5]
    assert s3d["grid"].shape == (8, 2, 7, 7, 16) and s3d["global"].shape == (8, 16)


def test_worker_processes_give_the_same_batches(synthetic_store):
    root, _, _ = synthetic_store
    index = build_index(open_store(root), CLIP)
    ds = NarrationDataset(root, index, CLIP)
    got = []
    for workers in (0, 2):
        sampler = EpochSampler(index, dataclasses.replace(CLIP, sampling="per_narration"), seed=3)
        sampler.set_epoch(1)
        got.append(list(make_loader(ds, sampler, workers, prefetch=2)))
    assert len(got[0]) == 6
    for a, b in zip(*got):
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_narration_without_words_is_replaced_by_the_next_one_with_words(tmp_path):
    spec = SyntheticSpec(dim=4)
    specs = encoder_specs(spec)
    root = str(tmp_path / "s.zarr")
    init_store(root, specs)
    w = ShardWriter(root, "sh-1", specs)
    with w.segment({"segment_id": "v:0", "video_id": "v", "start": 0.0, "end": None, "fps": 5.0}) as seg:
        w.append_frames("clip", times=np.arange(100) / 5, grid=np.ones((100, 7, 7, 4)), **{"global": np.ones((100, 4))})
        seg.info.update(truncated=False, end_actual=20.0)
    rows = [{"caption_id": f"v:{i}", "video_id": "v", "start": 2.0 + 5 * i, "end": 4.0 + 5 * i, "text": "x",
             "kind": "narration"} for i in range(3)]
    mask = np.zeros((3, 20), bool)
    mask[1, :2] = True
    w.add_captions(rows, {"clip": {"sentence": np.zeros((3, 4)), "words": np.arange(3)[:, None, None] *
                                   np.ones((3, 20, 4)), "mask": mask}})
    w.commit()
    consolidate(root)
    index = build_index(open_store(root), CLIP)
    batch = collate(NarrationDataset(root, index, CLIP).__getitems__([0, 1, 2]))
    assert batch["index"].tolist() == [1, 1, 1] and batch["substituted"].tolist() == [True, False, True]
    assert torch.all(batch["words"][:, 0] == 1) and not batch["empty_text"].any()


def test_sample_cache_gives_the_same_batches_and_reads_each_sample_once(synthetic_store, monkeypatch):
    root, _, _ = synthetic_store
    index = build_index(open_store(root), CLIP)
    plain = NarrationDataset(root, index, CLIP)
    cached = NarrationDataset(root, index, dataclasses.replace(CLIP, sample_cache_mb=64))
    batches = [[0, 3, 5], [5, 1, 0], [3, 5, 1]]
    reads = []
    original = NarrationDataset._fill
    monkeypatch.setattr(NarrationDataset, "_fill", lambda self, out, b, i: (reads.append((id(self), i)),
                                                                            original(self, out, b, i)))
    for batch in batches:
        want, got = plain.__getitems__(batch), cached.__getitems__(batch)
        assert all(np.array_equal(want[k], got[k]) for k in want)
    assert sorted(i for ds, i in reads if ds == id(cached)) == [0, 1, 3, 5]        # each sample read once
    one = sum(v.nbytes for v in cached.__getitems__([0]).values())
    small = NarrationDataset(root, index, dataclasses.replace(CLIP, sample_cache_mb=1.5 * one / 2**20))
    small.__getitems__([0, 1, 3])
    assert len(small._samples) == 1                                                 # the budget holds
    with pytest.raises(ValueError, match="sample_cache_mb"):
        dataclasses.replace(CLIP, sample_cache_mb=-1)


def test_the_index_spans_several_runs_and_the_journal_with_the_newest_shard_of_a_video(tmp_path):
    """A consolidated store (two of its videos written again with fewer narrations), then a shard in the
    journal replacing a third: the counts come from the newest shard of each video, as the per-video resolution
    sees them, and do not change when everything is merged into one run."""
    root = str(tmp_path / "s.zarr")
    spec = SyntheticSpec(videos=4, dim=4, shards=1)
    write_synthetic_store(root, spec)
    write_synthetic_store(root, dataclasses.replace(spec, videos=2, events=2))      # vid00000, vid00001 again
    specs = encoder_specs(spec)
    w = ShardWriter(root, "sh-newest", specs)
    with w.segment({"segment_id": "vid00002:0", "video_id": "vid00002", "start": 0.0, "end": None, "fps": 5.0}) as seg:
        w.append_frames("clip", times=np.arange(200) / 5, grid=np.ones((200, 7, 7, 4)), **{"global": np.ones((200, 4))})
        seg.info.update(truncated=False, end_actual=40.0)
    w.add_captions([{"caption_id": "vid00002:x", "video_id": "vid00002", "start": 10.0, "end": 12.0, "text": "x",
                     "kind": "narration"}], {"clip": {"sentence": np.ones((1, 4)), "words": np.ones((1, 20, 4)),
                                                      "mask": np.ones((1, 20), bool)}})
    w.commit()
    store = open_store(root)
    assert len(store.index.runs) == 2 and store.index.journal == ["sh-newest"]     # a run and the journal
    index = build_index(store, CLIP)
    assert list(index.videos) == ["vid00000", "vid00001", "vid00002", "vid00003"]
    assert index.counts.tolist() == [2, 2, 1, spec.events]
    table = narration_table(store, index, CLIP)
    assert table["caption_id"].tolist().count("vid00002:x") == 1 and len(table["caption_id"]) == len(index)
    consolidate(root)
    again = build_index(open_store(root), CLIP)
    assert list(again.videos) == list(index.videos) and again.counts.tolist() == index.counts.tolist()
