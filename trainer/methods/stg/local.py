"""`comma` (Tan et al. NeurIPS 2021) and the local branch of `stg`: token projections + the attention stack,
pairwise for training, matched for evaluation, with the attention rollout heatmap that spatial grounding reads."""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from trainer.attention import LocalStack, Tokens, masked_mean, rollout_chain
from trainer.methods.stg.config import HeadConfig


@dataclass
class PairOutput:
    """Pooled local embeddings of every (video, text) pair: the video attended by the text and vice versa."""
    video: torch.Tensor                # [Bv, Bt, d] mean over valid regions
    text: torch.Tensor                 # [Bv, Bt, d] mean over valid words
    words: torch.Tensor | None = None  # [Bv, Bt, W, d] per-word outputs (word-level loss)


def cells_of(grid: torch.Tensor, frames_dim: int = 1) -> int:
    """Tokens per frame: 7x7 (clip) or T'x7x7 (s3d) for grid [.., F, *cells, D]."""
    return math.prod(grid.shape[frames_dim + 1:-1])


class LocalHead(nn.Module):
    """Projections of grid tokens (f') and word tokens (g') and the local stack (CoMMA's module; with
    head.cross_projections its cross layers carry eq. 2's W_K, W_Q, W_V).

    Attention mode follows `self.training` ("train" / "eval" scores and residuals of HeadConfig) unless a
    method is given `mode=` explicitly."""

    has_global = False

    def __init__(self, dims: dict[str, int], cfg: HeadConfig):
        super().__init__()
        self.dims, self.cfg, d = dict(dims), cfg, cfg.dim
        if cfg.global_feature == "grid_mean" and dims["grid"] != dims["global"]:
            raise ValueError(f"head.global_feature=grid_mean needs grid and global features of one width, got "
                             f"{dims['grid']} and {dims['global']}")
        self.vis_proj = nn.Linear(dims["grid"], d)
        self.lang_proj = nn.Linear(dims["words"], d)
        self.stack = LocalStack(cfg.layers, d, cfg.heads, {"train": (cfg.train_score, cfg.train_residual),
                                                           "eval": (cfg.eval_score, cfg.eval_residual)},
                                cross_projections=cfg.cross_projections)
        self.word_value = nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Linear(d, d)) if cfg.word_values else None

    def mode(self, mode: str | None = None) -> str:
        return mode or ("train" if self.training else "eval")

    # ---- token projections ---------------------------------------------------------------------------------
    def frame_vectors(self, global_: torch.Tensor, grid: torch.Tensor | None) -> torch.Tensor:
        """Frame vectors [..., Dg] as `head.global_feature` defines them: the stored global vectors, or the mean
        of each frame's grid tokens [..., *cells, Dg] (equal widths, checked at start-up; grid may be None for
        `cls`)."""
        if self.cfg.global_feature == "cls":
            return global_
        cells = grid.reshape(*grid.shape[:global_.dim() - 1], -1, grid.shape[-1])
        return cells.float().mean(-2).to(global_.dtype)

    def encode_video(self, grid: torch.Tensor, frame_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """grid [B, F, *cells, Dg], frame_mask [B, F] -> region tokens V0 [B, R, d], region mask [B, R]."""
        b, f, n = grid.shape[0], grid.shape[1], cells_of(grid)
        tokens = self.vis_proj(grid.reshape(b, f * n, grid.shape[-1]).to(self.vis_proj.weight.dtype))
        return tokens, frame_mask[:, :, None].expand(b, f, n).reshape(b, f * n)

    def encode_text(self, words: torch.Tensor) -> torch.Tensor:
        """words [B, W, Dw] -> word tokens T0 [B, W, d]."""
        return self.lang_proj(words.to(self.lang_proj.weight.dtype))

    def values(self, text_tokens: torch.Tensor) -> torch.Tensor:
        """CoMMA eq. 6 value vectors S^val = MLP(S_0) [B, W, d] of projected word tokens."""
        if self.word_value is None:
            raise ValueError("this head has no word value MLP (head.word_values=false)")
        return self.word_value(text_tokens)

    # ---- pairs ----------------------------------------------------------------------------------------------
    def pairs(self, video: torch.Tensor, video_mask: torch.Tensor, text: torch.Tensor, text_mask: torch.Tensor,
              mode: str | None = None, keep_words: bool = False) -> PairOutput:
        """Every (video, text) pair: V0 [Bv, R, d] x T0 [Bt, W, d] -> PairOutput [Bv, Bt, ...]. With
        head.pair_chunk > 0 in training, chunks of videos are recomputed in backward (activation
        checkpointing) so memory holds one chunk's attention activations at a time."""
        mode, chunk = self.mode(mode), self.cfg.pair_chunk
        if not (chunk and torch.is_grad_enabled() and chunk < video.shape[0]):
            return self._pairs(video, video_mask, text, text_mask, mode, keep_words)
        parts = [checkpoint(self._pairs, video[i:i + chunk], video_mask[i:i + chunk], text, text_mask, mode,
                            keep_words, use_reentrant=False) for i in range(0, video.shape[0], chunk)]
        words = torch.cat([p.words for p in parts]) if keep_words else None
        return PairOutput(torch.cat([p.video for p in parts]), torch.cat([p.text for p in parts]), words)

    def _pairs(self, video, video_mask, text, text_mask, mode: str, keep_words: bool) -> PairOutput:
        x = Tokens(video[:, None], text[None], video_mask[:, None], text_mask[None], paired=False)
        x = self.stack(x, mode)
        shape = (video.shape[0], text.shape[0])
        v = masked_mean(x.video, x.video_mask).expand(*shape, -1)
        t = masked_mean(x.text, x.text_mask).expand(*shape, -1)
        words = x.text.expand(*shape, *x.text.shape[-2:]) if keep_words else None
        return PairOutput(v, t, words)

    def matched(self, video: torch.Tensor, video_mask: torch.Tensor, text: torch.Tensor, text_mask: torch.Tensor,
                mode: str | None = None, record: list | None = None) -> Tokens:
        """Video i with text i only (evaluation): the stack's final tokens [B, 1, ., d]."""
        x = Tokens(video[:, None], text[:, None], video_mask[:, None], text_mask[:, None], paired=True, record=record)
        return self.stack(x, self.mode(mode))

    # ---- evaluation ---------------------------------------------------------------------------------------
    def _chunks(self, grid, words, word_mask, frame_mask):
        """Inputs with a leading chunk axis: grid [C, F, *cells, D]; one query text is shared by every chunk."""
        if words.dim() == 2:
            words, word_mask = words[None], word_mask[None]
        if words.shape[0] != grid.shape[0]:
            words = words.expand(grid.shape[0], *words.shape[1:])
            word_mask = word_mask.expand(grid.shape[0], *word_mask.shape[1:])
        if frame_mask is None:
            frame_mask = torch.ones(grid.shape[:2], dtype=torch.bool, device=grid.device)
        return grid, words, word_mask.bool(), frame_mask.bool()

    @torch.no_grad()
    def rollout(self, grid: torch.Tensor, words: torch.Tensor, word_mask: torch.Tensor,
                frame_mask: torch.Tensor | None = None, mode: str | None = "eval") -> torch.Tensor:
        """Attention-rollout heatmaps [C, F, *cells] (e.g. [C, 16, 7, 7]) for C chunks of F frames each.

        grid [C, F, *cells, Dg] (stored grid tokens of each chunk's frames), words [W, Dw] or [C, W, Dw] and
        word_mask [W] / [C, W] (one query text, or one per chunk), frame_mask [C, F] (False for padding
        frames: they are neither queries nor keys). Each chunk's map is a distribution over its valid region
        tokens (sums to 1): CA_last region->word @ text self-attention @ CA_first word->region, averaged
        over query regions (reference_code_model_notes §5). Runs the stack in eval mode by default."""
        grid, words, word_mask, frame_mask = self._chunks(grid, words, word_mask, frame_mask)
        video, video_mask = self.encode_video(grid, frame_mask)
        record: list[dict] = []
        x = self.matched(video, video_mask, self.encode_text(words), word_mask, mode=mode, record=record)
        heat = rollout_chain(record, x.video_mask, x.text_mask)[:, 0]             # [C, R]
        return heat.reshape(grid.shape[0], grid.shape[1], *grid.shape[2:-1]).float()

    @torch.no_grad()
    def attention_maps(self, grid: torch.Tensor, words: torch.Tensor, word_mask: torch.Tensor,
                       frame_mask: torch.Tensor | None = None, mode: str | None = "eval") -> list[dict]:
        """The stack's attention maps per layer, first to last, for C chunks (inputs as in `rollout`):
        {"kind": "cross", "region_to_word": [C, R, W] (softmax over valid words), "word_to_region": [C, W, R]
        (softmax over valid regions)} and {"kind": "self", "text": [C, W, W] (head-averaged text
        self-attention, padding keys 0)}; R = F x cells in frame-major order."""
        grid, words, word_mask, frame_mask = self._chunks(grid, words, word_mask, frame_mask)
        video, video_mask = self.encode_video(grid, frame_mask)
        record: list[dict] = []
        self.matched(video, video_mask, self.encode_text(words), word_mask, mode=mode, record=record)
        return [{k: v[:, 0] if isinstance(v, torch.Tensor) else v for k, v in r.items()} for r in record]

    @torch.no_grad()
    def local_scores(self, grid: torch.Tensor, words: torch.Tensor, word_mask: torch.Tensor,
                     frame_mask: torch.Tensor | None = None, mode: str | None = "eval") -> torch.Tensor:
        """Local similarity <mean regions, mean words> of chunk c with its query [C] (eval mode by default)."""
        grid, words, word_mask, frame_mask = self._chunks(grid, words, word_mask, frame_mask)
        video, video_mask = self.encode_video(grid, frame_mask)
        x = self.matched(video, video_mask, self.encode_text(words), word_mask, mode=mode)
        return (masked_mean(x.video, x.video_mask) * masked_mean(x.text, x.text_mask)).sum(-1)[:, 0]

    def selection_projections(self) -> tuple[Callable, Callable]:
        """Maps of frame/grid features and word/sentence features into the space frame selection uses (the
        local projections f', g': this head has no global ones)."""
        if self.dims["grid"] != self.dims["global"] or self.dims["words"] != self.dims["sentence"]:
            raise ValueError(f"projected selection needs grid and global ({self.dims['grid']}, "
                             f"{self.dims['global']}) and word and sentence features of equal widths")
        return self.vis_proj, self.lang_proj
