"""Slow, obvious references for the COOT and WSRA heads and losses: one sequence / one pair at a time, loops
over the formulas as the papers write them."""
from __future__ import annotations

import math

import torch
from torch.nn import functional as F


# ---- COOT -----------------------------------------------------------------------------------------------------
def naive_positions(length: int, dim: int) -> torch.Tensor:
    pe = torch.zeros(length, dim, dtype=torch.float64)
    for pos in range(length):
        for i in range(dim):
            angle = pos / 10000 ** ((i - i % 2) / dim)
            pe[pos, i] = math.sin(angle) if i % 2 == 0 else math.cos(angle)
    return pe


def naive_attention_fa(af, x: torch.Tensor) -> torch.Tensor:
    """Eq. 4 for ONE sequence x [L, D]: per channel c, a softmax over positions of its logit, then the sum."""
    length, dim = x.shape
    heads, per_head = af.heads, dim // af.heads
    hidden = F.gelu(af.w1(x))                                          # [L, H * k]
    k = hidden.shape[1] // heads
    out = torch.zeros(dim, dtype=x.dtype)
    for c in range(dim):
        h = c // per_head
        logits = torch.stack([hidden[i, h * k:(h + 1) * k] @ af.w2[h, :, c % per_head] + af.b2[h, c % per_head]
                              for i in range(length)])
        out[c] = (torch.softmax(logits, 0) * x[:, c]).sum()
    return out


def naive_coot_side(head, branch: str, items: list[torch.Tensor], whole: torch.Tensor):
    """(item vectors [C, d], context [d], whole vector) of ONE video or paragraph, each sequence alone, no padding."""
    encoder = head.video_encoder if branch == "video" else head.text_encoder
    context_net = head.video_context if branch == "video" else head.text_context
    ones = lambda n: torch.ones(1, n, dtype=torch.bool)  # noqa: E731
    vectors = torch.stack([encoder(x[None], ones(len(x)))[0] for x in items])
    context = encoder(whole[None], ones(len(whole)))[0]
    return vectors, context, context_net(vectors[None], ones(len(items)), context[None])[0]


def naive_hinge(x: torch.Tensor, y: torch.Tensor, margin: float) -> torch.Tensor:
    """Eq. 1 with D = 1 - cos, summed over positives and their negatives, divided by N^2."""
    n, total = x.shape[0], 0.0
    dist = lambda a, b: 1 - F.cosine_similarity(a, b, dim=0)  # noqa: E731
    for i in range(n):
        for j in range(n):
            if i != j:
                total += F.relu(margin + dist(x[i], y[i]) - dist(x[i], y[j]))   # (x, y') negative
                total += F.relu(margin + dist(x[i], y[i]) - dist(x[j], y[i]))   # (x', y) negative
    return total / n ** 2


def naive_cycle_one(a: torch.Tensor, b: torch.Tensor, start: int, how: str = "sum") -> torch.Tensor:
    """(i - mu)^2 of one start i: a_i -> soft nearest neighbour in b (eq. 6) -> soft location in a (eq. 7)."""
    def sq(u, v):
        return ((u - v) ** 2).sum() if how == "sum" else ((u - v) ** 2).mean()
    alpha = torch.softmax(torch.stack([-sq(a[start], b[j]) for j in range(len(b))]), 0)
    nn_b = sum(alpha[j] * b[j] for j in range(len(b)))
    beta = torch.softmax(torch.stack([-sq(nn_b, a[k]) for k in range(len(a))]), 0)
    mu = sum(beta[k] * k for k in range(len(a)))
    return (start - mu) ** 2


def naive_cycle(clips: list[torch.Tensor], sentences: list[torch.Tensor], how: str = "sum") -> torch.Tensor:
    """l_CMC per sequence (every start): mean over starts of each direction, the two summed."""
    out = []
    for c, s in zip(clips, sentences):
        t2v = torch.stack([naive_cycle_one(s, c, i, how) for i in range(len(s))]).mean()
        v2t = torch.stack([naive_cycle_one(c, s, i, how) for i in range(len(c))]).mean()
        out.append(t2v + v2t)
    return torch.stack(out)


# ---- WSRA -----------------------------------------------------------------------------------------------------
def naive_phi(head, v: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """sigmoid(FC(concat(v, t))) for ONE snippet v [d] and query t [d], the first layer on the concatenation."""
    weight = torch.cat([head.score_video.weight, head.score_text.weight], dim=1)
    x = weight @ torch.cat([v, t]) + head.score_text.bias
    for layer in head.score_rest:
        x = layer(x)
    return torch.sigmoid(x[0])


def naive_top_last_k(sim, video, top_k: int, last_k: int):
    """Per row: the other videos' queries sorted by similarity (ties by index), split by position."""
    n = len(video)
    hard = torch.zeros(n, n, dtype=torch.bool)
    pseudo = torch.zeros(n, n, dtype=torch.bool)
    for i in range(n):
        cands = [j for j in range(n) if video[j] != video[i]]
        cands.sort(key=lambda j: (-float(sim[i, j]), j))
        for pos, j in enumerate(cands):
            if pos < top_k:
                pseudo[i, j] = True
            elif pos < len(cands) - last_k:
                hard[i, j] = True
    return hard, pseudo


def naive_background(s_pos, s_neg, margin: float, gamma: float) -> torch.Tensor:
    return torch.log(1 + sum(torch.exp(gamma * (s_neg[i] - s_pos[i] + margin)) for i in range(len(s_pos))))


def naive_vas(scores, hard, margin: float) -> torch.Tensor:
    terms = [F.relu(margin + scores[i, j] - scores[i, i]) for i in range(len(scores)) for j in range(len(scores))
             if hard[i, j]]
    return torch.stack(terms).mean() if terms else torch.tensor(0.0)


def naive_cross_video(fore, other, other_mask, gate, margin: float) -> torch.Tensor:
    terms = []
    for i in range(len(fore)):
        if not gate[i]:
            continue
        u = other[i][other_mask[i]]
        gamma = torch.softmax(torch.stack([F.cosine_similarity(s, fore[i], dim=0) for s in u]), 0)
        u_f = sum(gamma[s] * u[s] for s in range(len(u)))
        u_b = sum((1 - gamma[s]) * u[s] for s in range(len(u))) / max(len(u) - 1, 1)
        terms.append(F.relu(margin + F.cosine_similarity(u_b, fore[i], dim=0)
                            - F.cosine_similarity(u_f, fore[i], dim=0)))
    return torch.stack(terms).mean() if terms else torch.tensor(0.0)
