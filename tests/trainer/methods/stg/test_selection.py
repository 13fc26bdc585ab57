"""Frame selection: Sinkhorn marginals, agreement with plain Sinkhorn and with an exact OT (linear program) as
epsilon -> 0, the Table 5 variants on generated features with known event frames, and no gradient."""
from __future__ import annotations


import numpy as np
import pytest
import torch
from scipy.optimize import linprog

from pipeline.store import open_store
from tests.trainer.methods.stg.naive import naive_sinkhorn
from trainer.data import NarrationDataset, build_index, collate
from trainer.narrations import narration_table
from trainer.methods import build_head, load_train_config
from trainer.methods.stg.step import GroundingModel
from trainer.methods.stg.selection import FrameSelector, Selection, centred_frames, sinkhorn
from trainer.methods.stg.config import SelectionConfig


def test_sinkhorn_marginals_with_padding():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 10, 6, generator=g, dtype=torch.float64) * 4
    rows = torch.ones(3, 10, dtype=torch.bool)
    rows[1, 7:] = False
    cols = torch.arange(6)[None] < torch.tensor([[6], [2], [4]])
    plan = sinkhorn(logits, rows, cols, iterations=500)
    for b in range(3):
        u, k = int(rows[b].sum()), int(cols[b].sum())
        torch.testing.assert_close(plan[b].sum(1)[rows[b]], torch.full((u,), 1 / u).double(), rtol=1e-6, atol=1e-9)
        torch.testing.assert_close(plan[b].sum(0)[cols[b]], torch.full((k,), 1 / k).double(), rtol=1e-6, atol=1e-9)
        assert plan[b][~rows[b]].abs().sum() == 0 and plan[b][:, ~cols[b]].abs().sum() == 0


def test_sinkhorn_equals_plain_sinkhorn_knopp():
    rng = np.random.default_rng(1)
    p = rng.uniform(-1, 1, (12, 5))
    want = naive_sinkhorn(p, 0.1, 200)
    got = sinkhorn(torch.from_numpy(p / 0.1)[None], torch.ones(1, 12, dtype=torch.bool),
                   torch.ones(1, 5, dtype=torch.bool), 200)[0].numpy()
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-12)


def test_sinkhorn_tends_to_the_exact_transport_plan():
    """Entropic OT -> the linear program max <Q, P> over the transportation polytope as epsilon -> 0."""
    rng = np.random.default_rng(2)
    u, k = 6, 3
    p = rng.uniform(0, 1, (u, k))
    eq = np.vstack([np.kron(np.eye(u), np.ones(k)), np.kron(np.ones(u), np.eye(k))])
    lp = linprog(-p.ravel(), A_eq=eq, b_eq=np.r_[np.full(u, 1 / u), np.full(k, 1 / k)], bounds=(0, None),
                 method="highs")
    exact = lp.x.reshape(u, k)
    for eps, tol in ((0.01, 0.05), (0.002, 0.01)):
        plan = sinkhorn(torch.from_numpy(p / eps)[None], torch.ones(1, u, dtype=torch.bool),
                        torch.ones(1, k, dtype=torch.bool), 5000)[0].numpy()
        assert (plan * p).sum() >= -lp.fun - eps * np.log(u * k)     # entropic optimum is eps-close in value
        assert np.abs(plan - exact).sum() < tol


@pytest.fixture(scope="module")
def event_batch(synthetic_store):
    """A batch of 8 narrations with 80 candidates at 5 fps and, per sample, which candidates show its event."""
    root, truth, _ = synthetic_store
    cfg = load_train_config("paper-clip", ["data.expect={}"])
    store = open_store(root)
    index = build_index(store, cfg.data)
    table = narration_table(store, index, cfg.data)
    ds = NarrationDataset(root, index, cfg.data)
    batch = collate(ds.__getitems__(list(range(8))))
    inside = torch.zeros(8, 80, dtype=torch.bool)
    for b, j in enumerate(batch["index"].tolist()):
        _, start, end, *_ = truth.events[table["caption_id"][j]]
        times = table["lo"][j] + np.arange(80) / table["rate"][j]
        inside[b] = torch.from_numpy((times >= start) & (times < end))
    return batch, inside


