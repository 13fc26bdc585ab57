"""The wsra head and its losses: shapes, a gradient for every trainable parameter, batched (query x video x snippet)
scoring against phi on explicit concatenations, top/last-K sampling and every loss against naive loops and hand
cases, the model's terms, the snippet items of the dataset."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from pipeline.store import open_store
from tests.trainer.methods.naive_coot_wsra import (naive_background, naive_cross_video, naive_phi, naive_top_last_k,
                                           naive_vas)
from pipeline.config import ConfigError
from trainer.data import build_index
from trainer.methods import build_head, load_train_config
from trainer.methods.wsra.config import WsraHeadConfig
from trainer.methods.wsra.dataset import WsraDataset, snippets
from trainer.methods.wsra.head import WsraHead
from trainer.methods.wsra.losses import (background_loss, cross_video_loss, instance_loss, pseudo_positive,
                                 sample_negatives, top_last_k, vas_loss)
from trainer.methods.wsra.step import WsraModel

DIMS = {"global": 12, "grid": 12, "sentence": 10, "words": 10}


def wsra_head(**kw) -> torch.nn.Module:
    torch.manual_seed(0)
    return WsraHead(DIMS, WsraHeadConfig(dim=32, **kw)).double()


def query_batch(b: int = 5, t: int = 7, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    snippets_ = torch.randn(b, t, DIMS["global"], generator=g, dtype=torch.float64)
    mask = torch.arange(t)[None] < torch.tensor([7, 3, 5, 1, 6][:b])[:, None]
    sentence = torch.randn(b, DIMS["sentence"], generator=g, dtype=torch.float64)
    words = torch.randn(b, 4, DIMS["words"], generator=g, dtype=torch.float64)
    return snippets_, mask, sentence, words, torch.ones(b, 4, dtype=torch.bool)


@pytest.mark.parametrize("layers", [0, 1, 2])
def test_batched_scores_equal_phi_on_concatenations(layers):
    head = wsra_head(score_layers=layers)
    x, mask, sentence, _, _ = query_batch()
    v, t = head.snippets(x), head.query(sentence)
    assert v.shape == (5, 7, 32) and t.shape == (5, 32)
    pairs = head.phi_pairs(v, t)
    assert pairs.shape == (5, 5, 7)
    for i in range(5):
        for j in range(5):
            want = torch.stack([naive_phi(head, v[i, s], t[j]) for s in range(7)])
            torch.testing.assert_close(pairs[i, j], want, rtol=1e-12, atol=1e-12)
    alpha = head.attention(v, mask, t)
    for i in range(5):
        n = int(mask[i].sum())
        want = torch.softmax(torch.stack([naive_phi(head, v[i, s], t[i]) for s in range(n)]), 0)
        torch.testing.assert_close(alpha[i, :n], want)
        assert not alpha[i, n:].any()
        fore, back = head.fore_background(v[i:i + 1], mask[i:i + 1], alpha[i:i + 1])
        torch.testing.assert_close(fore[0], (want[:, None] * v[i, :n]).sum(0))
        torch.testing.assert_close(back[0], ((1 - want)[:, None] * v[i, :n]).sum(0) / max(n - 1, 1))


def test_the_literal_single_layer_phi_ranks_snippets_alike_for_every_query():
    head = wsra_head(score_layers=0)
    x, _, sentence, _, _ = query_batch()
    pairs = head.phi_pairs(head.snippets(x), head.query(sentence))
    order = pairs.argsort(-1)
    assert (order == order[:, :1]).all()                                  # why the default has a hidden layer
    pairs = wsra_head().phi_pairs(head.snippets(x), head.query(sentence))
    assert not (pairs.argsort(-1) == pairs.argsort(-1)[:, :1]).all()


def test_every_trainable_parameter_gets_a_gradient():
    cfg = load_train_config("wsra-tiny", ["wsra.loss.top_k=1", "wsra.loss.last_k=0", "wsra.loss.crov_threshold=-1"])
    head = build_head(cfg, DIMS).double()
    x, mask, sentence, words, word_mask = query_batch()
    batch = {"snippets": x, "snippet_mask": mask, "sentence": sentence, "words": words, "word_mask": word_mask,
             "video": torch.arange(5)}
    torch.manual_seed(0)
    terms = WsraModel(head, cfg)(batch)
    assert set(terms) == {"loss", "background", "vas", "instance", "crov"} and terms["crov"] > 0
    terms["loss"].backward()
    missing = [n for n, p in head.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.any())]
    assert not missing, f"no gradient for {missing}"


def test_top_last_k_excludes_the_expected_indices():
    sim = torch.tensor([[1.0, 0.9, 0.1, 0.5, 0.7, 0.3]]).repeat(6, 1)
    video = torch.arange(6)
    hard, pseudo = top_last_k(sim, video[:, None] != video[None, :], top_k=1, last_k=2)
    # row 0 ranks 1 (0.9), 4 (0.7), 3 (0.5), 5 (0.3), 2 (0.1): 1 pseudo-positive, 5 and 2 easy
    assert torch.nonzero(pseudo[0]).flatten().tolist() == [1]
    assert torch.nonzero(hard[0]).flatten().tolist() == [3, 4]
    video = torch.tensor([0, 1, 2, 0, 4, 5])                                # query 3 is from video 0 too
    hard, pseudo = top_last_k(sim, video[:, None] != video[None, :], top_k=1, last_k=2)
    assert torch.nonzero(hard[0]).flatten().tolist() == [4] and torch.nonzero(pseudo[0]).flatten().tolist() == [1]
    hard, pseudo = top_last_k(sim, video[:, None] != video[None, :], top_k=3, last_k=2)
    assert not hard[0].any()                                                # 4 candidates: none left
    g = torch.Generator().manual_seed(2)
    sim, video = torch.randn(9, 9, generator=g), torch.tensor([0, 0, 1, 2, 2, 3, 4, 5, 6])
    for k, last in ((0, 0), (2, 1), (3, 3)):
        got = top_last_k(sim, video[:, None] != video[None, :], k, last)
        for a, b in zip(got, naive_top_last_k(sim, video, k, last)):
            assert torch.equal(a, b)


def test_losses_match_the_loops_and_hand_cases():
    g = torch.Generator().manual_seed(4)
    s_pos, s_neg = torch.rand(6, generator=g, dtype=torch.float64), torch.rand(6, generator=g, dtype=torch.float64)
    torch.testing.assert_close(background_loss(s_pos, s_neg, 0.2, 10.0), naive_background(s_pos, s_neg, 0.2, 10.0))
    same = torch.full((4,), 0.5, dtype=torch.float64)
    torch.testing.assert_close(background_loss(same, same, 0.1, 2.0).item(), float(np.log(1 + 4 * np.exp(0.2))))
    scores = torch.rand(6, 6, generator=g, dtype=torch.float64)
    hard = torch.rand(6, 6, generator=g) > 0.5
    torch.testing.assert_close(vas_loss(scores, hard, 0.3), naive_vas(scores, hard, 0.3))
    assert vas_loss(scores, torch.zeros_like(hard), 0.3) == 0
    fore = torch.randn(5, 8, generator=g, dtype=torch.float64)
    other = torch.randn(5, 6, 8, generator=g, dtype=torch.float64)
    mask = torch.arange(6)[None] < torch.tensor([6, 2, 4, 1, 3])[:, None]
    gate = torch.tensor([True, True, False, True, True])
    torch.testing.assert_close(cross_video_loss(fore, other, mask, gate, 0.2),
                               naive_cross_video(fore, other, mask, gate, 0.2))
    flat = fore[:, None].repeat(1, 6, 1)                                     # u = v_f everywhere: u_f = u_b
    torch.testing.assert_close(cross_video_loss(fore, flat, torch.ones_like(mask), gate, 0.2).item(), 0.2)
    pos, neg = torch.rand(3, 4, generator=g, dtype=torch.float64), torch.rand(3, 4, generator=g, dtype=torch.float64)
    m = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]], dtype=torch.bool)
    has = torch.tensor([True, True, False])
    want = sum(sum(max(0.0, 0.4 / int(m[i].sum()) + float(neg[i, t] - pos[i, t])) for t in range(4) if m[i, t])
               for i in range(2)) / 2
    torch.testing.assert_close(instance_loss(pos, neg, m, has, 0.4).item(), want)


def test_negative_and_pseudo_positive_picks():
    hard = torch.tensor([[False, True, True], [False, False, False], [True, False, False]])
    picks = sample_negatives(hard, torch.Generator().manual_seed(0))
    assert picks[0] in (1, 2) and picks[1] == -1 and picks[2] == 0
    sim = torch.tensor([[0.0, 0.2, 0.9], [0.5, 0.0, 0.1], [0.3, 0.3, 0.0]])
    pseudo = torch.tensor([[False, True, True], [False, False, False], [True, True, False]])
    assert pseudo_positive(sim, pseudo).tolist() == [2, -1, 0]


@pytest.mark.parametrize("overrides,terms", [
    (["wsra.loss.crov_weight=0", "wsra.loss.vas_weight=0"], {"background", "instance"}),
    (["wsra.loss.rank_by=matching", "wsra.loss.instance_weights=queries", "wsra.loss.background_weight=0"],
     {"vas", "instance", "crov"}),
    (["wsra.head.global_text=max_words"], {"background", "vas", "instance", "crov"}),
])
def test_model_terms_switch(overrides, terms):
    cfg = load_train_config("wsra-tiny", overrides)
    head = build_head(cfg, DIMS).double()
    x, mask, sentence, words, word_mask = query_batch()
    batch = {"snippets": x, "snippet_mask": mask, "sentence": sentence, "words": words, "word_mask": word_mask,
             "video": torch.tensor([0, 1, 1, 2, 3])}
    out = WsraModel(head, cfg)(batch)
    assert set(out) == {"loss", *terms} and torch.isfinite(out["loss"])
    weights = {"background": cfg.wsra.loss.background_weight, "vas": cfg.wsra.loss.vas_weight,
               "instance": cfg.wsra.loss.instance_weight, "crov": cfg.wsra.loss.crov_weight}
    torch.testing.assert_close(out["loss"], sum(weights[k] * out[k] for k in terms))
    with pytest.raises(ConfigError, match="trains no scoring"):
        WsraModel(head, load_train_config("wsra-tiny", [f"wsra.loss.{k}_weight=0" for k in
                                                        ("background", "vas", "instance")]))


def test_snippets_pool_and_merge():
    times = np.array([0.0, 0.5, 1.2, 3.0, 3.5])
    feats = np.arange(5.0)[:, None] * np.ones((1, 2))
    starts, ends, means = snippets(times, feats, 1.0)
    assert starts.tolist() == [0, 1, 3] and ends.tolist() == [1, 2, 4] and means[:, 0].tolist() == [0.5, 2.0, 3.5]
    starts, ends, means = snippets(times, feats, 1.0, max_n=2)
    assert starts.tolist() == [0, 3] and ends.tolist() == [2, 4] and means[:, 0].tolist() == [1.25, 3.5]


def test_query_items_from_the_store(synthetic_store):
    root = synthetic_store[0]
    cfg = load_train_config("wsra-tiny", ["wsra.data.video_frames=64"])
    store = open_store(root)
    index = build_index(store, cfg.data)
    item = WsraDataset(root, index, cfg.data, cfg.wsra.data)[5]
    assert item["snippet_mask"].sum() == 40                                  # 40 s at 1-s snippets
    got = store.frames(index.videos[index.video_of(5)], "clip", start=2.0, end=3.0, fields=("global",))
    np.testing.assert_allclose(item["snippets"][2], got["global"].astype(np.float32).mean(0), atol=2e-3)
    assert item["video"] == index.video_of(5) and item["word_mask"].any()
    item = WsraDataset(root, index, cfg.data, dataclasses.replace(cfg.wsra.data, video_frames=16))[5]
    assert item["snippet_mask"].sum() == 16
