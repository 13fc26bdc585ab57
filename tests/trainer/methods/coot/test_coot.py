"""The coot head and its losses: output shapes, a gradient for every trainable parameter, a padded batch equal
to each sequence computed alone, Attention-FA and positions against the formulas, every loss against a naive
loop and hand cases, the video dataset items."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from pipeline.store import open_store
from tests.trainer.methods.naive_coot_wsra import (naive_attention_fa, naive_coot_side, naive_cycle, naive_hinge,
                                           naive_positions)
from pipeline.config import ConfigError
from trainer.methods.coot.losses import cluster, cycle_consistency, hinge_contrastive, sample_starts
from trainer.methods.coot.step import CootModel
from trainer.data import DataError, build_index
from trainer.narrations import narration_table
from trainer.methods import load_train_config
from trainer.methods.coot.blocks import compact, positions
from trainer.methods.coot.config import CootHeadConfig
from trainer.methods.coot.dataset import CootDataset, span_rows, uniform_centres
from trainer.methods.coot.head import CootHead

DIMS = {"global": 12, "grid": 12, "sentence": 10, "words": 10}


def coot_head(**coot) -> torch.nn.Module:
    torch.manual_seed(0)
    return CootHead(DIMS, CootHeadConfig(dim=32, heads=2, dropout=0.0, init_std=0.3, **coot)).double().eval()


def video_batch(seed: int = 0):
    """Two videos of 3 and 2 clips (clips of 4, 2, 3 and 1, 4 frames; the second video's first clip starts
    with a padded slot), whole videos of 6 and 3 frames, sentences of 5, 2, 1 and 3, 4 words."""
    g = torch.Generator().manual_seed(seed)
    frames = torch.randn(2, 3, 5, DIMS["global"], generator=g, dtype=torch.float64)
    frame_mask = torch.zeros(2, 3, 5, dtype=torch.bool)
    for b, c, n in ((0, 0, 4), (0, 1, 2), (0, 2, 3), (1, 1, 4)):
        frame_mask[b, c, :n] = True
    frame_mask[1, 0, 1] = True                                   # a clip whose first slot is padding
    clip_mask = torch.tensor([[True, True, True], [True, True, False]])
    video = torch.randn(2, 6, DIMS["global"], generator=g, dtype=torch.float64)
    video_mask = torch.arange(6)[None] < torch.tensor([[6], [3]])
    words = torch.randn(2, 3, 5, DIMS["words"], generator=g, dtype=torch.float64)
    word_mask = torch.arange(5)[None, None] < torch.tensor([[5, 2, 1], [3, 4, 0]])[..., None]
    return frames, frame_mask, clip_mask, video, video_mask, words, word_mask


@pytest.mark.parametrize("coot", [{}, {"pool": "avg"}, {"pool": "max", "context": False}, {"layers": 2}],
                         ids=["af+cot", "avg", "max-no-context", "two-layers"])
def test_padded_batch_equals_each_sequence_alone(coot):
    head = coot_head(**coot)
    frames, fm, cm, video, vm, words, wm = video_batch()
    v = head.encode_video(frames, fm, cm, video, vm)
    t = head.encode_text(words, wm, cm)
    d = 32
    assert v.items.shape == t.items.shape == (2, 3, d) and v.context.shape == t.context.shape == (2, d)
    assert v.whole.shape == t.whole.shape == (2, head.whole_dim) and head.whole_dim == (2 * d if coot.get(
        "context", True) else d)
    for b in range(2):
        n = int(cm[b].sum())
        ref = naive_coot_side(head, "video", [frames[b, c][fm[b, c]] for c in range(n)], video[b][vm[b]])
        for got, want in zip((v.items[b, :n], v.context[b], v.whole[b]), ref):
            torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-9)
        paragraph = torch.cat([words[b, c][wm[b, c]] for c in range(n)])
        ref = naive_coot_side(head, "text", [words[b, c][wm[b, c]] for c in range(n)], paragraph)
        for got, want in zip((t.items[b, :n], t.context[b], t.whole[b]), ref):
            torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-9)
    assert not v.items[1, 2].any()                                           # the padded clip stays zero


def test_attention_fa_and_positions_follow_the_formulas():
    head = coot_head()
    af = head.video_encoder.af
    x = torch.randn(7, 32, dtype=torch.float64)
    torch.testing.assert_close(af(x[None], torch.ones(1, 7, dtype=torch.bool))[0], naive_attention_fa(af, x),
                               rtol=1e-9, atol=1e-9)
    weights = af.weights(x[None], torch.arange(7)[None] < 4)[0]
    assert torch.allclose(weights.sum(0), torch.ones(32, dtype=torch.float64)) and not weights[4:].any()
    torch.testing.assert_close(positions(9, 6, torch.device("cpu"), torch.float64), naive_positions(9, 6))
    torch.testing.assert_close(positions(4, 5, torch.device("cpu"), torch.float64), naive_positions(4, 5))
    x, m = compact(torch.arange(5.0)[None, :, None], torch.tensor([[False, True, False, True, True]]))
    assert x[0, :3, 0].tolist() == [1.0, 3.0, 4.0] and m.tolist() == [[True, True, True, False, False]]


def test_every_trainable_parameter_gets_a_gradient():
    head = coot_head().float().train()
    batch = [t.float() if t.is_floating_point() else t for t in video_batch()]
    frames, fm, cm, video, vm, words, wm = batch
    v, t = head.encode_video(frames, fm, cm, video, vm), head.encode_text(words, wm, cm)
    loss = (v.items * t.items).sum() + (v.context * t.context).sum() + (v.whole * t.whole).sum()
    loss.backward()
    missing = [n for n, p in head.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.any())]
    assert not missing, f"no gradient for {missing}"


def test_contrastive_and_cluster_losses_match_the_formula_and_hand_cases():
    g = torch.Generator().manual_seed(3)
    x, y = torch.randn(5, 8, generator=g, dtype=torch.float64), torch.randn(5, 8, generator=g, dtype=torch.float64)
    torch.testing.assert_close(hinge_contrastive(x, y, 0.2), naive_hinge(x, y, 0.2), rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(cluster(x, y, 0.3), (naive_hinge(x, x, 0.3) + naive_hinge(y, y, 0.3)) / 2)
    basis = torch.eye(4, dtype=torch.float64)
    assert hinge_contrastive(basis, 3 * basis, 0.2) == 0                      # positives 1, negatives 0 < 1 - m
    same = torch.ones(4, 3, dtype=torch.float64)                              # every cosine 1: each negative costs m
    torch.testing.assert_close(hinge_contrastive(same, same, 0.2).item(), 2 * 0.2 * 4 * 3 / 16)


def test_cycle_consistency_matches_the_loops_and_hand_cases():
    g = torch.Generator().manual_seed(1)
    clips, sentences = torch.randn(3, 4, 6, generator=g, dtype=torch.float64), torch.randn(3, 4, 6, generator=g,
                                                                                          dtype=torch.float64)
    mask = torch.arange(4)[None] < torch.tensor([[4], [2], [1]])
    for how in ("sum", "mean"):
        want = naive_cycle([clips[b][mask[b]] for b in range(3)], [sentences[b][mask[b]] for b in range(3)], how)
        torch.testing.assert_close(cycle_consistency(clips, sentences, mask, how), want, rtol=1e-9, atol=1e-9)
    apart = 10 * torch.eye(4, dtype=torch.float64)[None]                      # identical, well separated sequences
    assert cycle_consistency(apart, apart.clone(), torch.ones(1, 4, dtype=torch.bool)).item() < 1e-12
    single = torch.randn(1, 1, 6, generator=g, dtype=torch.float64)
    assert cycle_consistency(single, 5 * single, torch.ones(1, 1, dtype=torch.bool)).item() == 0
    a, b = 10 * torch.eye(3, dtype=torch.float64)[:2], 10 * torch.eye(3, dtype=torch.float64)[:2]
    sentences = torch.stack([a[0], a[0]])[None]                               # both sentences = clip 0
    # sentence -> clip 0 -> sentences {0, 1} equally: mu = 0.5, errors 0.25 each; clip 1 -> a sentence -> clip 0:
    # error 1, clip 0: error 0; mean per direction, directions summed: 0.25 + 0.5
    got = cycle_consistency(b[None], sentences, torch.ones(1, 2, dtype=torch.bool)).item()
    assert abs(got - 0.75) < 1e-12


def test_cycle_samples_one_start_per_sequence():
    mask = torch.arange(5)[None] < torch.tensor([[5], [3], [1]])
    picked = sample_starts(mask, 1, torch.Generator().manual_seed(0))
    assert picked.sum(1).tolist() == [1, 1, 1] and not (picked & ~mask).any()
    assert torch.equal(sample_starts(mask, 0), mask) and torch.equal(sample_starts(mask, 9), mask)


def test_model_terms_switch_and_weigh():
    cfg = load_train_config("coot-tiny", ["coot.loss.cluster_video_weight=0", "coot.loss.cycle_weight=2",
                                          "coot.loss.cycle_samples=0"])
    head = CootHead(DIMS, CootHeadConfig(dim=32, heads=2, dropout=0.0)).double()
    frames, fm, cm, video, vm, words, wm = video_batch()
    batch = {"clip_frames": frames, "clip_frame_mask": fm, "clip_mask": cm, "video_frames": video,
             "video_mask": vm, "words": words, "word_mask": wm}
    terms = CootModel(head, cfg)(batch)
    assert set(terms) == {"loss", "clip", "video", "global", "cluster_clip", "cycle"}
    v, t = head.encode_video(frames, fm, cm, video, vm), head.encode_text(words, wm, cm)
    torch.testing.assert_close(terms["clip"], naive_hinge(v.items[cm], t.items[cm], 0.2))
    torch.testing.assert_close(terms["video"], naive_hinge(v.whole, t.whole, 0.2))
    torch.testing.assert_close(terms["cycle"], naive_cycle([v.items[b][cm[b]] for b in range(2)],
                                                           [t.items[b][cm[b]] for b in range(2)]).mean())
    want = terms["clip"] + terms["video"] + terms["global"] + terms["cluster_clip"] + 2 * terms["cycle"]
    torch.testing.assert_close(terms["loss"], want)
    with pytest.raises(ConfigError, match="per_video"):
        load_train_config("coot-tiny", ["data.sampling=per_narration"])


def test_frame_picking_helpers():
    assert uniform_centres(3, 5).tolist() == [0, 1, 2] and uniform_centres(10, 4).tolist() == [1, 3, 6, 8]
    times = np.arange(10) / 2.0                                               # 2 fps
    assert span_rows(times, 1.0, 3.0, 2.0, 8).tolist() == [2, 3, 4, 5]
    assert span_rows(times, 1.0, 3.0, 2.0, 2).tolist() == [3, 5]
    assert span_rows(times, 1.1, 1.3, 2.0, 4).tolist() == [2]                 # shorter than a period: nearest
    assert span_rows(times, 20.0, 21.0, 2.0, 4).tolist() == []


def test_video_items_from_the_store(synthetic_store):
    root = synthetic_store[0]
    cfg = load_train_config("coot-tiny", ["coot.data.max_clips=3", "coot.data.video_frames=50"])
    store = open_store(root)
    index = build_index(store, cfg.data)
    ds = CootDataset(root, index, cfg.data, cfg.coot.data)
    item = ds[int(index.first[0]) + 1]
    assert item["clip_mask"].tolist() == [True, True, True]                  # 4 narrations, a run of 3
    assert item["video_mask"].sum() == 50 and item["clip_frame_mask"].any(-1).all()
    lo = narration_table(store, index, cfg.data)["lo"][index.first[0]:index.first[1]]
    assert np.all(np.diff(np.sort(lo)[:3]) > 0)
    got = store.frames(index.videos[0], "clip", fields=("global",))
    frame = item["clip_frames"][0][item["clip_frame_mask"][0]][0]
    assert any(np.array_equal(frame, row) for row in got["global"])
    caption = dataclasses.replace(cfg.coot.data, clip="caption")
    item = CootDataset(root, index, cfg.data, caption)[int(index.first[0])]
    assert 1 <= item["clip_frame_mask"][0].sum() <= 10                       # a 2-s caption span at 5 fps
    with pytest.raises(DataError, match="per_video"):
        CootDataset(root, index, dataclasses.replace(cfg.data, sampling="per_narration"), cfg.coot.data)