@pytest.mark.parametrize("method", ["sinkhorn", "topk"])
@pytest.mark.parametrize("video", ["frames", "regions", "both"])
@pytest.mark.parametrize("text", ["words", "sentence"])
def test_selection_finds_the_narrated_event(event_batch, method, video, text):
    """15 of the 80 candidates show the event (chance: 19 %)."""
    batch, inside = event_batch
    cfg = SelectionConfig(method=method, keep=8, space="raw", video=video, text=text)
    sel = FrameSelector(cfg)(batch)
    assert sel.index.shape == (8, 8) and torch.all(sel.index[:, 1:] > sel.index[:, :-1])  # temporal order
    hits = inside.gather(1, sel.index).float().mean()
    assert hits > 0.9, f"only {hits:.0%} of the kept frames show the narrated event"
    assert torch.all(sel.mask == batch["frame_mask"].gather(1, sel.index))


def test_plan_scores_on_a_hand_case():
    """Words w1, w2; frames f0 = w1, f2 = w2 and f1 = f3 halfway between. The plan gives each word half the mass:
    w1 takes f0 whole and half of f1 and f3, w2 takes f2 and the other halves. Every score keeps f0 and f2:
    "similarity" (0.25 vs 0.25 cos 45 deg), "peak" (1/4 vs 1/8), "per_word" (w1's and w2's best frames)."""
    e = torch.eye(2)
    mid = (e[0] + e[1]) / 2 ** 0.5
    batch = {"global": torch.stack([e[0], mid, e[1], mid])[None], "words": e[None],
             "word_mask": torch.ones(1, 2, dtype=torch.bool), "frame_mask": torch.ones(1, 4, dtype=torch.bool)}
    for score in ("similarity", "peak", "per_word"):
        sel = FrameSelector(SelectionConfig(keep=2, space="raw", epsilon=0.05, score=score))(batch)
        assert sel.index.tolist() == [[0, 2]], score


def test_no_selection_keeps_the_frames_around_the_narration(event_batch):
    batch, _ = event_batch
    none = FrameSelector(SelectionConfig(method="none", none_frames="centred", keep=8))(batch)
    torch.testing.assert_close(none.index, centred_frames(batch["center"], 80, 8))
    assert torch.all(none.index[:, 1:] - none.index[:, :-1] == 1)
    assert torch.all((none.index.float().mean(1) - batch["center"]).abs() <= 1.0)


def test_padding_frames_are_kept_only_when_too_few_real_ones():
    g = torch.Generator().manual_seed(3)
    batch = {"global": torch.randn(2, 10, 4, generator=g), "words": torch.randn(2, 3, 4, generator=g),
             "word_mask": torch.ones(2, 3, dtype=torch.bool), "frame_mask": torch.ones(2, 10, dtype=torch.bool)}
    batch["frame_mask"][0, :6] = False                       # 4 real frames: all kept, 2 padding fill the rest
    batch["frame_mask"][1, 5:] = False
    batch["global"][:, :] += 100 * (~batch["frame_mask"])[..., None].float()  # padding would look attractive
    for score in ("similarity", "peak", "per_word"):
        sel = FrameSelector(SelectionConfig(keep=6, space="raw", normalize=False, score=score))(batch)
        assert int(sel.mask[0].sum()) == 4 and int(sel.mask[1].sum()) == 5, score
        assert len(set(sel.index[0].tolist())) == 6, score


def test_selection_carries_no_gradient(synthetic_store, event_batch):
    """Gradients with projected selection equal those with its result fixed in advance."""
    batch, _ = event_batch
    cfg = load_train_config("tiny", ["data.candidates=80", "data.fps=5", "data.window_s=16",
                                     "stg.selection.keep=8", "stg.selection.space=projected"])
    grads = []
    for frozen in (False, True):
        torch.manual_seed(0)
        model = GroundingModel(build_head(cfg, {"global": 16, "grid": 16, "sentence": 16, "words": 16}), cfg)
        fixed = model.select(batch)
        if frozen:
            model.select = lambda _batch, s=Selection(fixed.index.clone(), fixed.mask.clone()): s
        model(batch)["loss"].backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters()})
    for name in grads[0]:
        torch.testing.assert_close(grads[0][name], grads[1][name], rtol=0, atol=0)


def test_raw_selection_on_mismatched_widths_is_refused_at_start():
    cfg = load_train_config("paper-s3d", ["stg.selection.space=raw", "stg.head.variant=tiny"])
    head = build_head(cfg, {"global": 16, "grid": 16, "sentence": 24, "words": 24})
    with pytest.raises(ValueError, match="space=projected"):
        GroundingModel(head, cfg)
    ok = load_train_config("paper-s3d", ["stg.selection.space=projected", "stg.head.variant=tiny"])
    GroundingModel(head, ok)
