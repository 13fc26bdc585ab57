"""`wsra` (weak supervision and referring attention): snippet vectors v_t and the query vector t are projected
to the joint space (d), the scoring function phi(v, t) = sigmoid(FC(concat(v, t))) rates every snippet, and
the referring attention alpha = softmax_t(phi / T) (eq. 2) pools the foreground v_f = sum_t alpha_t v_t and the
background v_b = sum_t (1 - alpha_t) v_t / (T - 1) (eq. 1).

phi's first linear layer on concat(v, t) is W_v v + W_t t + b: it is applied as two maps whose outputs
broadcast, so every (video, query, snippet) triple is scored without materialising the concatenations.
With wsra.head.score_layers = 0 phi is that single layer (the paper's literal FC): then
phi(v, t) = sigmoid(a(v) + b(t)) ranks the snippets of a video the same way for every query, which is why
the default puts one hidden layer (width d, ReLU) between concat(v, t) and the score.
"""
from __future__ import annotations

import torch
from torch import nn

from trainer.attention import masked_softmax
from trainer.methods.wsra.config import WsraHeadConfig


class WsraHead(nn.Module):
    has_global = False

    def __init__(self, dims: dict[str, int], cfg: WsraHeadConfig):
        super().__init__()
        self.dims, self.cfg, d = dict(dims), cfg, cfg.dim
        self.vis_proj = nn.Linear(dims["global"], d)
        self.lang_proj = nn.Linear(dims["sentence"] if cfg.global_text == "sentence" else dims["words"], d)
        width = d if cfg.score_layers else 1
        self.score_video = nn.Linear(d, width, bias=False)   # W_v of the first FC on concat(v, t)
        self.score_text = nn.Linear(d, width)                # W_t and the bias
        rest: list[nn.Module] = []
        for k in range(cfg.score_layers):
            rest += [nn.ReLU(), nn.Linear(d, d if k + 1 < cfg.score_layers else 1)]
        self.score_rest = nn.Sequential(*rest)

    # ---- embeddings ------------------------------------------------------------------------------------------
    def snippets(self, video: torch.Tensor) -> torch.Tensor:
        """Snippet vectors [..., Dg] -> [..., d]."""
        return self.vis_proj(video.to(self.vis_proj.weight.dtype))

    def query(self, sentence: torch.Tensor, words: torch.Tensor | None = None,
              word_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Query vector [B, d] from the sentence vector [B, Ds], or (head.global_text=max_words) the masked
        max of the word tokens [B, W, Dw]."""
        if self.cfg.global_text == "sentence":
            return self.lang_proj(sentence.to(self.lang_proj.weight.dtype))
        if words is None or word_mask is None:
            raise ValueError("head.global_text=max_words needs the word tokens and their mask")
        w = words.to(self.lang_proj.weight.dtype).masked_fill(~word_mask[..., None], float("-inf")).amax(-2)
        return self.lang_proj(torch.where(word_mask.any(-1, keepdim=True), w, torch.zeros_like(w)))

    # ---- scoring ---------------------------------------------------------------------------------------------
    def phi(self, v: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """phi(v, t) in (0, 1) for broadcastable v [..., d] and t [..., d] -> [...]."""
        first = self.score_video(v) + self.score_text(t)
        return torch.sigmoid(self.score_rest(first)[..., 0] if len(self.score_rest) else first[..., 0])

    def phi_pairs(self, v: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Every (video, query, snippet): v [Bv, T, d], t [Bt, d] -> [Bv, Bt, T]."""
        return self.phi(v[:, None], t[None, :, None])

    def snippet_scores(self, v: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """phi(v_t, t) [..., T] of every snippet of v [..., T, d] with the query t [..., d]."""
        return self.phi(v, t[..., None, :])

    def attention_from(self, scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Referring attention alpha [..., T] (eq. 2) from snippet scores phi [..., T] over the valid snippets."""
        return masked_softmax(scores / self.cfg.attention_temperature, mask, dim=-1)

    def attention(self, v: torch.Tensor, mask: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Referring attention alpha [..., T] over the valid snippets of v [..., T, d] for the query t [..., d]."""
        return self.attention_from(self.snippet_scores(v, t), mask)

    @staticmethod
    def fore_background(v: torch.Tensor, mask: torch.Tensor, alpha: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(v_f, v_b) [..., d] of eq. 1 over the valid snippets (T = their count)."""
        m = mask.to(v.dtype)
        fore = (alpha[..., None] * v).sum(-2)
        back = (((1 - alpha) * m)[..., None] * v).sum(-2) / (m.sum(-1, keepdim=True) - 1).clamp(min=1)
        return fore, back
