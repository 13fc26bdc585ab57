"""`stg` (Chen et al. CVPR 2024): the local branch plus a global branch, projections f, g of pooled frame
vectors and of the sentence vector, trained with L_global + L_local."""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from trainer.methods.stg.config import HeadConfig
from trainer.methods.stg.local import LocalHead


class StgHead(LocalHead):
    has_global = True

    def __init__(self, dims: dict[str, int], cfg: HeadConfig):
        super().__init__(dims, cfg)
        text_in = dims["sentence"] if cfg.global_text == "sentence" else dims["words"]
        self.vis_proj_g = nn.Linear(dims["global"], cfg.dim)
        self.lang_proj_g = nn.Linear(text_in, cfg.dim)

    def video_embedding(self, frames: torch.Tensor) -> torch.Tensor:
        """Per-frame global embeddings f(v) [..., d] of frame vectors [..., Dg] (temporal grounding)."""
        return self.vis_proj_g(frames.to(self.vis_proj_g.weight.dtype))

    def global_video(self, frames: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
        """Clip embedding [B, d]: frame vectors [B, F, Dg] pooled over the valid frames, then projected."""
        frames = frames.to(self.vis_proj_g.weight.dtype)
        if self.cfg.global_pool == "max":
            pooled = frames.masked_fill(~frame_mask[..., None], float("-inf")).amax(1)
            pooled = torch.where(frame_mask.any(1, keepdim=True), pooled, torch.zeros_like(pooled))
        else:
            m = frame_mask.to(frames.dtype)[..., None]
            pooled = (frames * m).sum(1) / m.sum(1).clamp(min=1)
        return self.vis_proj_g(pooled)

    def global_text(self, sentence: torch.Tensor, words: torch.Tensor | None = None,
                    word_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Sentence embedding [B, d] from the sentence vector [B, Ds] or the masked max of words [B, W, Dw]."""
        if self.cfg.global_text == "sentence":
            return self.lang_proj_g(sentence.to(self.lang_proj_g.weight.dtype))
        if words is None or word_mask is None:
            raise ValueError("head.global_text=max_words needs the word tokens and their mask")
        w = words.to(self.lang_proj_g.weight.dtype).masked_fill(~word_mask[..., None], float("-inf")).amax(1)
        return self.lang_proj_g(torch.where(word_mask.any(1, keepdim=True), w, torch.zeros_like(w)))

    def selection_projections(self) -> tuple[Callable, Callable]:
        """The global projections (paper appendix 7.1: "the text and video projection layers from the global
        representation are used"): f for frame vectors and grid tokens, g for words and sentences."""
        if self.dims["grid"] != self.dims["global"] or self.lang_proj_g.in_features != self.dims["words"]:
            raise ValueError(f"projected selection needs grid and global ({self.dims['grid']}, "
                             f"{self.dims['global']}) and word and sentence features of equal widths")
        return self.vis_proj_g, self.lang_proj_g
