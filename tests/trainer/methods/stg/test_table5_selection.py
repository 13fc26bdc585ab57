"""The paper's Table 5 rows as defined (Sec. 5.5): "None" trains on every frame of the narration's span, local
video similarity is a sum over a frame's tokens, the global-text rows differ from top-k (the batch's sentences
as the plan's columns); random selection (appendix 9.1) and the mean-of-grid global feature (Table 13)."""
from __future__ import annotations

import torch

from trainer.methods import build_head, load_train_config
from trainer.methods.stg.config import SelectionConfig
from trainer.methods.stg.selection import FrameSelector, similarity, span_frames
from trainer.methods.stg.step import GroundingModel


def test_none_keeps_every_frame_of_the_narration_span():
    """Narration 0 spans candidates 3..7 (centre 5, half 2); narration 1 is shorter than a candidate period
    (centre 4.6, half 0.1): its nearest candidate, 5; narration 2's span runs into padding (6.. invalid)."""
    frame_mask = torch.ones(3, 10, dtype=torch.bool)
    frame_mask[2, 6:] = False
    center, half = torch.tensor([5.0, 4.6, 6.0]), torch.tensor([2.0, 0.1, 3.0])
    index, mask = span_frames(center, half, frame_mask)
    kept = [sorted(index[b][mask[b]].tolist()) for b in range(3)]
    assert kept == [[3, 4, 5, 6, 7], [5], [3, 4, 5]]
    assert index.shape == (3, 5)  # T: the most any sample has; the others padded and masked
    batch = {"center": center, "half_span": half, "frame_mask": frame_mask}
    sel = FrameSelector(SelectionConfig(method="none"))(batch)
    torch.testing.assert_close(sel.index, index)
    torch.testing.assert_close(sel.mask, mask)


def test_local_video_similarity_is_a_sum_over_tokens():
    g = torch.Generator().manual_seed(0)
    grid, words = torch.randn(2, 5, 49, 8, generator=g), torch.randn(2, 3, 8, generator=g)
    summed = similarity(grid, words, normalize=True)
    want = torch.einsum("bund,bkd->buk", torch.nn.functional.normalize(grid, dim=-1),
                        torch.nn.functional.normalize(words, dim=-1))
    torch.testing.assert_close(summed, want)
    torch.testing.assert_close(similarity(grid, words, normalize=True, region_reduce="mean"), want / 49)


def sentence_batch():
    """Two samples of 4 frames. Sample 0's frame 0 is close to every sentence (a generic frame), its frame 1 close
    to its own sentence alone; sample 1 likewise with frames 2 and 3."""
    s = torch.eye(3)[:2]                                   # sentences along axes 0 and 1
    generic = torch.tensor([0.62, 0.62, 0.48])             # cos 0.62 with both sentences
    own0, own1 = torch.tensor([0.6, 0.0, 0.8]), torch.tensor([0.0, 0.6, 0.8])  # cos 0.6 with their own only
    far = torch.tensor([0.0, 0.0, 1.0])
    frames = torch.stack([torch.stack([generic, own0, far, far]), torch.stack([far, far, generic, own1])])
    return {"global": frames, "sentence": s, "frame_mask": torch.ones(2, 4, dtype=torch.bool),
            "words": torch.zeros(2, 1, 3), "word_mask": torch.ones(2, 1, dtype=torch.bool)}


def test_global_text_sinkhorn_differs_from_topk():
    """Top-k keeps the generic frame (the highest own-sentence similarity); Sinkhorn over the batch's sentences
    routes the generic frame's mass to both sentences and keeps the frame that matches its own narration."""
    batch = sentence_batch()
    base = dict(keep=1, space="raw", text="sentence", video="frames", epsilon=0.05)
    topk = FrameSelector(SelectionConfig(method="topk", **base))(batch)
    sink = FrameSelector(SelectionConfig(method="sinkhorn", **base))(batch)
    assert topk.index.tolist() == [[0], [2]]
    assert sink.index.tolist() == [[1], [3]]


def test_own_sentence_alone_is_top_k():
    """Why the batch's sentences: with one column the plan is constant and Sinkhorn ranks as top-k."""
    g = torch.Generator().manual_seed(1)
    batch = {"global": torch.randn(4, 12, 6, generator=g), "sentence": torch.randn(4, 6, generator=g),
             "frame_mask": torch.ones(4, 12, dtype=torch.bool)}
    base = dict(keep=3, space="raw", text="sentence", video="frames")
    own = FrameSelector(SelectionConfig(method="sinkhorn", sentence_columns="own", **base))(batch)
    topk = FrameSelector(SelectionConfig(method="topk", **base))(batch)
    batched = FrameSelector(SelectionConfig(method="sinkhorn", **base))(batch)
    torch.testing.assert_close(own.index, topk.index)
    assert not torch.equal(batched.index, topk.index)


def test_random_selection_keeps_valid_frames_and_follows_the_seed():
    frame_mask = torch.ones(3, 20, dtype=torch.bool)
    frame_mask[0, 10:] = False
    sel = FrameSelector(SelectionConfig(method="random", keep=5))
    torch.manual_seed(0)
    a = sel({"frame_mask": frame_mask})
    torch.manual_seed(0)
    b = sel({"frame_mask": frame_mask})
    c = sel({"frame_mask": frame_mask})
    torch.testing.assert_close(a.index, b.index)
    assert not torch.equal(a.index, c.index)
    assert bool(a.mask.all()) and int(a.index[0].max()) < 10
    assert torch.all(a.index[:, 1:] > a.index[:, :-1])


def test_mean_of_grid_global_feature_replaces_the_stored_vector():
    """head.global_feature=grid_mean: the loss does not depend on the stored global vectors, only on the grid."""
    cfg = load_train_config("tiny", ["stg.head.global_feature=grid_mean", "stg.selection.space=projected"])
    g = torch.Generator().manual_seed(2)
    b, u = 8, 16
    batch = {"grid": torch.randn(b, u, 7, 7, 16, generator=g), "global": torch.randn(b, u, 16, generator=g),
             "frame_mask": torch.ones(b, u, dtype=torch.bool), "words": torch.randn(b, 20, 16, generator=g),
             "word_mask": torch.arange(20)[None].expand(b, -1) < 6, "sentence": torch.randn(b, 16, generator=g),
             "center": torch.full((b,), 8.0), "half_span": torch.full((b,), 2.0)}
    torch.manual_seed(0)
    model = GroundingModel(build_head(cfg, dict.fromkeys(("global", "grid", "sentence", "words"), 16)), cfg)
    first = model(batch)["loss"]
    other = model({**batch, "global": torch.randn(b, u, 16, generator=g)})["loss"]
    mean = model({**batch, "global": batch["grid"].reshape(b, u, 49, 16).mean(2)})["loss"]
    torch.testing.assert_close(first, other)
    torch.testing.assert_close(first, mean)
    cls = load_train_config("tiny", ["stg.selection.space=projected"])
    torch.manual_seed(0)
    plain = GroundingModel(build_head(cls, dict.fromkeys(("global", "grid", "sentence", "words"), 16)), cls)
    torch.testing.assert_close(plain({**batch, "global": batch["grid"].reshape(b, u, 49, 16).mean(2)})["loss"], first)
