"""Contrastive losses over score matrices (row = video, column = text; the diagonal holds the positives).

- "symmetric" (STG eq. 1): -1/N sum_l [log softmax over videos of column l + log softmax over texts of row l]
  at the positive, the positive lowered by the margin delta.
- "milnce" (the released code's MILNCELoss and nce()): mean_i [logsumexp(row i ++ column i) - s_ii]; the
  positive appears twice in the denominator (MIL-NCE with one candidate).
- "comma_eq5" (CoMMA eq. 5, as the paper writes it): sum_i [logsumexp({s_ii} u {s_ij, j != i} u {s_ji, j != i})
  - s_ii]: the positive once, the other texts of video i and the other videos of text i as negatives, summed
  (not averaged) over the batch.
- `word_level` (CoMMA eq. 6): for each valid word j of text t, a softmax over the videos of the scores
  <word j of text t attended by video v, value of word j of text t>, positive v = t.
Embeddings are optionally L2-normalised and scores divided by a temperature (`pair_scores`).
"""
from __future__ import annotations

import torch
from torch.nn import functional as F


def widen(x: torch.Tensor) -> torch.Tensor:
    """At least float32 (bf16/fp16 autocast outputs are widened; float64 stays)."""
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


def pair_scores(video: torch.Tensor, text: torch.Tensor, normalize: bool, temperature: float) -> torch.Tensor:
    """<video, text> over the last axis of equally shaped embeddings (e.g. local [Bv, Bt, d] -> [Bv, Bt])."""
    video, text = widen(video), widen(text)
    if normalize:
        video, text = F.normalize(video, dim=-1), F.normalize(text, dim=-1)
    return (video * text).sum(-1) / temperature


def matrix_scores(video: torch.Tensor, text: torch.Tensor, normalize: bool, temperature: float) -> torch.Tensor:
    """[Bv, Bt] = video [Bv, d] @ text [Bt, d]^T (global embeddings)."""
    video, text = widen(video), widen(text)
    if normalize:
        video, text = F.normalize(video, dim=-1), F.normalize(text, dim=-1)
    return video @ text.T / temperature


def contrastive(scores: torch.Tensor, form: str = "symmetric", margin: float = 0.0) -> torch.Tensor:
    """Loss of a square score matrix [N, N] (or a stack [G, N, N] -> [G] losses)."""
    n = scores.shape[-1]
    eye = torch.eye(n, dtype=torch.bool, device=scores.device)
    s = widen(scores) - margin * eye
    diag = s.diagonal(dim1=-2, dim2=-1)                                       # [.., N]
    if form == "symmetric":
        over_videos = diag - torch.logsumexp(s, dim=-2)                       # column l: texts l vs all videos
        over_texts = diag - torch.logsumexp(s, dim=-1)                        # row l: video l vs all texts
        return -(over_videos + over_texts).mean(-1)
    if form == "milnce":
        both = torch.cat([s, s.transpose(-1, -2)], dim=-1)                    # row i ++ column i
        return (torch.logsumexp(both, dim=-1) - diag).mean(-1)
    if form == "comma_eq5":
        negatives = torch.cat([s.masked_fill(eye, -torch.inf), s.transpose(-1, -2).masked_fill(eye, -torch.inf)],
                              dim=-1)                                         # row i ++ column i, positive out
        every = torch.cat([diag[..., None], negatives], dim=-1)               # the positive once
        return (torch.logsumexp(every, dim=-1) - diag).sum(-1)
    raise ValueError(f"unknown loss form {form!r}")


def word_level(scores: torch.Tensor, word_mask: torch.Tensor, margin: float = 0.0) -> torch.Tensor:
    """CoMMA eq. 6 over word scores [Nv, Nt, W] (or [G, N, N, W] -> [G]) with word_mask [Nt, W] ([G, N, W]):
    the mean over valid (text, word) of -log softmax_v(scores[:, t, j])[t]. (The paper sums; the mean keeps
    the scale independent of batch size and sentence length.)"""
    n = scores.shape[-2]
    eye = torch.eye(n, dtype=torch.bool, device=scores.device)[..., None]   # [Nv, Nt, 1]
    s = widen(scores) - margin * eye
    logp = s - torch.logsumexp(s, dim=-3, keepdim=True)                       # softmax over videos
    positive = logp.diagonal(dim1=-3, dim2=-2).transpose(-1, -2)              # [.., Nt, W]
    m = word_mask.to(positive.dtype)
    return -(positive * m).sum((-1, -2)) / m.sum((-1, -2)).clamp(min=1)


def reduce_groups(losses: torch.Tensor, how: str) -> torch.Tensor:
    """Combine per-group losses [G]: "sum" (the code's 4 DataParallel chunks) or "mean"."""
    return losses.sum() if how == "sum" else losses.mean()
