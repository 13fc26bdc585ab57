"""One WSRA training step's computation: snippets and queries projected, gathered over ranks, referring
attention, then the loss terms of trainer.methods.wsra.losses ("background", "vas", "instance", "crov"; weights in
wsra.loss, a weight of 0 skips the term). Queries of the same video are never negatives nor pseudo-positives
of each other (the video contains both). The loss is sum_k weight_k x term_k (WSRA eq. 11).
"""
from __future__ import annotations

import torch
from torch import nn

from pipeline.config import ConfigError
from trainer.distributed import World, gather
from trainer.train_config import TrainConfig
from trainer.methods.wsra.losses import (background_loss, cosine_matrix, cross_video_loss, instance_loss, pseudo_positive,
                                 sample_negatives, top_last_k, vas_loss)

TERMS = ("background", "vas", "instance", "crov")


def term_weights(cfg: TrainConfig) -> dict[str, float]:
    c = cfg.wsra.loss
    return {"background": c.background_weight, "vas": c.vas_weight, "instance": c.instance_weight,
            "crov": c.crov_weight}


class WsraModel(nn.Module):
    def __init__(self, head: nn.Module, cfg: TrainConfig, world: World | None = None):
        super().__init__()
        self.head, self.cfg, self.world = head, cfg, world or World()
        self.weights = {k: w for k, w in term_weights(cfg).items() if w > 0}
        if set(self.weights) <= {"crov"}:
            raise ConfigError("wsra.loss: L_crov trains no scoring function; set another weight > 0")
        self.unused_parameters = False  # every term reaches phi and both projections through the attention

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Loss terms of a batch of queries (trainer.methods.wsra.dataset): {"loss": weighted sum, terms...}."""
        head, w, c = self.head, self.world, self.cfg.wsra.loss
        v = gather(head.snippets(batch["snippets"]), w)
        t = gather(head.query(batch["sentence"], batch["words"], batch["word_mask"]), w)
        mask, video = gather(batch["snippet_mask"], w), gather(batch["video"], w)
        phi_pos = head.snippet_scores(v, t)                                          # [B, T]
        alpha = head.attention_from(phi_pos, mask)
        fore, back = head.fore_background(v, mask, alpha)
        terms: dict[str, torch.Tensor] = {}
        if "background" in self.weights:
            terms["background"] = background_loss(head.phi(fore, t), head.phi(back, t), c.background_margin,
                                                  c.background_gamma)
        if set(self.weights) & {"vas", "instance", "crov"}:
            similarity = self._similarity(gather(batch["sentence"], w), fore, t)
            hard, pseudo = top_last_k(similarity, video[:, None] != video[None, :], c.top_k, c.last_k)
            if "vas" in self.weights:
                terms["vas"] = vas_loss(head.phi(fore[:, None], t[None]), hard, c.vas_margin)
            if "instance" in self.weights:
                terms["instance"] = self._instance(v, mask, t, phi_pos, alpha, hard)
            if "crov" in self.weights:
                terms["crov"] = self._cross_video(v, mask, fore, gather(batch["sentence"], w), similarity, pseudo)
        total = sum(self.weights[k] * val for k, val in terms.items())
        return {"loss": total, **terms}

    def _similarity(self, sentence: torch.Tensor, fore: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """[B, B] query similarity that orders the negatives: cosine of the frozen query features, or the
        matching score phi(v_f^i, t^j) (no gradient: it only ranks)."""
        if self.cfg.wsra.loss.rank_by == "text":
            return cosine_matrix(sentence)
        with torch.no_grad():
            return self.head.phi(fore[:, None], t[None]).float()

    def _instance(self, v, mask, t, phi_pos, alpha, hard) -> torch.Tensor:
        head, c = self.head, self.cfg.wsra.loss
        neg = sample_negatives(hard)
        has = neg >= 0
        t_neg = t[neg.clamp(min=0)]
        phi_neg = head.snippet_scores(v, t_neg)                                       # [B, T]
        if c.instance_weights == "frames":
            w_pos, w_neg = alpha, head.attention_from(phi_neg, mask)
        else:  # beta of eq. 4: each snippet's weight over the batch's queries
            rows = torch.arange(v.shape[0], device=v.device)
            beta = torch.softmax(head.phi_pairs(v, t), dim=1)                         # [Bv, Bt, T]
            w_pos, w_neg = beta[rows, rows], beta[rows, neg.clamp(min=0)]
        return instance_loss(w_pos * phi_pos, w_neg * phi_neg, mask, has, c.instance_margin, c.instance_margin_split)

    def _cross_video(self, v, mask, fore, sentence, similarity, pseudo) -> torch.Tensor:
        c = self.cfg.wsra.loss
        other = pseudo_positive(similarity, pseudo)
        has = other >= 0
        u = other.clamp(min=0)
        gate = has & (cosine_matrix(sentence)[torch.arange(len(u), device=u.device), u] > c.crov_threshold)
        return cross_video_loss(fore, v[u], mask[u], gate, c.crov_margin)
