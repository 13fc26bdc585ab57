"""Frame selection: which T of a sample's U candidate frames train the head (paper Sec. 3.2, appendix 7.1).

The similarity P [U, K] between the frames (frame vectors, grid tokens, or both averaged) and the text (word
tokens, or the sentence vector) is turned into a transport plan Q by Sinkhorn-Knopp with uniform marginals over
the valid frames (1/U) and valid words (1/K) (eq. 2-3); a frame's similarity to a text token over its grid tokens
is their sum (Sec. 5.5) or mean (`region_reduce`). Every frame carries the same mass 1/U in Q, so a frame is
ranked by what its row of Q says about it (`score`):
  - "similarity": sum_k Q[u,k] P[u,k], the similarity the plan routes through the frame (the paper's "top T
    aggregated similarity sum over each word" under the assignment; default),
  - "peak":       max_k Q[u,k], how firmly the plan assigns the frame to one word,
  - "per_word":   the words take turns (strongest first) picking their highest-mass frame not yet taken,
                  the "best frame per word" reading of the code's `argmaxes`.
The T best valid frames are kept in temporal order. With the sentence as the text (global T) a sample has one
text column, which makes every plan constant (each frame 1/U) and Sinkhorn the same as top-k; so the columns are
the sentences of the whole batch (`sentence_columns="batch"`) and a frame is ranked by its own sentence's column:
it scores high when it matches its narration more than the batch's other narrations. "topk" ranks frames by their
mean similarity to the valid words, or to the own sentence (no transport); "random" keeps T valid frames drawn
with torch's generator (saved in checkpoints, so resume stays exact); "none" keeps every candidate inside the
narration's span (a variable T, padded and masked; at least the nearest one) or the T centred ones. Selection is
computed without gradient: indices are discrete and the projections it may use run under no_grad.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from trainer.methods.stg.config import SelectionConfig

NEG = -1e9  # finite "minus infinity": keeps log-domain arithmetic free of inf - inf
Projection = Callable[[torch.Tensor], torch.Tensor]


def sinkhorn(logits: torch.Tensor, row_mask: torch.Tensor, col_mask: torch.Tensor,
             iterations: int) -> torch.Tensor:
    """Q = diag(a) exp(logits) diag(b) [B, U, K] with rows summing to 1/U_valid and columns to 1/K_valid.

    Log-domain scalings (stable for small epsilon); masked rows/columns get exactly zero mass. The last
    update fixes the columns, so rows are exact only at convergence."""
    valid = row_mask[:, :, None] & col_mask[:, None, :]
    logits = (logits if logits.dtype == torch.float64 else logits.float()).masked_fill(~valid, NEG)
    log_a = torch.where(row_mask, -torch.log(row_mask.sum(1, keepdim=True).clamp(min=1).to(logits.dtype)), NEG)
    log_b = torch.where(col_mask, -torch.log(col_mask.sum(1, keepdim=True).clamp(min=1).to(logits.dtype)), NEG)
    f = torch.zeros_like(log_a)
    g = torch.zeros_like(log_b)
    for _ in range(iterations):
        f = torch.where(row_mask, log_a - torch.logsumexp(logits + g[:, None, :], dim=2), NEG)
        g = torch.where(col_mask, log_b - torch.logsumexp(logits + f[:, :, None], dim=1), NEG)
    plan = torch.exp(logits + f[:, :, None] + g[:, None, :])
    return plan * valid


def similarity(video: torch.Tensor, text: torch.Tensor, normalize: bool, region_reduce: str = "sum") -> torch.Tensor:
    """P [B, U, K] from frame vectors [B, U, D] or grid tokens [B, U, N, D] (sum or mean over the N tokens) and
    text tokens [B, K, D]."""
    if normalize:
        video = torch.nn.functional.normalize(video.float(), dim=-1)
        text = torch.nn.functional.normalize(text.float(), dim=-1)
    if video.dim() == 4:
        sim = torch.einsum("bund,bkd->buk", video.float(), text.float())
        return sim / video.shape[2] if region_reduce == "mean" else sim
    return torch.einsum("bud,bkd->buk", video.float(), text.float())


def rank_by_plan(plan: torch.Tensor, sim: torch.Tensor, score: str) -> torch.Tensor:
    """Per-frame score [B, U] from the plan (see the module docstring)."""
    if score == "similarity":
        return (plan * sim).sum(-1)
    if score == "peak":
        return plan.amax(-1)
    raise ValueError(f"unknown score {score!r}")


def per_word_picks(plan: torch.Tensor, frame_mask: torch.Tensor, word_mask: torch.Tensor,
                   keep: int) -> torch.Tensor:
    """Frame indices [B, keep]: valid words in turn (strongest plan entry first) take their best free frame;
    padding frames are taken only when no valid frame is left."""
    b, u, _ = plan.shape
    order = plan.amax(1).masked_fill(~word_mask, -1.0).argsort(dim=1, descending=True)  # [B, K]
    n_words = word_mask.sum(1).clamp(min=1)
    base = plan.masked_fill(~frame_mask[:, :, None], -1.0)
    taken = torch.zeros(b, u, dtype=torch.bool, device=plan.device)
    rows = torch.arange(b, device=plan.device)
    picks = []
    for step in range(keep):
        word = order[rows, step % n_words]                                   # [B]
        cand = base[rows, :, word].masked_fill(taken, -2.0)                  # [B, U]
        pick = cand.argmax(1)
        taken[rows, pick] = True
        picks.append(pick)
    return torch.stack(picks, 1)


def top_frames(scores: torch.Tensor, frame_mask: torch.Tensor, keep: int) -> torch.Tensor:
    """Indices [B, keep] of the best-scoring valid frames (padding last)."""
    scores = scores.float().masked_fill(~frame_mask, float("-inf"))
    return scores.topk(keep, dim=1).indices


def centred_frames(center: torch.Tensor, n_frames: int, keep: int) -> torch.Tensor:
    """The `keep` consecutive candidate indices centred on `center` (candidate units), inside [0, U)."""
    first = torch.round(center.float() - keep / 2.0).long().clamp(0, n_frames - keep)
    return first[:, None] + torch.arange(keep, device=center.device)


def span_frames(center: torch.Tensor, half_span: torch.Tensor, frame_mask: torch.Tensor) -> tuple[torch.Tensor,
                                                                                                torch.Tensor]:
    """(index [B, T], mask [B, T]): the valid candidates inside [center - half_span, center + half_span]
    (candidate units), in temporal order, T the most any sample has; a narration shorter than a candidate
    period keeps its nearest valid candidate."""
    b, u = frame_mask.shape
    pos = torch.arange(u, device=frame_mask.device)
    offset = (pos[None, :] - center.float()[:, None]).abs()
    inside = (offset <= half_span.float()[:, None] + 1e-4) & frame_mask
    nearest = offset.masked_fill(~frame_mask, float("inf")).argmin(1)
    rows = torch.arange(b, device=frame_mask.device)
    inside[rows, nearest] |= frame_mask[rows, nearest] & ~inside.any(1)
    keep = max(1, int(inside.sum(1).max()))
    index = ((~inside).long() * u + pos).argsort(dim=1)[:, :keep]  # inside frames first, each run in time order
    return index, inside.gather(1, index)


@dataclass(frozen=True)
class Selection:
    index: torch.Tensor  # [B, T] candidate indices in temporal order
    mask: torch.Tensor   # [B, T] True where the kept frame is a real (not padding) frame


class FrameSelector:
    """Applies a SelectionConfig to a batch; `project_video`/`project_text` map features into the space
    where similarity is measured (the head's global projections for space="projected")."""

    def __init__(self, cfg: SelectionConfig):
        self.cfg = cfg

    @torch.no_grad()
    def __call__(self, batch: dict[str, torch.Tensor], project_video: Projection | None = None,
                 project_text: Projection | None = None) -> Selection:
        cfg, frame_mask = self.cfg, batch["frame_mask"]
        if cfg.method == "none" and cfg.none_frames == "span":
            return Selection(*span_frames(batch["center"], batch["half_span"], frame_mask))
        if cfg.method == "none":
            index = centred_frames(batch["center"], frame_mask.shape[1], cfg.keep)
        elif cfg.method == "random":
            index = top_frames(torch.rand(frame_mask.shape, device=frame_mask.device), frame_mask, cfg.keep)
        else:
            index = self._ranked(batch, project_video, project_text)
        index = index.sort(dim=1).values
        return Selection(index, frame_mask.gather(1, index))

    def _ranked(self, batch, project_video, project_text) -> torch.Tensor:
        """Indices [B, keep] of the frames `topk` or `sinkhorn` ranks best."""
        cfg, frame_mask = self.cfg, batch["frame_mask"]
        videos, text, word_mask = self._features(batch, project_video, project_text)
        batch_columns = cfg.text == "sentence" and cfg.sentence_columns == "batch" and cfg.method == "sinkhorn"
        if cfg.text == "sentence":  # [B, D] -> the own sentence [B, 1, D], or every sentence [B, B, D]
            text = text[None].expand(text.shape[0], -1, -1) if batch_columns else text[:, None, :]
            word_mask = torch.ones(text.shape[:2], dtype=torch.bool, device=text.device)
        # video=both: the mean of the frame and the region similarities (Table 5, "Average over last two")
        sim = sum(similarity(v, text, cfg.normalize, cfg.region_reduce) for v in videos) / len(videos)
        if cfg.method == "topk":
            w = word_mask.float()
            return top_frames((sim * w[:, None, :]).sum(-1) / w.sum(-1, keepdim=True).clamp(min=1),
                              frame_mask, cfg.keep)
        plan = sinkhorn(sim / cfg.epsilon, frame_mask, word_mask, cfg.iterations)
        if batch_columns:  # sample b's own column b: [B, U, 1]
            plan, sim = (x.diagonal(dim1=0, dim2=2).T[:, :, None] for x in (plan, sim))
            word_mask = word_mask[:, :1]
        if cfg.score == "per_word":
            return per_word_picks(plan, frame_mask, word_mask, cfg.keep)
        return top_frames(rank_by_plan(plan, sim, cfg.score), frame_mask, cfg.keep)

    def _features(self, batch, project_video, project_text):
        """(videos: frame vectors [B, U, D] and/or grid tokens [B, U, N, D], text [B, K, D] words or [B, D]
        sentences, word mask [B, K])."""
        cfg = self.cfg
        with torch.autocast(batch["frame_mask"].device.type, enabled=False):
            videos = []
            if cfg.video in ("frames", "both"):
                videos.append(batch["global"].float())
            if cfg.video in ("regions", "both"):
                grid = batch["grid"]
                videos.append(grid.reshape(*grid.shape[:2], -1, grid.shape[-1]).float())  # [B, U, N, D]
            if cfg.text == "words":
                text = batch["words"].float()
                word_mask = batch["word_mask"] if cfg.mask_padding else torch.ones_like(batch["word_mask"])
            else:
                text, word_mask = batch["sentence"].float(), None
            if cfg.space == "projected":
                if project_video is None or project_text is None:
                    raise ValueError("selection.space=projected needs the head's projections")
                videos, text = [project_video(v).float() for v in videos], project_text(text).float()
            elif any(v.shape[-1] != text.shape[-1] for v in videos):
                raise ValueError(f"selection.space=raw compares {videos[0].shape[-1]}-d video with "
                                 f"{text.shape[-1]}-d text: use space=projected for this encoder")
        return videos, text, word_mask
