"""CoMMA as the paper writes it (`comma-paper`): the cross layers' learned W_K, W_Q, W_V (eq. 2) against a
pair-by-pair reference from eqs. 1-2, the default (no projections) unchanged, eq. 5 against a loop over its
terms, and the preset loading and training on the synthetic store."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from trainer.attention import LocalStack, residual_flags
from trainer.losses import contrastive
from trainer.methods import METHODS, load_train_config
from trainer.methods.stg.config import HeadConfig
from trainer.rundir import read_metrics
from trainer.train import main
from trainer.train_config import OptimConfig

from tests.trainer.methods.stg.naive import naive_pairs

DIMS = {"global": 12, "grid": 12, "sentence": 10, "words": 10}


def inputs(bv=3, bt=4, frames=2, grid=(2, 2), words=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(bv, frames, *grid, DIMS["grid"], generator=g, dtype=torch.float64)
    frame_mask = torch.ones(bv, frames, dtype=torch.bool)
    frame_mask[0, -1] = False                                            # a padded frame
    w = torch.randn(bt, words, DIMS["words"], generator=g, dtype=torch.float64)
    word_mask = torch.arange(words)[None] < torch.tensor([words, 2, 1, words - 1][:bt])[:, None]
    return x, frame_mask, w, word_mask


def comma_head(**kw):
    torch.manual_seed(0)
    cfg = dataclasses.replace(HeadConfig(variant="tiny", heads=2, **kw), **METHODS["comma"].tiny)
    return METHODS["comma"].build_head(DIMS, cfg).double()


# ---- eqs. 1-2, one (video, text) pair at a time --------------------------------------------------------------
def attend(queries, keys, values, key_mask, score: str):
    """Eq. 1 for one query set: softmax over the valid keys of the query-key similarity, times the values."""
    if score == "cosine":
        queries = torch.nn.functional.normalize(queries, dim=-1)
        keys = torch.nn.functional.normalize(keys, dim=-1)
    rows = []
    for q in queries:
        logits = torch.stack([q @ k for k in keys]) / (math.sqrt(q.shape[0]) if score == "scaled_dot" else 1.0)
        weights = torch.softmax(logits.masked_fill(~key_mask, float("-inf")), dim=0)
        rows.append((weights[:, None] * values).sum(0))
    return torch.stack(rows), weights


def reference_pair(head, v, vm, t, tm, mode: str):
    """The stack on one pair, cross layers as eq. 2 reads: Y = [V, T], W_Q Y, W_K Y, W_V Y with the cross mask
    (regions attend words, words attend regions)."""
    score, policy = head.stack.modes[mode]
    flags = iter(residual_flags(policy, head.stack.kinds.count("cross")))
    selfs, crosses = iter(head.stack.selfs), iter(head.stack.crosses)
    for kind in head.stack.kinds:
        if kind == "cross":
            p = next(crosses)
            y = torch.cat([v, t])                                          # stacked tokens of both modalities
            q, k, val = y @ p.query.weight.T, y @ p.key.weight.T, y @ p.value.weight.T
            r = v.shape[0]
            new_v, _ = attend(q[:r], k[r:], val[r:], tm, score)
            new_t, _ = attend(q[r:], k[:r], val[:r], vm, score)
            v, t = (new_v + v, new_t + t) if next(flags) else (new_v, new_t)
        else:
            layer = next(selfs)
            v = v + layer.video(v[None], v[None], v[None], key_padding_mask=~vm[None])[0][0]
            t = t + layer.text(t[None], t[None], t[None], key_padding_mask=~tm[None])[0][0]
    return v, t


@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("score", ["scaled_dot", "dot", "cosine"])
def test_projected_cross_layers_match_eq2_pair_by_pair(mode, score):
    head = comma_head(cross_projections=True, train_score=score, eval_score=score, eval_residual="none")
    x, fm, w, wm = inputs()
    v0, vm = head.encode_video(x, fm)
    t0 = head.encode_text(w)
    out = head.pairs(v0, vm, t0, wm, mode=mode)
    matched = head.matched(v0, vm, t0[:3], wm[:3], mode=mode)
    for i in range(3):
        for j in range(4):
            v, t = reference_pair(head, v0[i], vm[i], t0[j], wm[j], mode)
            torch.testing.assert_close(out.video[i, j], v[vm[i]].mean(0), rtol=1e-9, atol=1e-9)
            torch.testing.assert_close(out.text[i, j], t[wm[j]].mean(0), rtol=1e-9, atol=1e-9)
            if i == j:
                torch.testing.assert_close(matched.video[i, 0][vm[i]], v[vm[i]], rtol=1e-9, atol=1e-9)


def test_projections_are_trained_and_the_rollout_still_is_a_distribution():
    head = comma_head(cross_projections=True)
    assert len(head.stack.crosses) == head.cfg.layers.count("cross")
    x, fm, w, wm = inputs()
    v0, vm = head.encode_video(x, fm)
    out = head.pairs(v0, vm, head.encode_text(w), wm, mode="train")
    (out.video * out.text).sum().backward()
    for name, p in head.stack.crosses.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    heat = head.rollout(x, w[0], wm[0], fm)
    assert heat.shape == x.shape[:-1]
    torch.testing.assert_close(heat.sum((1, 2, 3)), torch.ones(3, dtype=heat.dtype), rtol=1e-9, atol=1e-9)
    assert (heat[0, -1] == 0).all()                                       # the padded frame gets nothing
    assert len([m for m in head.attention_maps(x, w[0], wm[0], fm) if m["kind"] == "cross"]) == 2


def test_identity_projections_reproduce_the_parameter_free_layers_exactly():
    off, on = comma_head(), comma_head(cross_projections=True)
    with torch.no_grad():
        for p in on.stack.crosses.parameters():
            p.copy_(torch.eye(p.shape[0], dtype=p.dtype))
    on.load_state_dict({k: v for k, v in off.state_dict().items()}, strict=False)
    x, fm, w, wm = inputs()
    for mode in ("train", "eval"):
        a = off.pairs(*off.encode_video(x, fm), off.encode_text(w), wm, mode=mode)
        b = on.pairs(*on.encode_video(x, fm), on.encode_text(w), wm, mode=mode)
        assert torch.equal(a.video, b.video) and torch.equal(a.text, b.text)
    assert torch.equal(off.rollout(x, w[0], wm[0], fm), on.rollout(x, w[0], wm[0], fm))


def test_default_head_is_unchanged_by_the_option():
    """cross_projections=False (the default) adds no parameter, draws no random number at construction and
    computes what the parameter-free reference computes."""
    default, off = comma_head(), comma_head(cross_projections=False)
    assert default.stack.crosses is None
    sd, so = default.state_dict(), off.state_dict()
    assert sd.keys() == so.keys() and all(torch.equal(sd[k], so[k]) for k in sd)
    assert not any("crosses" in k for k in sd)
    torch.manual_seed(0)
    plain = LocalStack(("cross", "self", "cross"), 8, 2, {"train": ("scaled_dot", "all_but_first")})
    after_plain = torch.rand(1)
    torch.manual_seed(0)
    LocalStack(("cross", "self", "cross"), 8, 2, {"train": ("scaled_dot", "all_but_first")}, cross_projections=False)
    assert torch.equal(torch.rand(1), after_plain) and plain.crosses is None
    x, fm, w, wm = inputs()
    for mode in ("train", "eval"):
        out = default.pairs(*default.encode_video(x, fm), default.encode_text(w), wm, mode=mode)
        ref_v, ref_t, _ = naive_pairs(default, x, fm, w, wm, mode)
        torch.testing.assert_close(out.video, ref_v, rtol=1e-9, atol=1e-9)
        torch.testing.assert_close(out.text, ref_t, rtol=1e-9, atol=1e-9)


# ---- eq. 5 ---------------------------------------------------------------------------------------------------
def eq5_loop(s: torch.Tensor, margin: float = 0.0) -> torch.Tensor:
    """-sum_i log(exp(s_ii) / (exp(s_ii) + sum_{j != i} exp(s_ij) + sum_{j != i} exp(s_ji))), s_ii - margin."""
    n, total = s.shape[0], 0.0
    for i in range(n):
        pos = math.exp(float(s[i, i]) - margin)
        den = pos + sum(math.exp(float(s[i, j])) for j in range(n) if j != i) \
            + sum(math.exp(float(s[j, i])) for j in range(n) if j != i)
        total -= math.log(pos / den)
    return torch.tensor(total, dtype=torch.float64)


@pytest.mark.parametrize("n,margin,seed", [(2, 0.0, 0), (5, 0.0, 1), (7, 0.3, 2)])
def test_eq5_matches_the_equation(n, margin, seed):
    s = torch.randn(n, n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 2
    # 1e-7: contrastive subtracts the margin in float32 (margin * a bool eye), the loop in float64
    torch.testing.assert_close(contrastive(s, "comma_eq5", margin), eq5_loop(s, margin), rtol=1e-7, atol=1e-9)
    groups = torch.randn(3, n, n, generator=torch.Generator().manual_seed(seed + 10), dtype=torch.float64)
    torch.testing.assert_close(contrastive(groups, "comma_eq5", margin),
                               torch.stack([eq5_loop(g, margin) for g in groups]), rtol=1e-7, atol=1e-9)


def test_eq5_differs_from_the_released_milnce_as_described():
    """milnce counts the positive twice and averages: mean_i [log(den_i + exp(s_ii)) - s_ii]; eq. 5 sums
    [log den_i - s_ii]. Checked on the formulas' terms, not on fixed numbers."""
    s = torch.randn(4, 4, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    diag = s.diagonal()
    den = torch.stack([torch.exp(s[i]).sum() + torch.exp(s[:, i]).sum() - torch.exp(s[i, i]) for i in range(4)])
    torch.testing.assert_close(contrastive(s, "comma_eq5"), (torch.log(den) - diag).sum())
    torch.testing.assert_close(contrastive(s, "milnce"), (torch.log(den + torch.exp(diag)) - diag).mean())
    assert not torch.isclose(contrastive(s, "comma_eq5"), contrastive(s, "milnce"))
    s.requires_grad_(True)
    contrastive(s, "comma_eq5").backward()
    assert torch.isfinite(s.grad).all() and (s.grad.diagonal() < 0).all()


# ---- the presets ---------------------------------------------------------------------------------------------
HAS_WARMUP_EPOCHS = "warmup_epochs" in {f.name for f in dataclasses.fields(OptimConfig)}
needs_warmup_epochs = pytest.mark.skipif(not HAS_WARMUP_EPOCHS, reason="optim.warmup_epochs is not implemented "
                                         "yet (trainer/train_config.py OptimConfig): comma-paper sets it")


def test_comma_preset_is_the_released_code_and_iterates_clips():
    cfg = load_train_config("comma")
    assert cfg.comma.loss.form == "milnce" and not cfg.comma.head.cross_projections
    assert cfg.optim.warmup_steps == 5000 and cfg.data.sampling == "per_narration"
    assert (cfg.comma.head.eval_score, cfg.comma.head.eval_residual) == ("dot", "none")


@needs_warmup_epochs
def test_comma_paper_preset_sets_the_paper_choices():
    cfg, base = load_train_config("comma-paper"), load_train_config("comma")
    assert cfg.method == "comma" and cfg.comma.head.cross_projections and cfg.comma.loss.form == "comma_eq5"
    assert cfg.data.sampling == "per_narration" and cfg.optim.warmup_epochs == 1 and cfg.optim.warmup_steps == 0
    assert cfg.comma.head.eval_score == cfg.comma.head.train_score
    assert cfg.comma.head.eval_residual == cfg.comma.head.train_residual
    for section in ("data", "optim"):  # everything else comes from the released-code preset
        same = {f.name for f in dataclasses.fields(getattr(cfg, section))} - {"sampling", "warmup_steps",
                                                                              "warmup_epochs"}
        assert all(getattr(getattr(cfg, section), k) == getattr(getattr(base, section), k) for k in same)


@needs_warmup_epochs
def test_comma_paper_trains_on_the_synthetic_store(synthetic_store, tmp_path):
    run = tmp_path / "run"
    assert main(["--store", synthetic_store[0], "--out", str(run), "--preset", "comma-paper",
                 "runtime.progress=false", "runtime.log_every=1", "data.expect={}", "data.batch_size=8",
                 "data.workers=0", "data.window_s=2", "optim.max_steps=3", "comma.head.variant=tiny"]) == 0
    metrics = read_metrics(run)
    assert len(metrics) == 3 and all(np.isfinite(m["loss"]) for m in metrics)
    assert {k for k in metrics[0] if k.startswith("loss_")} == {"loss_local"}
    assert metrics[0]["lr"] < load_train_config("comma-paper").optim.lr   # the first step is in the warmup
