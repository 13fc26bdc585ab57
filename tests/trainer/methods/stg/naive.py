"""Slow, obvious reference implementations the trainer is checked against (and the benchmark's naive case).

`naive_pairs` follows the released code's shape of the computation: every (video, text) pair on its own, and
cross-attention through explicitly materialised [.., W, R, d] copies of both modalities (its `.repeat`).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from trainer.attention import residual_flags


def _cross(v, t, vm, tm, score: str, residual: bool, d: int):
    """One cross layer for ONE pair: v [R, d], t [W, d] via materialised [W, R, d] copies."""
    w, r = t.shape[0], v.shape[0]
    vx = v[None].repeat(w, 1, 1)                      # [W, R, d]
    tx = t[:, None].repeat(1, r, 1)                   # [W, R, d]
    if score == "cosine":
        s = (torch.nn.functional.normalize(vx, dim=-1) * torch.nn.functional.normalize(tx, dim=-1)).sum(-1)
    else:
        s = (vx * tx).sum(-1) / (math.sqrt(d) if score == "scaled_dot" else 1.0)   # [W, R]
    to_words = torch.softmax(s.masked_fill(~tm[:, None], float("-inf")), dim=0)    # over words, per region
    to_regions = torch.softmax(s.masked_fill(~vm[None, :], float("-inf")), dim=1)  # over regions, per word
    v_new = (to_words[..., None] * tx).sum(0)         # [R, d]
    t_new = (to_regions[..., None] * vx).sum(1)       # [W, d]
    if residual:
        v_new, t_new = v_new + v, t_new + t
    return v_new, t_new, to_words, to_regions


def _self(mha, x, mask, need_weights=False):
    out, weights = mha(x[None], x[None], x[None], key_padding_mask=~mask[None], need_weights=need_weights)
    return x + out[0], (weights[0] if need_weights else None)


def naive_stack(head, v, vm, t, tm, mode: str, record: list | None = None):
    """The head's local stack on one (video, text) pair, token by token."""
    score, policy = head.stack.modes[mode]
    flags = iter(residual_flags(policy, head.stack.kinds.count("cross")))
    selfs = iter(head.stack.selfs)
    d = v.shape[-1]
    for kind in head.stack.kinds:
        if kind == "cross":
            v, t, to_words, to_regions = _cross(v, t, vm, tm, score, next(flags), d)
            if record is not None:
                record.append(("cross", to_words, to_regions))
        else:
            layer = next(selfs)
            v, _ = _self(layer.video, v, vm)
            t, weights = _self(layer.text, t, tm, need_weights=record is not None)
            if record is not None:
                record.append(("self", weights))
    return v, t


def naive_pairs(head, grid, frame_mask, words, word_mask, mode: str):
    """(video [Bv, Bt, d], text [Bv, Bt, d], words [Bv, Bt, W, d]) pair by pair."""
    bv, bt = grid.shape[0], words.shape[0]
    cells = math.prod(grid.shape[2:-1])
    vids, txts, wrds = [], [], []
    for i in range(bv):
        v0 = head.vis_proj(grid[i].reshape(-1, grid.shape[-1]))
        vm = frame_mask[i][:, None].expand(-1, cells).reshape(-1)
        row_v, row_t, row_w = [], [], []
        for j in range(bt):
            t0 = head.lang_proj(words[j])
            v, t = naive_stack(head, v0, vm, t0, word_mask[j], mode)
            row_v.append(v[vm].mean(0))
            row_t.append(t[word_mask[j]].mean(0))
            row_w.append(t)
        vids.append(torch.stack(row_v)), txts.append(torch.stack(row_t)), wrds.append(torch.stack(row_w))
    return torch.stack(vids), torch.stack(txts), torch.stack(wrds)


def naive_rollout(head, grid, frame_mask, words, word_mask, mode: str = "eval"):
    """Rollout of one chunk [F, *cells, D] with one text [W, D]: CA2 region->word @ text SA @ CA1 word->region."""
    cells = math.prod(grid.shape[1:-1])
    v0 = head.vis_proj(grid.reshape(-1, grid.shape[-1]))
    vm = frame_mask[:, None].expand(-1, cells).reshape(-1)
    record: list = []
    naive_stack(head, v0, vm, head.lang_proj(words), word_mask, mode, record)
    crosses = [r for r in record if r[0] == "cross"]
    sa = [r[1] for r in record if r[0] == "self"]
    region_to_word = crosses[-1][1].T                                  # [R, W]
    word_to_region = crosses[0][2] * word_mask[:, None]                # [W, R], padding words zeroed
    chain = region_to_word @ sa[0] @ word_to_region if sa else region_to_word @ word_to_region
    heat = chain[vm].mean(0)
    return heat.reshape(grid.shape[:-1])


