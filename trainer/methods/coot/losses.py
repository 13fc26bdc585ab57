"""COOT's losses (Ging et al. NeurIPS 2020, Sec. 2.1 and 3).

- `hinge_contrastive` (eq. 1 with D(x, y) = 1 - cos(x, y)): for every positive pair (x_i, y_i) and every other
  index j, max(0, m + cos(x_i, y_j) - cos(x_i, y_i)) + max(0, m + cos(x_j, y_i) - cos(x_i, y_i)); the sum over
  pairs is divided by N^2 as in the released ContrastiveLoss (the paper writes a plain sum; its lambda of the
  cycle loss was tuned with the code's scale). Alignment (eq. 2) applies it to (clips, sentences), (videos,
  paragraphs) and (g_v, g_p).
- `cluster` (eq. 3): the same loss of x against itself and of y against itself (positive cos = 1, so it only
  pushes negatives apart), averaged over the two as the released code does.
- `cycle_consistency` (eq. 6-8): from item i of one sequence, the soft nearest neighbour in the other sequence
  (weights softmax(-||a_i - b_j||^2)), then the soft location mu of that neighbour back in the first sequence;
  the loss (i - mu)^2, in both directions (sentence -> clips -> sentences and clip -> sentences -> clips).
"""
from __future__ import annotations

import torch
from torch.nn import functional as F

from trainer.losses import widen  # at least float32: bf16 autocast outputs widened, float64 kept


def hinge_contrastive(x: torch.Tensor, y: torch.Tensor, margin: float) -> torch.Tensor:
    """Eq. 1 over a batch of positive pairs x [N, D], y [N, D] (cosine similarity; mean over N x N)."""
    s = F.normalize(widen(x), dim=-1) @ F.normalize(widen(y), dim=-1).T
    pos = s.diagonal()
    off = ~torch.eye(s.shape[0], dtype=torch.bool, device=s.device)
    cost = (F.relu(margin + s - pos[:, None]) + F.relu(margin + s - pos[None, :])) * off
    return cost.sum() / s.shape[0] ** 2


def cluster(x: torch.Tensor, y: torch.Tensor, margin: float) -> torch.Tensor:
    """Eq. 3 for one level: negatives of x pushed apart, negatives of y pushed apart (mean of the two)."""
    return (hinge_contrastive(x, x, margin) + hinge_contrastive(y, y, margin)) / 2


def _distance(a: torch.Tensor, b: torch.Tensor, how: str) -> torch.Tensor:
    """Squared distances [B, N, M] of a [B, N, D] to b [B, M, D]: summed (paper) or averaged (code) over D."""
    d = (a[:, :, None] - b[:, None]).pow(2)
    return d.sum(-1) if how == "sum" else d.mean(-1)


def soft_neighbour(a: torch.Tensor, b: torch.Tensor, b_mask: torch.Tensor, how: str) -> torch.Tensor:
    """Soft nearest neighbours [B, N, D] in b [B, M, D] (valid b_mask [B, M]) of every a [B, N, D] (eq. 6)."""
    weights = torch.softmax((-_distance(a, b, how)).masked_fill(~b_mask[:, None], float("-inf")), dim=-1)
    return weights @ b


def cycle_errors(a: torch.Tensor, a_mask: torch.Tensor, b: torch.Tensor, b_mask: torch.Tensor,
                 how: str) -> torch.Tensor:
    """(i - mu_i)^2 [B, N] for each start i of a: a -> soft neighbour in b -> soft location in a (eq. 7-8)."""
    back = soft_neighbour(a, b, b_mask, how)
    beta = torch.softmax((-_distance(back, a, how)).masked_fill(~a_mask[:, None], float("-inf")), dim=-1)
    index = torch.arange(a.shape[1], device=a.device, dtype=beta.dtype)
    mu = beta @ index
    return (index[None] - mu).pow(2) * a_mask


def sample_starts(mask: torch.Tensor, samples: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Boolean [B, N]: `samples` valid start points per sequence drawn without replacement (all when 0 or
    when a sequence has fewer)."""
    if samples <= 0:
        return mask
    noise = torch.rand(mask.shape, generator=generator, device=mask.device).masked_fill(~mask, 2.0)
    rank = noise.argsort(dim=1).argsort(dim=1)
    return mask & (rank < samples)


def cycle_consistency(clips: torch.Tensor, sentences: torch.Tensor, mask: torch.Tensor, how: str = "sum",
                      samples: int = 0, normalize: bool = False,
                      generator: torch.Generator | None = None) -> torch.Tensor:
    """l_CMC per sequence [B]: mean error over the sampled starts of each direction, the two directions summed.
    clips, sentences [B, N, D] with the valid positions mask [B, N] (a clip and its sentence share position)."""
    clips, sentences = widen(clips), widen(sentences)
    if normalize:
        clips, sentences = F.normalize(clips, dim=-1), F.normalize(sentences, dim=-1)
    total = clips.new_zeros(clips.shape[0])
    for a, b in ((sentences, clips), (clips, sentences)):
        picked = sample_starts(mask, samples, generator).to(a.dtype)
        errors = cycle_errors(a, mask, b, mask, how)
        total = total + (errors * picked).sum(1) / picked.sum(1).clamp(min=1)
    return total
