"""The config section of the `coot` method (`coot.*` keys): the head, the loss terms and what a training item
holds. Defaults are the paper's values (COOT: Ging et al. NeurIPS 2020, appendix Table 7, YouCook2 with
HowTo100M features); where the paper is silent the comment says what was chosen. A weight of 0 drops a term.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pipeline.config import ConfigError, at_least


@dataclass(frozen=True)
class CootHeadConfig:
    variant: Literal["full", "tiny"] = "full"       # tiny: d 32, 2 heads (tests)
    dim: int = 384                                  # hidden size d (Table 7: 384)
    heads: int = 8                                  # attention heads (Table 7: 8)
    layers: int = 1                                 # T-Transformer self-attention layers (paper: 1)
    context_layers: int = 1                         # F_Local layers of the contextual transformer (paper: 1)
    ff_mult: int = 1                                # feed-forward width = ff_mult x head.dim (Table 7: 1x)
    af_heads: int = 2                               # Attention-FA heads (Table 7: 2)
    af_mult: int = 2                                # Attention-FA hidden width = af_mult x head.dim (2x)
    pool: Literal["af", "avg", "max"] = "af"        # low-level pooling: Attention-FA or the Table 10 ablations
    context: bool = True                            # CoT's F_Global cross-attention (Table 1 "CoT" ablation)
    dropout: float = 0.05                           # Table 7, YouCook2 + HowTo100M features
    init_std: float = 0.01                          # truncated normal (+-2 std) of linear layers; 0: torch default

    def __post_init__(self) -> None:
        at_least("head", 1, dim=self.dim, heads=self.heads)
        if self.dim % self.heads:
            raise ValueError(f"dim {self.dim} is not divisible by heads {self.heads}")
        if min(self.layers, self.context_layers, self.ff_mult, self.af_heads, self.af_mult) < 1:
            raise ValueError("head: layers, context_layers, ff_mult, af_heads and af_mult must be >= 1")
        if not 0 <= self.dropout < 1 or self.init_std < 0:
            raise ValueError("head: need 0 <= dropout < 1 and init_std >= 0")


@dataclass(frozen=True)
class CootLossConfig:
    clip_weight: float = 1.0                        # l^L_align, clip-sentence (eq. 2)
    video_weight: float = 1.0                       # l^H_align, video-paragraph
    global_weight: float = 1.0                      # l^g_align, global contexts g_v, g_p
    cluster_clip_weight: float = 1.0                # l_cluster over clips and over sentences (eq. 3)
    cluster_video_weight: float = 1.0               # l_cluster over videos and over paragraphs
    cycle_weight: float = 0.001                     # lambda of l_CMC (paper: 0.001 YouCook2, 0.01 ActivityNet)
    clip_margin: float = 0.2                        # beta          (paper: every margin 0.2)
    video_margin: float = 0.2                       # alpha
    global_margin: float = 0.2                      # alpha_g
    cluster_clip_margin: float = 0.2                # gamma
    cluster_video_margin: float = 0.2               # eta
    cycle_distance: Literal["sum", "mean"] = "sum"  # squared distance of eq. 6-7 (sum, paper) or per-dim mean (code)
    cycle_samples: int = 1                          # start points per sequence (paper: 1 clip, 1 sentence); 0: all
    cycle_normalize: bool = False                   # cycle on L2-normalised embeddings (code: raw)

    def __post_init__(self) -> None:
        weights = (self.clip_weight, self.video_weight, self.global_weight, self.cluster_clip_weight,
                   self.cluster_video_weight, self.cycle_weight)
        if min(weights) < 0 or self.cycle_samples < 0:
            raise ValueError("loss: weights and cycle_samples must be >= 0")


@dataclass(frozen=True)
class CootDataConfig:
    clip: Literal["window", "caption"] = "window"   # clip frames: the candidate window, or the caption's span
    max_clips: int = 16                             # narrations per video item (a run of them when more)
    video_frames: int = 80                          # whole-video frames (one per equal interval)
    frames: Literal["random", "centre"] = "random"  # training: a random frame within each interval (Sec. 4),
                                                    # or its centre; evaluation always takes the centre

    def __post_init__(self) -> None:
        at_least("data", 1, max_clips=self.max_clips, video_frames=self.video_frames)


@dataclass(frozen=True)
class CootConfig:
    """`coot.head`, `coot.loss`, `coot.data`."""

    head: CootHeadConfig = field(default_factory=CootHeadConfig)
    loss: CootLossConfig = field(default_factory=CootLossConfig)
    data: CootDataConfig = field(default_factory=CootDataConfig)

    def check(self, cfg) -> None:
        if cfg.data.sampling != "per_video":
            raise ConfigError("the coot method trains on whole videos: set data.sampling=per_video")