def naive_contrastive(s: torch.Tensor, form: str, margin: float) -> torch.Tensor:
    """Loops over the samples, as the formulas read."""
    n, total = s.shape[0], 0.0
    for i in range(n):
        pos = s[i, i] - margin
        if form == "symmetric":
            col = torch.stack([pos] + [s[k, i] for k in range(n) if k != i])   # imposter videos for text i
            row = torch.stack([pos] + [s[i, k] for k in range(n) if k != i])   # imposter texts for video i
            total = total - (pos - torch.logsumexp(col, 0)) - (pos - torch.logsumexp(row, 0))
        else:
            both = torch.stack([pos] + [s[i, k] for k in range(n) if k != i] + [pos]
                               + [s[k, i] for k in range(n) if k != i])
            total = total + torch.logsumexp(both, 0) - pos
    return total / n


def naive_word_level(scores: torch.Tensor, word_mask: torch.Tensor, margin: float) -> torch.Tensor:
    n, total, count = scores.shape[0], 0.0, 0
    for t in range(n):
        for j in range(scores.shape[2]):
            if not word_mask[t, j]:
                continue
            pos = scores[t, t, j] - margin
            others = [scores[v, t, j] for v in range(n) if v != t]
            total = total - (pos - torch.logsumexp(torch.stack([pos, *others]), 0))
            count += 1
    return total / count


def naive_sinkhorn(p: np.ndarray, epsilon: float, iterations: int) -> np.ndarray:
    """Plain Sinkhorn-Knopp on K = exp(P / eps) with uniform marginals (float64, no masks)."""
    u, k = p.shape
    kernel = np.exp((p - p.max()) / epsilon)
    a, b = np.full(u, 1.0 / u), np.full(k, 1.0 / k)
    x, y = np.ones(u), np.ones(k)
    for _ in range(iterations):
        x = a / (kernel @ y)
        y = b / (kernel.T @ x)
    return x[:, None] * kernel * y[None, :]


def reference_style_pairs(head, video, video_mask, text, text_mask, mode: str):
    """All pairs at once the way the released code does it (s3dg_clip.py:336-425): both modalities repeated
    into [Bv, Bt, W, R, d] tensors for each cross layer. Same values as the head's einsum path; the memory it
    needs is what the benchmark compares. video [Bv, R, d], text [Bt, W, d] -> (video [Bv, Bt, d], text [..])."""
    bv, bt, r, w, d = video.shape[0], text.shape[0], video.shape[1], text.shape[1], video.shape[-1]
    v = video[:, None].repeat(1, bt, 1, 1)                                # [Bv, Bt, R, d]
    t = text[None].repeat(bv, 1, 1, 1)                                    # [Bv, Bt, W, d]
    vm = video_mask[:, None, None, :]                                     # [Bv, 1, 1, R]
    tm = text_mask[None, :, :, None]                                      # [1, Bt, W, 1]
    score, policy = head.stack.modes[mode]
    flags, selfs = iter(residual_flags(policy, head.stack.kinds.count("cross"))), iter(head.stack.selfs)
    for kind in head.stack.kinds:
        if kind == "self":
            layer = next(selfs)
            keep_v = video_mask[:, None].expand(bv, bt, r).reshape(-1, r)
            keep_t = text_mask[None].expand(bv, bt, w).reshape(-1, w)
            v = v + layer.video(*[v.reshape(-1, r, d)] * 3, key_padding_mask=~keep_v, need_weights=False)[0] \
                .reshape(bv, bt, r, d)
            t = t + layer.text(*[t.reshape(-1, w, d)] * 3, key_padding_mask=~keep_t, need_weights=False)[0] \
                .reshape(bv, bt, w, d)
            continue
        vx = v[:, :, None].repeat(1, 1, w, 1, 1)                          # [Bv, Bt, W, R, d]
        tx = t[:, :, :, None].repeat(1, 1, 1, r, 1)                       # [Bv, Bt, W, R, d]
        if score == "cosine":
            s = (torch.nn.functional.normalize(vx, dim=-1) * torch.nn.functional.normalize(tx, dim=-1)).sum(-1)
        else:
            s = (vx * tx).sum(-1) / (math.sqrt(d) if score == "scaled_dot" else 1.0)   # [Bv, Bt, W, R]
        to_words = torch.softmax(s.masked_fill(~tm, float("-inf")), dim=2)
        to_regions = torch.softmax(s.masked_fill(~vm, float("-inf")), dim=3)
        v_new, t_new = (to_words[..., None] * tx).sum(2), (to_regions[..., None] * vx).sum(3)
        v, t = (v_new + v, t_new + t) if next(flags) else (v_new, t_new)
    vmf, tmf = video_mask[:, None, :, None].to(v.dtype), text_mask[None, :, :, None].to(t.dtype)
    return (v * vmf).sum(2) / vmf.sum(2), (t * tmf).sum(2) / tmf.sum(2)
