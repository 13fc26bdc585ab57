"""`coot` (Ging et al. NeurIPS 2020): a video branch over frame vectors and a text branch over word tokens,
each a temporal transformer + Attention-FA (shared by its clips and its whole video / paragraph) and a
contextual transformer. Outputs per video: clip (sentence) vectors theta_i (delta_i) [d], the global context
g_v (g_p) [d] and the video (paragraph) vector theta (delta) [2d] = concat(mean of F_Local, H_context).

    head = CootHead(dims, CootHeadConfig(dim=384, heads=8))
    video = head.encode_video(clip_frames, clip_frame_mask, clip_mask, video_frames, video_mask)
    text = head.encode_text(words, word_mask, clip_mask)
    video.items [B, C, d], video.context [B, d], video.whole [B, 2d]   (same for text)
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from trainer.methods.coot.blocks import ContextualTransformer, TemporalEncoder, init_truncated
from trainer.methods.coot.config import CootHeadConfig


@dataclass
class CootSide:
    """One branch's embeddings of a batch of B videos (paragraphs) of up to C clips (sentences)."""
    items: torch.Tensor        # [B, C, d] clip / sentence vectors (zero where item_mask is False)
    item_mask: torch.Tensor    # [B, C]
    context: torch.Tensor      # [B, d] global context g_v / g_p
    whole: torch.Tensor        # [B, 2d] video / paragraph vector ([B, d] without coot.head.context)


class CootHead(nn.Module):
    has_global = False

    def __init__(self, dims: dict[str, int], cfg: CootHeadConfig):
        super().__init__()
        self.dims, self.cfg, d, c = dict(dims), cfg, cfg.dim, cfg
        self.video_encoder = TemporalEncoder(dims["global"], d, cfg.heads, c)
        self.text_encoder = TemporalEncoder(dims["words"], d, cfg.heads, c)
        self.video_context = ContextualTransformer(d, cfg.heads, c)
        self.text_context = ContextualTransformer(d, cfg.heads, c)
        init_truncated(self, c.init_std)

    @property
    def whole_dim(self) -> int:
        return 2 * self.cfg.dim if self.cfg.context else self.cfg.dim

    def _items(self, encoder: TemporalEncoder, tokens: torch.Tensor, token_mask: torch.Tensor,
               item_mask: torch.Tensor) -> torch.Tensor:
        """Pooled vectors [B, C, d] of the valid items of tokens [B, C, L, D] (only valid items are encoded)."""
        pooled = encoder(tokens[item_mask], token_mask[item_mask])
        out = pooled.new_zeros(*item_mask.shape, pooled.shape[-1])
        out[item_mask] = pooled
        return out

    def encode_video(self, clip_frames: torch.Tensor, clip_frame_mask: torch.Tensor, clip_mask: torch.Tensor,
                     video_frames: torch.Tensor, video_mask: torch.Tensor) -> CootSide:
        """clip_frames [B, C, F, Dg] with masks [B, C, F] and [B, C]; video_frames [B, V, Dg], mask [B, V]."""
        items = self._items(self.video_encoder, clip_frames, clip_frame_mask, clip_mask)
        context = self.video_encoder(video_frames, video_mask)
        return CootSide(items, clip_mask, context, self.video_context(items, clip_mask, context))

    def encode_text(self, words: torch.Tensor, word_mask: torch.Tensor, sentence_mask: torch.Tensor) -> CootSide:
        """words [B, C, W, Dw], word_mask [B, C, W], sentence_mask [B, C]; the paragraph's global context runs
        over the words of all its sentences in order."""
        items = self._items(self.text_encoder, words, word_mask, sentence_mask)
        b, c, w = word_mask.shape
        paragraph_mask = (word_mask & sentence_mask[..., None]).reshape(b, c * w)
        context = self.text_encoder(words.reshape(b, c * w, -1), paragraph_mask)
        return CootSide(items, sentence_mask, context, self.text_context(items, sentence_mask, context))
