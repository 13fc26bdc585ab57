"""Heads: output shapes, a gradient for every trainable parameter, batched vs naive attention parity (train and
eval modes, every ablation stack, CLIP and S3D grids, padding frames and words), the rollout."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from tests.trainer.methods.stg.naive import naive_pairs, naive_rollout, reference_style_pairs
from trainer.methods import METHODS
from trainer.methods.stg.config import GroundingConfig, HeadConfig
from trainer.methods.stg.head import StgHead

DIMS = {"global": 12, "grid": 12, "sentence": 10, "words": 10}
GRIDS = {"clip": (7, 7), "s3d": (2, 7, 7)}
LOCAL_HEADS = sorted(n for n, m in METHODS.items() if m.section is GroundingConfig)  # stg, comma
STACKS = {"cross+self+cross": ("cross", "self", "cross"), "self+cross": ("self", "cross"),
          "cross+self": ("cross", "self"), "cross+cross": ("cross", "cross")}


def make_inputs(bv=3, bt=4, frames=2, grid=(7, 7), words=6, seed=0, dims=DIMS):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(bv, frames, *grid, dims["grid"], generator=g)
    frame_mask = torch.ones(bv, frames, dtype=torch.bool)
    frame_mask[0, -1] = False                                           # a padded frame
    w = torch.randn(bt, words, dims["words"], generator=g)
    word_mask = torch.arange(words)[None] < torch.tensor([words, 2, 1, words - 1][:bt])[:, None]
    return x, frame_mask, w, word_mask


def head_for(name: str, layers=("cross", "self", "cross"), **kw) -> torch.nn.Module:
    torch.manual_seed(0)
    cfg = HeadConfig(variant="tiny", layers=layers, heads=2, **kw)
    return METHODS[name].build_head(DIMS, dataclasses.replace(cfg, **METHODS[name].tiny)).double()


@pytest.mark.parametrize("name", LOCAL_HEADS)
@pytest.mark.parametrize("encoder", sorted(GRIDS))
def test_pairs_shape_and_parity_with_naive(name, encoder):
    head = head_for(name, word_values=True)
    x, fm, w, wm = (t.double() if t.is_floating_point() else t for t in make_inputs(grid=GRIDS[encoder]))
    for mode, kw in (("train", {}), ("eval", {})):
        v0, vm = head.encode_video(x, fm)
        out = head.pairs(v0, vm, head.encode_text(w), wm, mode=mode, keep_words=True)
        d = head.cfg.dim
        assert out.video.shape == out.text.shape == (3, 4, d) and out.words.shape == (3, 4, 6, d)
        ref_v, ref_t, ref_w = naive_pairs(head, x, fm, w, wm, mode)
        torch.testing.assert_close(out.video, ref_v, rtol=1e-9, atol=1e-9)
        torch.testing.assert_close(out.text, ref_t, rtol=1e-9, atol=1e-9)
        torch.testing.assert_close(out.words, ref_w, rtol=1e-9, atol=1e-9)


def test_reference_style_all_pairs_version_matches_too():
    """The benchmark's naive case (the released code's [Bv, Bt, W, R, d] repeats) gives the same values."""
    head = head_for("stg", eval_score="dot", eval_residual="none")
    x, fm, w, wm = (t.double() if t.is_floating_point() else t for t in make_inputs())
    v0, vm = head.encode_video(x, fm)
    t0 = head.encode_text(w)
    for mode in ("train", "eval"):
        out = head.pairs(v0, vm, t0, wm, mode=mode)
        ref_v, ref_t = reference_style_pairs(head, v0, vm, t0, wm, mode)
        torch.testing.assert_close(out.video, ref_v, rtol=1e-9, atol=1e-9)
        torch.testing.assert_close(out.text, ref_t, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("stack", sorted(STACKS))
@pytest.mark.parametrize("score,residual", [("scaled_dot", "all_but_first"), ("dot", "none"), ("cosine", "all")])
def test_every_ablation_stack_and_attention_mode_matches_naive(stack, score, residual):
    head = head_for("stg", STACKS[stack], train_score=score, train_residual=residual, eval_score="dot",
                    eval_residual="none")
    x, fm, w, wm = (t.double() if t.is_floating_point() else t for t in make_inputs(bv=2, bt=3))
    for mode in ("train", "eval"):
        v0, vm = head.encode_video(x, fm)
        out = head.pairs(v0, vm, head.encode_text(w), wm, mode=mode)
        ref_v, ref_t, _ = naive_pairs(head, x, fm, w, wm, mode)
        torch.testing.assert_close(out.video, ref_v, rtol=1e-9, atol=1e-9)
        torch.testing.assert_close(out.text, ref_t, rtol=1e-9, atol=1e-9)


def test_train_and_eval_attention_differ_as_configured():
    head = head_for("stg", eval_score="dot", eval_residual="none")
    x, fm, w, wm = make_inputs()
    v0, vm = head.float().encode_video(x, fm)
    t0 = head.encode_text(w)
    train, evald = head.pairs(v0, vm, t0, wm, mode="train"), head.pairs(v0, vm, t0, wm, mode="eval")
    assert not torch.allclose(train.video, evald.video)
    head.eval()
    torch.testing.assert_close(head.pairs(v0, vm, t0, wm).video, evald.video)  # eval() selects eval mode
    head.train()
    torch.testing.assert_close(head.pairs(v0, vm, t0, wm).video, train.video)


@pytest.mark.parametrize("name", LOCAL_HEADS)
def test_every_trainable_parameter_gets_a_gradient(name):
    head = head_for(name, word_values=True)
    x, fm, w, wm = make_inputs(bv=3, bt=3)
    v0, vm = head.float().encode_video(x, fm)
    t0 = head.encode_text(w)
    out = head.pairs(v0, vm, t0, wm, keep_words=True)
    loss = (out.video * out.text).sum() + (out.words * head.values(t0)[None]).sum()
    if head.has_global:
        sentence = torch.randn(3, DIMS["sentence"])
        loss = loss + (head.global_video(x.mean((2, 3)), fm) * head.global_text(sentence)).sum()
    loss.backward()
    missing = [n for n, p in head.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.any())]
    assert not missing, f"no gradient for {missing}"


def test_chunked_checkpointed_pairs_equal_unchunked_with_gradients():
    x, fm, w, wm = make_inputs(bv=5, bt=4)
    grads = []
    for chunk in (0, 2):
        head = head_for("stg", pair_chunk=chunk)
        v0, vm = head.encode_video(x, fm)
        out = head.pairs(v0, vm, head.encode_text(w), wm)
        (out.video * out.text).sum().backward()
        grads.append({n: p.grad.clone() for n, p in head.named_parameters() if p.grad is not None})
        grads[-1]["value"] = (out.video * out.text).sum().detach()
    assert grads[0].keys() == grads[1].keys()
    for k in grads[0]:
        torch.testing.assert_close(grads[0][k], grads[1][k], rtol=1e-5, atol=1e-6)


def test_global_branch_pools_valid_frames_only():
    head = head_for("stg").float()
    frames = torch.randn(2, 5, DIMS["global"])
    mask = torch.tensor([[True, True, False, False, False], [True] * 5])
    changed = frames.clone()
    changed[0, 2:] = 100.0                                               # padding frames: ignored
    torch.testing.assert_close(head.global_video(frames, mask), head.global_video(changed, mask))
    want = head.vis_proj_g(frames[0, :2].mean(0))
    torch.testing.assert_close(head.global_video(frames, mask)[0], want)
    maxed = StgHead(DIMS, dataclasses.replace(head.cfg, global_pool="max"))
    maxed.load_state_dict(head.state_dict())
    torch.testing.assert_close(maxed.global_video(frames, mask)[0], maxed.vis_proj_g(frames[0, :2].amax(0)))


# ---- rollout ----------------------------------------------------------------------------------------------------
def _hand_head(text_self_attention: str) -> torch.nn.Module:
    """d = 3, identity projections; video SA and the text SA outputs are zero (pure residual); the text SA
    weights are the identity (each word attends itself) or uniform. Eval mode: dot scores, no residuals."""
    dims = dict.fromkeys(("global", "grid", "sentence", "words"), 3)
    head = StgHead(dims, HeadConfig(dim=3, eval_score="dot", eval_residual="none"))
    with torch.no_grad():
        for p in head.parameters():
            p.zero_()
        head.vis_proj.weight.copy_(torch.eye(3))
        head.lang_proj.weight.copy_(torch.eye(3))
        if text_self_attention == "identity":
            head.stack.selfs[0].text.in_proj_weight[:3].copy_(1e3 * torch.eye(3))   # queries
            head.stack.selfs[0].text.in_proj_weight[3:6].copy_(torch.eye(3))        # keys
    return head.eval()


def test_rollout_hand_case():
    """Regions r1 = r2 = e1 s, r3 = e2 s, r4 = e3 s; words w1 = e1 s, w2 = e2 s and a padding word e3 s that
    would match r4; a padding frame whose regions all match w1. With hard softmaxes:
    CA1 word->region: w1 -> (r1 + r2) / 2, w2 -> r3; CA2 region->word: r1, r2 -> w1, r3 -> w2, r4 -> (w1 + w2) / 2.
    Identity text SA: per query region r1, r2 -> (1/2, 1/2, 0, 0), r3 -> (0, 0, 1, 0), r4 -> (1/4, 1/4, 1/2, 0),
    mean over the 4 queries = (5/16, 5/16, 6/16, 0). Uniform text SA: every query -> (1/4, 1/4, 1/2, 0)."""
    s = 30.0
    e = torch.eye(3) * s
    frame = torch.stack([e[0], e[0], e[1], e[2]]).reshape(2, 2, 3)
    grid = torch.stack([frame, e[0].expand(2, 2, 3)])[None]             # [C=1, F=2, 2, 2, 3]
    words, word_mask = torch.stack([e[0], e[1], e[2]]), torch.tensor([True, True, False])
    frame_mask = torch.tensor([[True, False]])
    expected = {"identity": torch.tensor([5, 5, 6, 0]) / 16, "uniform": torch.tensor([4, 4, 8, 0]) / 16}
    for sa, want in expected.items():
        heat = _hand_head(sa).rollout(grid, words, word_mask, frame_mask)
        assert heat.shape == (1, 2, 2, 2)
        torch.testing.assert_close(heat[0, 0].reshape(-1), want, atol=1e-6, rtol=0)
        assert torch.all(heat[0, 1] == 0)                               # the padding frame gets nothing


@pytest.mark.parametrize("stack", ["cross+self+cross", "cross+cross"])
@pytest.mark.parametrize("encoder", sorted(GRIDS))
def test_rollout_matches_naive_and_is_a_distribution(stack, encoder):
    head = head_for("stg", STACKS[stack], eval_score="dot", eval_residual="none").eval()
    x, fm, w, wm = (t.double() if t.is_floating_point() else t for t in make_inputs(bv=3, grid=GRIDS[encoder]))
    heat = head.rollout(x, w[1], wm[1], fm)                              # one query for 3 chunks
    assert heat.shape == (3, 2, *GRIDS[encoder])
    for c in range(3):
        torch.testing.assert_close(heat[c], naive_rollout(head, x[c], fm[c], w[1], wm[1]).float(),
                                   rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(heat.sum(tuple(range(1, heat.dim()))), torch.ones(3), rtol=1e-5, atol=1e-6)
    assert torch.all(heat[0, -1] == 0)


def test_attention_maps_are_the_rollout_ingredients():
    head = head_for("stg", eval_score="dot", eval_residual="none").float().eval()
    x, fm, w, wm = make_inputs(bv=2)
    maps = head.attention_maps(x, w[1], wm[1], fm)
    assert [m["kind"] for m in maps] == ["cross", "self", "cross"]
    r2w, sa, w2r = maps[2]["region_to_word"], maps[1]["text"], maps[0]["word_to_region"]
    assert r2w.shape == (2, 98, 6) and sa.shape == (2, 6, 6) and w2r.shape == (2, 6, 98)
    valid = wm[1].float()
    chain = r2w @ sa @ (w2r * valid[:, None])
    queries = fm[:, :, None].expand(-1, -1, 49).reshape(2, 98).float()
    want = (chain * queries[..., None]).sum(1) / queries.sum(1, keepdim=True)
    torch.testing.assert_close(head.rollout(x, w[1], wm[1], fm).reshape(2, 98), want)
    torch.testing.assert_close(r2w.sum(-1), torch.ones(2, 98))
    assert torch.all(r2w[..., ~wm[1]] == 0) and torch.all(sa[..., ~wm[1]] == 0)


def test_local_scores_are_the_matched_pair_scores():
    head = head_for("comma").eval()
    x, fm, w, wm = make_inputs(bv=3, bt=3)
    v0, vm = head.encode_video(x, fm)
    out = head.pairs(v0, vm, head.encode_text(w), wm)
    torch.testing.assert_close(head.local_scores(x, w, wm, fm), (out.video * out.text).sum(-1).diagonal(),
                               rtol=1e-5, atol=1e-5)
