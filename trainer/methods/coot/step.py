"""One COOT training step's computation: both branches -> embeddings gathered over ranks -> loss terms.

Terms (weights in coot.loss; a weight of 0 skips the term): "clip" (clip-sentence alignment), "video"
(video-paragraph), "global" (g_v, g_p), "cluster_clip" (clips and sentences of the batch pushed apart),
"cluster_video" (videos and paragraphs), "cycle" (cross-modal cycle consistency within each video).
The loss is sum_k weight_k x term_k (COOT eq. 9 with every term weighted).
"""
from __future__ import annotations

import torch
from torch import nn

from pipeline.config import ConfigError
from trainer.methods.coot.losses import cluster, cycle_consistency, hinge_contrastive
from trainer.distributed import World, gather
from trainer.train_config import TrainConfig

TERMS = ("clip", "video", "global", "cluster_clip", "cluster_video", "cycle")
# Validation values (trainer.validation; optim.monitor): R@1 in percent of text->video (t2v) and video->text
# (v2t) retrieval over the held-out items, per level, and their sums, COOT appendix A.1's plateau metrics
# ("the sum of R@1 ... for clip-sentence and sentence-clip retrieval on Youcook2", video-paragraph on ActivityNet).
VALIDATION_KEYS = ("clip_t2v_r1", "clip_v2t_r1", "clip_r1_sum", "video_t2v_r1", "video_v2t_r1", "video_r1_sum")


def recall_at_1(scores: torch.Tensor) -> float:
    """Percent of rows whose diagonal entry beats every other entry of the row (a tie counts against it: the
    rank rule of eval.metrics.retrieval's paper protocol)."""
    diagonal = scores.diagonal()[:, None]
    return float(100.0 * ((scores >= diagonal).sum(1) == 1).double().mean())


def term_weights(cfg: TrainConfig) -> dict[str, float]:
    c = cfg.coot.loss
    return {"clip": c.clip_weight, "video": c.video_weight, "global": c.global_weight,
            "cluster_clip": c.cluster_clip_weight, "cluster_video": c.cluster_video_weight, "cycle": c.cycle_weight}


class CootModel(nn.Module):
    def __init__(self, head: nn.Module, cfg: TrainConfig, world: World | None = None):
        super().__init__()
        self.head, self.cfg, self.world = head, cfg, world or World()
        self.weights = {k: w for k, w in term_weights(cfg).items() if w > 0}
        if not self.weights:
            raise ConfigError("every coot.loss weight is 0: nothing to train")
        # without the video/global terms (or the cycle term) some parameters get no gradient
        self.unused_parameters = len(self.weights) < len(TERMS)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Loss terms of a batch of videos (trainer.methods.coot.dataset): {"loss": weighted sum, terms...}."""
        video = self.head.encode_video(batch["clip_frames"], batch["clip_frame_mask"], batch["clip_mask"],
                                       batch["video_frames"], batch["video_mask"])
        text = self.head.encode_text(batch["words"], batch["word_mask"], batch["clip_mask"])
        w, c = self.world, self.cfg.coot.loss
        mask = gather(batch["clip_mask"], w)
        clips, sentences = gather(video.items, w), gather(text.items, w)
        terms: dict[str, torch.Tensor] = {}
        if "clip" in self.weights:
            terms["clip"] = hinge_contrastive(clips[mask], sentences[mask], c.clip_margin)
        if "cluster_clip" in self.weights:
            terms["cluster_clip"] = cluster(clips[mask], sentences[mask], c.cluster_clip_margin)
        if "video" in self.weights or "cluster_video" in self.weights:
            whole_v, whole_p = gather(video.whole, w), gather(text.whole, w)
            if "video" in self.weights:
                terms["video"] = hinge_contrastive(whole_v, whole_p, c.video_margin)
            if "cluster_video" in self.weights:
                terms["cluster_video"] = cluster(whole_v, whole_p, c.cluster_video_margin)
        if "global" in self.weights:
            terms["global"] = hinge_contrastive(gather(video.context, w), gather(text.context, w), c.global_margin)
        if "cycle" in self.weights:
            # per video on this rank (its own sequences), then the mean over the global batch
            local = cycle_consistency(video.items, text.items, batch["clip_mask"], c.cycle_distance,
                                      c.cycle_samples, c.cycle_normalize)
            terms["cycle"] = gather(local, w).mean()
        total = sum(self.weights[k] * v for k, v in terms.items())
        return {"loss": total, **terms}

    validation_keys = VALIDATION_KEYS

    def validation_outputs(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The batch's clip, sentence, video and paragraph embeddings (L2-normalised, gathered over ranks)."""
        video = self.head.encode_video(batch["clip_frames"], batch["clip_frame_mask"], batch["clip_mask"],
                                       batch["video_frames"], batch["video_mask"])
        text = self.head.encode_text(batch["words"], batch["word_mask"], batch["clip_mask"])
        w = self.world
        mask = gather(batch["clip_mask"], w)
        parts = {"clip": gather(video.items, w)[mask], "sentence": gather(text.items, w)[mask],
                 "video": gather(video.whole, w), "paragraph": gather(text.whole, w)}
        return {k: nn.functional.normalize(v.float(), dim=-1) for k, v in parts.items()}

    def evaluate(self, outputs: list[dict[str, torch.Tensor]]) -> dict[str, float]:
        """VALIDATION_KEYS over every held-out item: cosine similarities, text rows against video columns."""
        cat = {k: torch.cat([o[k] for o in outputs]) for k in outputs[0]}
        out: dict[str, float] = {}
        for level, text in (("clip", "sentence"), ("video", "paragraph")):
            scores = cat[text] @ cat[level].T
            out[f"{level}_t2v_r1"], out[f"{level}_v2t_r1"] = recall_at_1(scores), recall_at_1(scores.T)
            out[f"{level}_r1_sum"] = out[f"{level}_t2v_r1"] + out[f"{level}_v2t_r1"]
        return out
