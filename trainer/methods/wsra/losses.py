"""WSRA's losses and its top/last-K sampling (Sec. 3.1-3.3). ψ of eq. 5-6 is not defined by the paper: it is
taken to be the scoring function phi (its only cross-modal score). Sums of the paper are means here (over the
batch, or over the pairs that take part), so weights do not depend on the batch size.

- `background_loss` (eq. 3): log(1 + sum_i exp(gamma (s_n^i - s_p^i + m))), s_p = phi(v_f, t), s_n = phi(v_b, t).
- `top_last_k` (Sec. 3.2.1): per video i, the other videos' queries sorted by similarity to i's query; the
  top_k most similar are pseudo-positives, the last_k least similar easy negatives, the rest hard negatives.
- `vas_loss` (eq. 5): mean over hard pairs (i, j) of max(0, m + psi(t^j, v_f^i) - psi(t^i, v_f^i)).
- `instance_loss` (eq. 6): per video, sum over valid snippets of max(0, m / T + w^-_t psi^-_t - w^+_t psi^+_t)
  (w = referring weights, m / T: see wsra.loss.instance_margin), mean over the videos with a negative.
- `cross_video_loss` (eq. 7-10): u = the video of i's most similar pseudo-positive query; gamma = softmax over
  u's snippets of cos(u_s, v_f^i); u_f = sum gamma u_s, u_b = sum (1 - gamma) u_s / (M - 1);
  max(0, m + cos(u_b, v_f) - cos(u_f, v_f)), gated by cos(t_i, t_u) > tau; mean over the gated videos. Eq. 9
  as printed has the two cosines the other way round, which would push u_f away from v_f; the text ("making
  their foreground representations closer and enlarging the divergence of foreground with background") fixes
  the direction used here.
"""
from __future__ import annotations

import torch
from torch.nn import functional as F

from trainer.losses import widen  # at least float32: bf16 autocast outputs widened, float64 kept


def background_loss(s_pos: torch.Tensor, s_neg: torch.Tensor, margin: float, gamma: float) -> torch.Tensor:
    """Eq. 3 over a batch of foreground / background scores [B]."""
    z = torch.logsumexp(gamma * (widen(s_neg) - widen(s_pos) + margin), dim=0)
    return F.softplus(z)


def cosine_matrix(x: torch.Tensor) -> torch.Tensor:
    """cos(x_i, x_j) [B, B] of x [B, D]."""
    x = F.normalize(widen(x), dim=-1)
    return x @ x.T


def top_last_k(similarity: torch.Tensor, candidates: torch.Tensor, top_k: int,
               last_k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(hard negatives, pseudo-positives) [B, B] boolean: row i ranks the candidate queries j (candidates[i, j];
    never i itself) by similarity[i, j], ties by index; the first top_k are pseudo-positives, the last last_k
    easy negatives, the others hard negatives."""
    order = torch.sort(widen(similarity).masked_fill(~candidates, float("-inf")), dim=1, descending=True,
                       stable=True).indices
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(order.shape[1], device=order.device).expand_as(order))
    n = candidates.sum(1, keepdim=True)
    pseudo = candidates & (rank < top_k)
    hard = candidates & (rank >= top_k) & (rank < n - last_k)
    return hard, pseudo


def vas_loss(scores: torch.Tensor, hard: torch.Tensor, margin: float) -> torch.Tensor:
    """Eq. 5: scores[i, j] = psi(t^j, v_f^i) [B, B]; mean over hard pairs (0 when there are none)."""
    cost = F.relu(margin + widen(scores) - widen(scores).diagonal()[:, None]) * hard
    return cost.sum() / hard.sum().clamp(min=1)


def sample_negatives(hard: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """One hard negative per row [B], uniformly at random; -1 for rows without any."""
    has = hard.any(1)
    weights = torch.where(has[:, None], hard.float(), torch.ones_like(hard, dtype=torch.float))
    picks = torch.multinomial(weights, 1, generator=generator)[:, 0]
    return torch.where(has, picks, torch.full_like(picks, -1))


def instance_loss(pos: torch.Tensor, neg: torch.Tensor, mask: torch.Tensor, has_negative: torch.Tensor,
                  margin: float, split: bool = True) -> torch.Tensor:
    """Eq. 6: pos = w^+_t psi(t^+, v_t), neg = w^-_t psi(t^-, v_t) [B, T] over valid snippets mask [B, T]; each
    snippet's hinge has the margin m / T_valid (split) or m (eq. 6 as written)."""
    m = mask.to(pos.dtype)
    per_snippet = margin / m.sum(1, keepdim=True).clamp(min=1) if split else torch.full_like(m[:, :1], margin)
    cost = (F.relu(per_snippet + widen(neg) - widen(pos)) * m).sum(1) * has_negative
    return cost.sum() / has_negative.sum().clamp(min=1)


def pseudo_positive(similarity: torch.Tensor, pseudo: torch.Tensor) -> torch.Tensor:
    """Index [B] of each row's most similar pseudo-positive (-1 where none)."""
    best = widen(similarity).masked_fill(~pseudo, float("-inf")).argmax(1)
    return torch.where(pseudo.any(1), best, torch.full_like(best, -1))


def cross_video_loss(fore: torch.Tensor, other: torch.Tensor, other_mask: torch.Tensor, gate: torch.Tensor,
                     margin: float) -> torch.Tensor:
    """Eq. 7-10: fore = v_f^i [B, d], other = the pseudo-positive video's snippets u [B, M, d] with mask
    [B, M]; gate [B] = lambda_i. Mean over gated rows (0 when none)."""
    fore, other = widen(fore), widen(other)
    cos = F.cosine_similarity(other, fore[:, None], dim=-1)                       # [B, M]
    gamma = torch.softmax(cos.masked_fill(~other_mask, float("-inf")), dim=-1) * other_mask
    m = other_mask.to(other.dtype)
    u_f = (gamma[..., None] * other).sum(1)
    u_b = (((1 - gamma) * m)[..., None] * other).sum(1) / (m.sum(1, keepdim=True) - 1).clamp(min=1)
    cost = F.relu(margin + F.cosine_similarity(u_b, fore, dim=-1) - F.cosine_similarity(u_f, fore, dim=-1))
    return (cost * gate).sum() / gate.sum().clamp(min=1)
